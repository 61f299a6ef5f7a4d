/* theanine cpu_c: shapes, basic indexing, reshape and alloc done in C (NumPy's C API), so a
 * loop body that slices, indexes or builds shapes never calls Python. On any error the
 * caller retries the op's NumPy implementation, whose message is the reference's. */

/* a basic index as a tuple. spec: per entry a kind, then its payload: 0 int (value), 1 an
 * int scalar input (next of `args`), 2 a slice (start, stop, step: each a kind 0 None,
 * 1 value, 2 next input, then a value), 3 newaxis, 4 Ellipsis */
static PyObject *th_index_tuple(int n, const long long *spec, PyObject **args)
{
    PyObject *t = PyTuple_New(n), *part[3];
    if (!t) return NULL;
    for (int i = 0; i < n; ++i) {
        PyObject *e = NULL;
        long long kind = *spec++;
        if (kind == 0) e = PyLong_FromLongLong(*spec++);
        else if (kind == 1) e = PyNumber_Index(*args++);
        else if (kind == 2) {
            int ok = 1;
            for (int j = 0; j < 3; ++j) {
                long long pk = *spec++, pv = *spec++;
                part[j] = pk == 0 ? (Py_INCREF(Py_None), Py_None)
                        : pk == 1 ? PyLong_FromLongLong(pv) : PyNumber_Index(*args++);
                ok &= part[j] != NULL;
            }
            if (ok) e = PySlice_New(part[0], part[1], part[2]);
            for (int j = 0; j < 3; ++j) Py_XDECREF(part[j]);
        }
        else if (kind == 3) { Py_INCREF(Py_None); e = Py_None; }
        else { Py_INCREF(Py_Ellipsis); e = Py_Ellipsis; }
        if (!e) { Py_DECREF(t); return NULL; }
        PyTuple_SET_ITEM(t, i, e);
    }
    return t;
}

/* `r` as an array: NumPy returns a scalar for an index naming one element */
static PyObject *th_as_array(PyObject *r)
{
    if (!r || PyArray_Check(r)) return r;
    PyObject *a = PyArray_FromAny(r, NULL, 0, 0, 0, NULL);
    Py_DECREF(r);
    return a;
}

/* x[index] (a view) */
static PyObject *th_subtensor(PyArrayObject *x, int n, const long long *spec, PyObject **args)
{
    PyObject *idx = th_index_tuple(n, spec, args);
    if (!idx) return NULL;
    PyObject *r = PyObject_GetItem((PyObject *)x, idx);
    Py_DECREF(idx);
    return th_as_array(r);
}

/* a copy of x with x[index] set to y, or incremented by y (`x[index] += y`, as NumPy does) */
static PyObject *th_inc_subtensor(PyArrayObject *x, PyObject *y, int set, int n,
                                  const long long *spec, PyObject **args)
{
    PyObject *idx = th_index_tuple(n, spec, args);
    if (!idx) return NULL;
    PyObject *out = PyArray_NewCopy(x, NPY_KEEPORDER), *value = y;
    int ok = out != NULL;
    if (ok && !set) {
        PyObject *item = PyObject_GetItem(out, idx);
        value = item ? PyNumber_InPlaceAdd(item, y) : NULL;
        Py_XDECREF(item);
        ok = value != NULL;
    }
    if (ok) ok = PyObject_SetItem(out, idx, value) == 0;
    if (!set) Py_XDECREF(value);
    Py_DECREF(idx);
    if (!ok) { Py_XDECREF(out); return NULL; }
    return out;
}

/* a 1-d array of `type` from n 0-d arrays (cast as np.array(values, dtype) does) */
static PyObject *th_make_vector(int n, PyObject **xs, int type)
{
    npy_intp len = n;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &len, type);
    if (!out) return NULL;
    for (int i = 0; i < n; ++i) {
        PyObject *item = PyArray_GETITEM((PyArrayObject *)xs[i],
                                         PyArray_DATA((PyArrayObject *)xs[i]));
        int bad = !item || PyArray_SETITEM(out, PyArray_GETPTR1(out, i), item) < 0;
        Py_XDECREF(item);
        if (bad) { Py_DECREF(out); return NULL; }
    }
    return (PyObject *)out;
}

