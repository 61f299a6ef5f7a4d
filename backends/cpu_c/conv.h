/* theanine cpu_c: 2-d convolution and its two gradients (the Conv2d, Conv2dGradInputs and
 * Conv2dGradWeights entries of the C backend's op table include it).
 *
 * Each image of the batch is one task of an OpenMP loop: its patches are gathered into a
 * column matrix (im2col: rows are (channel, kernel row, kernel column), columns the output
 * pixels) and multiplied by the packed filters with BLAS gemm on that thread alone; the input
 * gradient scatters gemm's columns back (col2im), the filter gradient sums one gemm per image
 * into a per-thread accumulator. Inputs are read through their strides; the filters are packed
 * (flipped for a true convolution) into a contiguous (filters, channels * kh * kw) matrix once
 * per call.
 *
 * A function returns NULL with no exception set when it declines (a dtype it does not
 * compute, shapes that do not fit): the entry then calls the NumPy implementation, which
 * raises the reference's error or computes the result.
 */
typedef struct {
    int border;  /* 0: explicit pads, 1: full, 2: half */
    npy_intp pt, pb, pl, pr;  /* explicit pads (border 0) */
    npy_intp sh, sw, dh, dw;
    npy_intp groups;
    int flip;
} th_conv_geom;

/* the run-time geometry of one call: pads resolved for a kh x kw kernel, and output size */
typedef struct {
    npy_intp n, c, h, w;      /* input */
    npy_intp f, cg, kh, kw;   /* filters */
    npy_intp oh, ow;          /* output pixels */
    npy_intp pt, pl;          /* top and left padding */
    npy_intp sh, sw, dh, dw, groups;
    int flip;
} th_conv_dims;

/* dims from the input and filter shapes; 0 if they do not make a convolution */
static int th_conv_resolve(const th_conv_geom *g, npy_intp n, npy_intp c, npy_intp h,
                           npy_intp w, npy_intp f, npy_intp cg, npy_intp kh, npy_intp kw,
                           th_conv_dims *d)
{
    npy_intp ekh = (kh - 1) * g->dh + 1, ekw = (kw - 1) * g->dw + 1;
    npy_intp pt = g->pt, pb = g->pb, pl = g->pl, pr = g->pr;
    if (g->border == 1) { pt = pb = ekh - 1; pl = pr = ekw - 1; }
    if (g->border == 2) { pt = pb = ekh / 2; pl = pr = ekw / 2; }
    if (kh < 1 || kw < 1 || f % g->groups || cg * g->groups != c) return 0;
    npy_intp sh_ = h + pt + pb - ekh, sw_ = w + pl + pr - ekw;
    if (sh_ < 0 || sw_ < 0) return 0;
    d->n = n; d->c = c; d->h = h; d->w = w; d->f = f; d->cg = cg; d->kh = kh; d->kw = kw;
    d->oh = sh_ / g->sh + 1; d->ow = sw_ / g->sw + 1; d->pt = pt; d->pl = pl;
    d->sh = g->sh; d->sw = g->sw; d->dh = g->dh; d->dw = g->dw; d->groups = g->groups;
    d->flip = g->flip;
    return 1;
}

/* the epilogue a fused convolution applies to each image's output block */
enum { TH_ACT_NONE, TH_ACT_BIAS, TH_ACT_RELU, TH_ACT_TANH, TH_ACT_SIGMOID };

