/* theanine cpu_c: a Scan node's loop. th_scan runs the loop body (a function of the same
 * program, rendered from the inner graph) once per step in C: it hands the body views of the
 * sequences and of the recorded states at their taps, and copies the body's results into
 * preallocated traces, [n_steps, ...] or, for an output whose last `keep` steps alone are read,
 * a ring of keep entries (states: at least their depth, plus one so a step never overwrites a
 * value it reads). What the reference checks once per call (lengths, n_steps >= 0) and the
 * rare cases (no step at all) are left to Python callables in `info`; nothing per step is. */

typedef int (*th_body_fn)(PyObject *state, PyObject **in, PyObject **out, PyObject **dst);

typedef struct {
    int n_seqs, n_states, n_nit, n_nonseq, until, n_in;
    const int *seq_ntaps, *seq_offs;      /* taps per sequence; their offsets, flattened */
    const int *state_ntaps, *state_taps;  /* taps per state; the taps, flattened */
    const int *keep;                      /* per output: the last steps kept, -1 for all */
    int work;                             /* the work slot of output 0's trace; 1 per output */
    const int *direct;                    /* per output: the body may compute it in its row */
    const int *share;                     /* per output: it may be another output's array */
    const int *contig;                    /* per non-sequence: passed C-ordered (a copy) */
} th_scan_layout;

/* entry i of x along axis 0, as an array of one axis fewer viewing x's memory */
static PyObject *th_row(PyArrayObject *x, npy_intp i)
{
    int nd = PyArray_NDIM(x) - 1;
    PyArray_Descr *descr = PyArray_DESCR(x);
    Py_INCREF(descr);
    PyObject *v = PyArray_NewFromDescr(&PyArray_Type, descr, nd, PyArray_DIMS(x) + 1,
                                       PyArray_STRIDES(x) + 1,
                                       PyArray_BYTES(x) + i * PyArray_STRIDE(x, 0),
                                       PyArray_FLAGS(x) & NPY_ARRAY_WRITEABLE, NULL);
    if (!v) return NULL;
    Py_INCREF(x);
    if (PyArray_SetBaseObject((PyArrayObject *)v, (PyObject *)x) < 0) { Py_DECREF(v); return NULL; }
    return v;
}

/* copy `value` into entry i of `trace` (same shape after the first axis, checked before) */
static int th_store_row(PyArrayObject *trace, npy_intp i, PyArrayObject *value)
{
    npy_intp size = PyArray_NBYTES(value);
    char *dst = PyArray_BYTES(trace) + i * PyArray_STRIDE(trace, 0);
    if (dst == PyArray_BYTES(value) && PyArray_IS_C_CONTIGUOUS(value)) return 0;  /* in place */
    if (PyArray_IS_C_CONTIGUOUS(value) && PyArray_TYPE(value) == PyArray_TYPE(trace)) {
        memmove(dst, PyArray_DATA(value), size);
        return 0;
    }
    PyObject *row = th_row(trace, i);
    if (!row) return -1;
    int r = PyArray_CopyInto((PyArrayObject *)row, value);
    Py_DECREF(row);
    return r;
}

/* a C-ordered array of `rows` entries shaped like `like` (past its first `skip_lead` axes):
 * the one kept in work slot `slot` when the last call's result is free again (so a loop's
 * traces are not page-faulted in on every call), else new; slot < 0: always new */
static PyArrayObject *th_trace(PyObject *work, int slot, PyArrayObject *like, int skip_lead,
                               npy_intp rows, int type)
{
    int nd = PyArray_NDIM(like) - skip_lead;
    npy_intp dims[TH_MAXDIMS + 1];
    dims[0] = rows;
    for (int d = 0; d < nd; ++d) dims[d + 1] = PyArray_DIM(like, d + skip_lead);
    if (slot >= 0) return th_buffer(work, slot, nd + 1, dims, NULL, type);
    return (PyArrayObject *)PyArray_SimpleNew(nd + 1, dims, type);
}

static int th_same_row_shape(PyArrayObject *trace, PyArrayObject *value)
{
    if (PyArray_NDIM(value) != PyArray_NDIM(trace) - 1) return 0;
    for (int d = 0; d < PyArray_NDIM(value); ++d)
        if (PyArray_DIM(value, d) != PyArray_DIM(trace, d + 1)) return 0;
    return 1;
}

/* info: (check(*outer) -> n_steps, or raise; bad_step(i, value, trace, t) -> raise;
 *        no_step(*outer) -> the results when n_steps is 0; the outputs' NumPy type numbers) */