/* x's shape as an int64 vector */
static PyObject *th_shape(PyArrayObject *x)
{
    npy_intp nd = PyArray_NDIM(x);
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &nd, NPY_INT64);
    if (!out) return NULL;
    for (int d = 0; d < nd; ++d) ((npy_int64 *)PyArray_DATA(out))[d] = PyArray_DIM(x, d);
    return (PyObject *)out;
}

/* the n lengths of `pattern` (TH_ENTRY: the next 0-d integer array of `entries`; -1 may
 * stand for an inferred reshape length); -1 on an error (cleared: the caller retries) */
#define TH_ENTRY (-1000000007LL)
static int th_lengths(int n, const long long *pattern, PyObject **entries, npy_intp *dims)
{
    if (n > TH_MAXDIMS) return -1;
    for (int d = 0; d < n; ++d) {
        if (pattern[d] != TH_ENTRY) { dims[d] = (npy_intp)pattern[d]; continue; }
        PyObject *e = PyNumber_Index(*entries++);
        dims[d] = e ? PyLong_AsSsize_t(e) : -1;
        Py_XDECREF(e);
        if (PyErr_Occurred()) { PyErr_Clear(); return -1; }
    }
    return 0;
}

/* x reshaped: a view of x when it is C-contiguous, else of a C-ordered copy kept in work
 * slot `slot` (reused across calls once free, as kernel outputs are); NULL, cleared, to retry */
static PyObject *th_reshape(PyArrayObject *x, int n, const long long *pattern, PyObject **entries,
                            PyObject *work, int slot)
{
    npy_intp dims[TH_MAXDIMS + 1];
    if (th_lengths(n, pattern, entries, dims) < 0) return NULL;
    for (int d = 0; d < n; ++d) if (dims[d] < -1) return NULL;
    PyArray_Dims newshape = {dims, n};
    PyObject *r;
    if (PyArray_IS_C_CONTIGUOUS(x)) r = PyArray_Newshape(x, &newshape, NPY_CORDER);
    else {
        PyArrayObject *c = th_buffer(work, slot, PyArray_NDIM(x), PyArray_DIMS(x), NULL,
                                     PyArray_TYPE(x));
        if (!c) { PyErr_Clear(); return NULL; }
        r = PyArray_CopyInto(c, x) < 0 ? NULL : PyArray_Newshape(c, &newshape, NPY_CORDER);
        Py_DECREF(c);
    }
    if (!r) PyErr_Clear();
    return r;
}

/* an array of `type` filled with `value` broadcast to the lengths; NULL, cleared, to retry */
static PyObject *th_alloc(PyArrayObject *value, int n, const long long *pattern,
                          PyObject **entries, int type)
{
    npy_intp dims[TH_MAXDIMS + 1];
    if (th_lengths(n, pattern, entries, dims) < 0) return NULL;
    for (int d = 0; d < n; ++d) if (dims[d] < 0) return NULL;
    PyObject *out = PyArray_SimpleNew(n, dims, type);
    if (out && PyArray_CopyInto((PyArrayObject *)out, value) == 0) return out;
    PyErr_Clear();
    Py_XDECREF(out);
    return NULL;
}

/* x itself when its lengths are those specified (TH_ANY: any length), else NULL to retry */
#define TH_ANY (-1000000009LL)
static PyObject *th_specify_shape(PyArrayObject *x, int n, const long long *pattern,
                                  PyObject **entries)
{
    npy_intp dims[TH_MAXDIMS + 1];
    if (PyArray_NDIM(x) != n || th_lengths(n, pattern, entries, dims) < 0) return NULL;
    for (int d = 0; d < n; ++d)
        if (pattern[d] != TH_ANY && dims[d] != PyArray_DIM(x, d)) return NULL;
    Py_INCREF(x);
    return (PyObject *)x;
}