#define TH_DEF_CONV(T, GEMM, SFX) \
/* rows of p outputs, one per filter: o = act(o + b[f]) */ \
static void th_epilogue_##T(T *o, npy_intp rows, npy_intp p, const T *b, int act) \
{ \
    for (npy_intp f = 0; f < rows; ++f) { \
        T bb = b[f], *r = o + f * p; \
        if (act == TH_ACT_RELU) { \
            _Pragma("omp simd") \
            for (npy_intp q = 0; q < p; ++q) { \
                T v = r[q] + bb; r[q] = (v > 0 || v != v) ? v : 0; \
            } \
        } else if (act == TH_ACT_TANH) { \
            _Pragma("omp simd") \
            for (npy_intp q = 0; q < p; ++q) r[q] = tanh##SFX(r[q] + bb); \
        } else if (act == TH_ACT_SIGMOID) { \
            _Pragma("omp simd") \
            for (npy_intp q = 0; q < p; ++q) r[q] = (T)1 / ((T)1 + exp##SFX(-(r[q] + bb))); \
        } else { \
            _Pragma("omp simd") \
            for (npy_intp q = 0; q < p; ++q) r[q] += bb; \
        } \
    } \
} \
/* col (cg*kh*kw, oh*ow) of image plane xs (channels of one group; strides in elements) */ \
static void th_im2col_##T(const th_conv_dims *d, const T *xs, npy_intp sc, npy_intp sy, \
                          npy_intp sx, T *col) \
{ \
    npy_intp p = d->oh * d->ow; \
    for (npy_intp c = 0; c < d->cg; ++c) \
        for (npy_intp i = 0; i < d->kh; ++i) \
            for (npy_intp j = 0; j < d->kw; ++j) { \
                T *row = col + ((c * d->kh + i) * d->kw + j) * p; \
                for (npy_intp y = 0; y < d->oh; ++y) { \
                    npy_intp iy = y * d->sh + i * d->dh - d->pt; \
                    T *r = row + y * d->ow; \
                    if (iy < 0 || iy >= d->h) { \
                        for (npy_intp x = 0; x < d->ow; ++x) r[x] = 0; \
                        continue; \
                    } \
                    const T *src = xs + c * sc + iy * sy; \
                    npy_intp x0 = j * d->dw - d->pl; \
                    if (d->sw == 1 && sx == 1 && x0 >= 0 && x0 + d->ow <= d->w) { \
                        memcpy(r, src + x0, d->ow * sizeof(T)); \
                        continue; \
                    } \
                    for (npy_intp x = 0; x < d->ow; ++x) { \
                        npy_intp ix = x * d->sw + x0; \
                        r[x] = (ix >= 0 && ix < d->w) ? src[ix * sx] : (T)0; \
                    } \
                } \
            } \
} \
/* gx plane (contiguous h x w per channel) += col2im(col) */ \
static void th_col2im_##T(const th_conv_dims *d, const T *col, T *gx) \
{ \
    npy_intp p = d->oh * d->ow; \
    for (npy_intp c = 0; c < d->cg; ++c) \
        for (npy_intp i = 0; i < d->kh; ++i) \
            for (npy_intp j = 0; j < d->kw; ++j) { \
                const T *row = col + ((c * d->kh + i) * d->kw + j) * p; \
                for (npy_intp y = 0; y < d->oh; ++y) { \
                    npy_intp iy = y * d->sh + i * d->dh - d->pt; \
                    if (iy < 0 || iy >= d->h) continue; \
                    T *dst = gx + (c * d->h + iy) * d->w; \
                    const T *r = row + y * d->ow; \
                    npy_intp x0 = j * d->dw - d->pl; \
                    for (npy_intp x = 0; x < d->ow; ++x) { \
                        npy_intp ix = x * d->sw + x0; \
                        if (ix >= 0 && ix < d->w) dst[ix] += r[x]; \
                    } \
                } \
            } \
} \
/* filters (f, cg, kh, kw; element strides s) packed as (f, cg*kh*kw), flipped if asked */ \
static void th_pack_filters_##T(const th_conv_dims *d, const T *w, const npy_intp *s, T *out) \
{ \
    for (npy_intp f = 0; f < d->f; ++f) \
        for (npy_intp c = 0; c < d->cg; ++c) \
            for (npy_intp i = 0; i < d->kh; ++i) \
                for (npy_intp j = 0; j < d->kw; ++j) { \
                    npy_intp si = d->flip ? d->kh - 1 - i : i, sj = d->flip ? d->kw - 1 - j : j; \
                    out[((f * d->cg + c) * d->kh + i) * d->kw + j] = \
                        w[f * s[0] + c * s[1] + si * s[2] + sj * s[3]]; \
                } \
} \
/* each of `nt` threads has k*p elements of `scratch` for its column matrix */ \
static void th_conv_fwd_##T(const th_conv_dims *d, const T *x, const npy_intp *xs, \
                            const T *wp, T *out, int nt, T *scratch, const T *bias, int act) \
{ \
    npy_intp k = d->cg * d->kh * d->kw, p = d->oh * d->ow, fg = d->f / d->groups; \
    _Pragma("omp parallel num_threads(nt)") \
    { \
        int bt = th_blas_threads ? th_blas_threads(1) : -1; \
        T *col = scratch + omp_get_thread_num() * k * p; \
        _Pragma("omp for schedule(dynamic, 1)") \
        for (npy_intp t = 0; t < d->n * d->groups; ++t) { \
            npy_intp n = t / d->groups, g = t % d->groups; \
            th_im2col_##T(d, x + n * xs[0] + g * d->cg * xs[1], xs[1], xs[2], xs[3], col); \
            GEMM(101, 111, 111, fg, p, k, (T)1, wp + g * fg * k, k, col, p, (T)0, \
                 out + (n * d->f + g * fg) * p, p); \
            if (act != TH_ACT_NONE) \
                th_epilogue_##T(out + (n * d->f + g * fg) * p, fg, p, bias + g * fg, act); \
        } \
        if (bt >= 0) th_blas_threads(bt); \
    } \
} \
static void th_conv_gin_##T(const th_conv_dims *d, const T *wp, const T *top, T *gx, int nt, \
                            T *scratch) \
{ \
    npy_intp k = d->cg * d->kh * d->kw, p = d->oh * d->ow, fg = d->f / d->groups; \
    _Pragma("omp parallel num_threads(nt)") \
    { \
        int bt = th_blas_threads ? th_blas_threads(1) : -1; \
        T *col = scratch + omp_get_thread_num() * k * p; \
        _Pragma("omp for schedule(dynamic, 1)") \
        for (npy_intp t = 0; t < d->n * d->groups; ++t) { \
            npy_intp n = t / d->groups, g = t % d->groups; \
            GEMM(101, 112, 111, k, p, fg, (T)1, wp + g * fg * k, k, \
                 top + (n * d->f + g * fg) * p, p, (T)0, col, p); \
            th_col2im_##T(d, col, gx + (n * d->c + g * d->cg) * d->h * d->w); \
        } \
        if (bt >= 0) th_blas_threads(bt); \
    } \
} \
/* acc (f, cg*kh*kw) = sum over images of top[n] @ col[n]^T; each thread has k*p + f*k \
 * elements of `scratch` (its column matrix and its own sum) */ \