static int th_scan(PyObject *state, const th_scan_layout *L, th_body_fn body,
                   PyObject **outer, int n_outer, PyObject **res, PyObject *info)
{
    int n_out = L->n_states + L->n_nit, n_body_out = n_out + L->until, rc = -1, k = 0;
    int blas_threads = -1;  /* the BLAS threads to restore, once the loop set one */
    for (int i = 0; i < n_out; ++i) res[i] = NULL;
    PyObject *args = PyTuple_New(n_outer);
    if (!args) return -1;
    for (int i = 0; i < n_outer; ++i) { Py_INCREF(outer[i]); PyTuple_SET_ITEM(args, i, outer[i]); }
    PyObject *got = PyObject_Call(PyTuple_GET_ITEM(info, 0), args, NULL);
    npy_intp n = got ? PyLong_AsSsize_t(got) : -1;
    Py_XDECREF(got);
    if (n == 0 && !PyErr_Occurred()) {  /* the reference knows the empty traces' shapes */
        PyObject *r = PyObject_Call(PyTuple_GET_ITEM(info, 2), args, NULL);
        Py_DECREF(args);
        if (!r) return -1;
        for (int i = 0; i < n_out; ++i) { res[i] = PyTuple_GET_ITEM(r, i); Py_INCREF(res[i]); }
        Py_DECREF(r);
        return 0;
    }
    Py_DECREF(args);
    if (n < 0) return -1;
    /* one block: in[n_in], out[n_body_out], trace[n_out], dst[n_out], ns[n_nonseq], then
     * ring[n_out], depth[n_out], alias[n_out] (1 + the output whose trace an output shares,
     * else 0) */
    size_t n_ptr = (size_t)L->n_in + n_body_out + 2 * (size_t)n_out + L->n_nonseq;
    void **mem = PyMem_Calloc(n_ptr + 3 * (size_t)n_out + 1, sizeof(void *));
    if (!mem) { PyErr_NoMemory(); return -1; }
    PyObject **in = (PyObject **)mem, **out = in + L->n_in;
    PyArrayObject **trace = (PyArrayObject **)(out + n_body_out);
    PyObject **dst = (PyObject **)(trace + n_out), **ns = dst + n_out;
    npy_intp *ring = (npy_intp *)(mem + n_ptr), *depth = ring + n_out, *alias = depth + n_out;
    PyArrayObject **seqs = (PyArrayObject **)outer + 1;
    PyArrayObject **inits = seqs + L->n_seqs;
    PyObject **nonseqs = outer + 1 + L->n_seqs + L->n_states;
    PyObject *types = PyTuple_GET_ITEM(info, 3);
    PyObject *work = PyTuple_GET_ITEM(state, 2);
    const int *taps = L->state_taps;
    for (int j = 0; j < L->n_states; ++j, taps += L->state_ntaps[j - 1])
        for (int q = 0; q < L->state_ntaps[j]; ++q)
            if (-taps[q] > depth[j]) depth[j] = -taps[q];
    for (int i = 0; i < n_out; ++i) {
        npy_intp keep = L->keep[i] < 0 ? n : L->keep[i];
        if (i < L->n_states && L->keep[i] >= 0) keep = (keep > depth[i] ? keep : depth[i]) + 1;
        ring[i] = keep < n ? keep : n;
    }
    for (int j = 0; j < L->n_states; ++j) {
        trace[j] = th_trace(work, L->work + j, inits[j], 1, ring[j],
                            (int)PyLong_AsLong(PyTuple_GET_ITEM(types, j)));
        if (!trace[j]) goto done;
    }
    for (int c = 0; c < L->n_nonseq; ++c) {  /* a product's operand: C-ordered, copied once */
        PyArrayObject *a = (PyArrayObject *)nonseqs[c];
        if (L->contig[c] && !PyArray_IS_C_CONTIGUOUS(a)) {
            if (!(ns[c] = PyArray_NewCopy(a, NPY_CORDER))) goto done;
        } else {
            ns[c] = nonseqs[c];
            Py_INCREF(ns[c]);
        }
    }
    npy_intp steps = n;
    if (th_blas_threads) blas_threads = th_blas_threads(1);
    for (npy_intp t = 0; t < n; ++t) {
        k = 0;
        const int *offs = L->seq_offs;
        for (int i = 0; i < L->n_seqs; offs += L->seq_ntaps[i++])
            for (int q = 0; q < L->seq_ntaps[i]; ++q)
                if (!(in[k++] = th_row(seqs[i], t + offs[q]))) goto done;
        taps = L->state_taps;
        for (int j = 0; j < L->n_states; taps += L->state_ntaps[j++])
            for (int q = 0; q < L->state_ntaps[j]; ++q) {
                npy_intp at = t + taps[q];
                in[k] = at < 0 ? th_row(inits[j], depth[j] + at) : th_row(trace[j], at % ring[j]);
                if (!in[k++]) goto done;
            }
        for (int c = 0; c < L->n_nonseq; ++c) { in[k] = ns[c]; Py_INCREF(in[k++]); }
        for (int i = 0; i < n_out; ++i)  /* where the body may write output i */
            if (L->direct[i] && trace[i] && !(dst[i] = th_row(trace[i], t % ring[i])))
                goto done;
        if (body(state, in, out, dst) < 0) goto done;
        for (int i = 0; i < n_out; ++i) {
            PyArrayObject *value = (PyArrayObject *)out[i];
            if (alias[i] && out[i] == out[alias[i] - 1]) continue;  /* still the same array */
            if (alias[i]) {  /* no longer: output i gets a trace of its own, a copy so far */
                PyArrayObject *shared = trace[alias[i] - 1];
                alias[i] = 0;
                trace[i] = th_trace(work, L->work + i, shared, 1, ring[i], PyArray_TYPE(shared));
                if (!trace[i] || PyArray_CopyInto(trace[i], shared) < 0) goto done;
            }
            if (!trace[i] && t == 0 && L->share[i])  /* the array an earlier output returned */
                for (int j = L->n_states; j < i && !alias[i]; ++j)
                    if (out[j] == out[i] && L->share[j] && !alias[j] && L->keep[j] == L->keep[i] &&
                        PyArray_TYPE(trace[j]) == PyLong_AsLong(PyTuple_GET_ITEM(types, i)))
                        alias[i] = j + 1;
            if (alias[i]) continue;
            if (!trace[i]) {  /* an output not fed back: its shape is step 0's */
                trace[i] = th_trace(work, L->work + i, value, 0, ring[i],
                                    (int)PyLong_AsLong(PyTuple_GET_ITEM(types, i)));
                if (!trace[i]) goto done;
            }
            if (!th_same_row_shape(trace[i], value)) {
                Py_XDECREF(PyObject_CallFunction(PyTuple_GET_ITEM(info, 1), "iOOn", i,
                                                 (PyObject *)value, (PyObject *)trace[i],
                                                 (Py_ssize_t)t));
                goto done;
            }
            if (th_store_row(trace[i], t % ring[i], value) < 0) goto done;
        }
        int stop = L->until ? PyObject_IsTrue(out[n_out]) : 0;
        if (stop < 0) goto done;
        for (int j = 0; j < k; ++j) Py_CLEAR(in[j]);
        for (int j = 0; j < n_body_out; ++j) Py_CLEAR(out[j]);
        for (int i = 0; i < n_out; ++i) Py_CLEAR(dst[i]);
        k = 0;
        if (stop) { steps = t + 1; break; }
    }
    for (int i = 0; i < n_out; ++i) {
        if (alias[i]) {  /* the same values as an earlier output's, in the same array */
            res[i] = res[alias[i] - 1];
            Py_INCREF(res[i]);
            continue;
        }
        if (L->keep[i] < 0 && steps == PyArray_DIM(trace[i], 0)) {
            res[i] = (PyObject *)trace[i];
            trace[i] = NULL;
            continue;
        }
        npy_intp keep = L->keep[i] < 0 || L->keep[i] > steps ? steps : L->keep[i];
        PyArrayObject *r = th_trace(work, -1, trace[i], 1, keep, PyArray_TYPE(trace[i]));
        if (!(res[i] = (PyObject *)r)) goto done;
        for (npy_intp s = 0; s < keep; ++s) {
            PyObject *row = th_row(trace[i], (steps - keep + s) % ring[i]);
            if (!row) goto done;
            int e = th_store_row(r, s, (PyArrayObject *)row);
            Py_DECREF(row);
            if (e < 0) goto done;
        }
    }
    rc = 0;
done:
    if (blas_threads >= 0) th_blas_threads(blas_threads);
    for (int j = 0; j < k; ++j) Py_XDECREF(in[j]);
    for (int j = 0; j < n_body_out; ++j) Py_XDECREF(out[j]);
    for (int i = 0; i < n_out; ++i) {
        Py_XDECREF(trace[i]);
        Py_XDECREF(dst[i]);
        if (rc < 0) Py_CLEAR(res[i]);
    }
    for (int c = 0; c < L->n_nonseq; ++c) Py_XDECREF(ns[c]);
    PyMem_Free(mem);
    return rc;
}