static void th_conv_gw_##T(const th_conv_dims *d, const T *x, const npy_intp *xs, \
                           const T *top, T *acc, int nt, T *scratch) \
{ \
    npy_intp k = d->cg * d->kh * d->kw, p = d->oh * d->ow, fg = d->f / d->groups; \
    memset(acc, 0, sizeof(T) * d->f * k); \
    _Pragma("omp parallel num_threads(nt)") \
    { \
        int bt = th_blas_threads ? th_blas_threads(1) : -1; \
        T *col = scratch + omp_get_thread_num() * (k * p + d->f * k), *mine = col + k * p; \
        memset(mine, 0, sizeof(T) * d->f * k); \
        _Pragma("omp for schedule(dynamic, 1)") \
        for (npy_intp t = 0; t < d->n * d->groups; ++t) { \
            npy_intp n = t / d->groups, g = t % d->groups; \
            th_im2col_##T(d, x + n * xs[0] + g * d->cg * xs[1], xs[1], xs[2], xs[3], col); \
            GEMM(101, 111, 112, fg, k, p, (T)1, top + (n * d->f + g * fg) * p, p, col, p, \
                 (T)1, mine + g * fg * k, k); \
        } \
        _Pragma("omp critical") \
        for (npy_intp e = 0; e < d->f * k; ++e) acc[e] += mine[e]; \
        if (bt >= 0) th_blas_threads(bt); \
    } \
}
TH_DEF_CONV(float, th_sgemm, f)
TH_DEF_CONV(double, th_dgemm, )

/* threads for a call over `tasks` images doing `work` multiply-adds: one for small work */
static int th_conv_threads(npy_intp tasks, npy_intp work)
{
    int nt = work > 262144 ? omp_get_max_threads() : 1;
    return nt > tasks ? (tasks > 0 ? (int)tasks : 1) : nt;
}

/* `per_thread` elements of `type` for each of nt threads (NULL with MemoryError set) */
static PyArrayObject *th_conv_scratch(int nt, npy_intp per_thread, int type)
{
    npy_intp n = nt * (per_thread > 0 ? per_thread : 1);
    return (PyArrayObject *)PyArray_EMPTY(1, &n, type, 0);
}

/* element strides of a (4-d) array; 0 if a stride is not a multiple of the item size */
static int th_elem_strides(PyArrayObject *a, npy_intp *s)
{
    npy_intp it = PyArray_ITEMSIZE(a);
    for (int k = 0; k < PyArray_NDIM(a); ++k) {
        if (PyArray_STRIDE(a, k) % it) return 0;
        s[k] = PyArray_STRIDE(a, k) / it;
    }
    return 1;
}

/* 1 if arrays a and b have the float type `type` the program computes in */
static int th_conv_types(int type, PyArrayObject *a, PyArrayObject *b)
{
    return (type == NPY_FLOAT32 || type == NPY_FLOAT64) && PyArray_TYPE(a) == type &&
        PyArray_TYPE(b) == type;
}

/* filters packed (and flipped) as a contiguous (f, cg*kh*kw) array */
static PyArrayObject *th_packed_filters(const th_conv_dims *d, PyArrayObject *w)
{
    npy_intp s[4], dims[2] = {d->f, d->cg * d->kh * d->kw};
    if (!th_elem_strides(w, s)) return NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_EMPTY(2, dims, PyArray_TYPE(w), 0);
    if (!out) return NULL;
    if (PyArray_TYPE(w) == NPY_FLOAT32)
        th_pack_filters_float(d, (const float *)PyArray_DATA(w), s,
                              (float *)PyArray_DATA(out));
    else
        th_pack_filters_double(d, (const double *)PyArray_DATA(w), s,
                               (double *)PyArray_DATA(out));
    return out;
}

/* conv2d(x, w), then act(... + b) when act is not TH_ACT_NONE (b: one value per filter) */
static PyObject *th_conv2d(PyArrayObject *x, PyArrayObject *w, PyArrayObject *b, int act,
                           int type, const th_conv_geom *g)
{
    th_conv_dims d;
    npy_intp xs[4];
    if (!th_sgemm || !th_conv_types(type, x, w) || !th_elem_strides(x, xs) ||
        !th_conv_resolve(g, PyArray_DIM(x, 0), PyArray_DIM(x, 1), PyArray_DIM(x, 2),
                         PyArray_DIM(x, 3), PyArray_DIM(w, 0), PyArray_DIM(w, 1),
                         PyArray_DIM(w, 2), PyArray_DIM(w, 3), &d))
        return NULL;
    if (act != TH_ACT_NONE && (PyArray_TYPE(b) != type || PyArray_NDIM(b) != 1 ||
                               PyArray_DIM(b, 0) != d.f))
        return NULL;
    PyArrayObject *bc = act != TH_ACT_NONE ? (PyArrayObject *)PyArray_GETCONTIGUOUS(b) : NULL;
    if (act != TH_ACT_NONE && !bc) return NULL;
    npy_intp dims[4] = {d.n, d.f, d.oh, d.ow};
    PyArrayObject *wp = th_packed_filters(&d, w);
    npy_intp k = d.cg * d.kh * d.kw, p = d.oh * d.ow;
    int nt = th_conv_threads(d.n * d.groups, d.n * d.f * p * k);
    PyArrayObject *sc = wp ? th_conv_scratch(nt, k * p, type) : NULL;
    PyArrayObject *out = sc ? (PyArrayObject *)PyArray_EMPTY(4, dims, type, 0) : NULL;
    void *bias = bc ? PyArray_DATA(bc) : NULL;
    if (out) {
        if (type == NPY_FLOAT32)
            th_conv_fwd_float(&d, (const float *)PyArray_DATA(x), xs,
                              (const float *)PyArray_DATA(wp), (float *)PyArray_DATA(out), nt,
                              (float *)PyArray_DATA(sc), (const float *)bias, act);
        else
            th_conv_fwd_double(&d, (const double *)PyArray_DATA(x), xs,
                               (const double *)PyArray_DATA(wp), (double *)PyArray_DATA(out),
                               nt, (double *)PyArray_DATA(sc), (const double *)bias, act);
    }
    Py_XDECREF(wp); Py_XDECREF(sc); Py_XDECREF(bc);
    return (PyObject *)out;
}

/* a contiguous `top` of shape (n, f, oh, ow), or NULL (declined) */
static PyArrayObject *th_conv_top(PyArrayObject *top, const th_conv_dims *d)
{
    if (PyArray_NDIM(top) != 4 || PyArray_DIM(top, 0) != d->n || PyArray_DIM(top, 1) != d->f ||
        PyArray_DIM(top, 2) != d->oh || PyArray_DIM(top, 3) != d->ow)
        return NULL;
    return (PyArrayObject *)PyArray_GETCONTIGUOUS(top);
}

static PyObject *th_conv2d_grad_inputs(PyArrayObject *w, PyArrayObject *top, npy_intp rows,
                                       npy_intp cols, int type, const th_conv_geom *g)
{
    th_conv_dims d;
    if (!th_sgemm || !th_conv_types(type, w, top) ||
        !th_conv_resolve(g, PyArray_DIM(top, 0), PyArray_DIM(w, 1) * g->groups, rows, cols,
                         PyArray_DIM(w, 0), PyArray_DIM(w, 1), PyArray_DIM(w, 2),
                         PyArray_DIM(w, 3), &d))
        return NULL;
    PyArrayObject *t = th_conv_top(top, &d);
    if (!t) return NULL;
    PyArrayObject *wp = th_packed_filters(&d, w);
    npy_intp dims[4] = {d.n, d.c, d.h, d.w};
    npy_intp k = d.cg * d.kh * d.kw, p = d.oh * d.ow;
    int nt = th_conv_threads(d.n * d.groups, d.n * d.f * p * k);
    PyArrayObject *sc = wp ? th_conv_scratch(nt, k * p, type) : NULL;
    PyArrayObject *gx = sc ? (PyArrayObject *)PyArray_ZEROS(4, dims, type, 0) : NULL;
    if (gx) {
        if (type == NPY_FLOAT32)
            th_conv_gin_float(&d, (const float *)PyArray_DATA(wp),
                              (const float *)PyArray_DATA(t), (float *)PyArray_DATA(gx), nt,
                              (float *)PyArray_DATA(sc));
        else
            th_conv_gin_double(&d, (const double *)PyArray_DATA(wp),
                               (const double *)PyArray_DATA(t), (double *)PyArray_DATA(gx), nt,
                               (double *)PyArray_DATA(sc));
    }
    Py_DECREF(t); Py_XDECREF(wp); Py_XDECREF(sc);
    return (PyObject *)gx;
}

static PyObject *th_conv2d_grad_weights(PyArrayObject *x, PyArrayObject *top, npy_intp kh,
                                        npy_intp kw, int type, const th_conv_geom *g)
{
    th_conv_dims d;
    npy_intp xs[4];
    if (!th_sgemm || !th_conv_types(type, x, top) || !th_elem_strides(x, xs) ||
        PyArray_DIM(x, 1) % g->groups ||
        !th_conv_resolve(g, PyArray_DIM(x, 0), PyArray_DIM(x, 1), PyArray_DIM(x, 2),
                         PyArray_DIM(x, 3), PyArray_DIM(top, 1), PyArray_DIM(x, 1) / g->groups,
                         kh, kw, &d))
        return NULL;
    PyArrayObject *t = th_conv_top(top, &d);
    if (!t) return NULL;
    npy_intp k = d.cg * d.kh * d.kw, adims[2] = {d.f, k}, dims[4] = {d.f, d.cg, d.kh, d.kw};
    npy_intp p = d.oh * d.ow;
    int nt = th_conv_threads(d.n * d.groups, d.n * d.f * p * k);
    PyArrayObject *sc = th_conv_scratch(nt, k * p + d.f * k, type);
    PyArrayObject *acc = sc ? (PyArrayObject *)PyArray_EMPTY(2, adims, type, 0) : NULL;
    PyArrayObject *gw = acc ? (PyArrayObject *)PyArray_EMPTY(4, dims, type, 0) : NULL;
    if (gw) {
        char *a = PyArray_BYTES(acc), *o = PyArray_BYTES(gw);
        npy_intp it = PyArray_ITEMSIZE(gw);
        if (type == NPY_FLOAT32)
            th_conv_gw_float(&d, (const float *)PyArray_DATA(x), xs,
                             (const float *)PyArray_DATA(t), (float *)a, nt,
                             (float *)PyArray_DATA(sc));
        else
            th_conv_gw_double(&d, (const double *)PyArray_DATA(x), xs,
                              (const double *)PyArray_DATA(t), (double *)a, nt,
                              (double *)PyArray_DATA(sc));
        /* unflip: the packed column (c, i, j) holds the filter tap (c, kh-1-i, kw-1-j) */
        for (npy_intp f = 0; f < d.f; ++f)
            for (npy_intp c = 0; c < d.cg; ++c)
                for (npy_intp i = 0; i < d.kh; ++i)
                    for (npy_intp j = 0; j < d.kw; ++j) {
                        npy_intp si = d.flip ? d.kh - 1 - i : i, sj = d.flip ? d.kw - 1 - j : j;
                        memcpy(o + (((f * d.cg + c) * d.kh + si) * d.kw + sj) * it,
                               a + (f * k + (c * d.kh + i) * d.kw + j) * it, it);
                    }
    }
    Py_DECREF(t); Py_XDECREF(acc); Py_XDECREF(sc);
    return (PyObject *)gw;
}
