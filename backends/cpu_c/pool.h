/* theanine cpu_c: 2-d pooling over the last two axes and its gradients (the Pool, MaxPoolGrad,
 * AveragePoolGrad and MaxPoolGradGrad entries of the C backend's op table include it).
 *
 * Every leading index is one plane (rows x cols, made contiguous); planes are shared among
 * OpenMP threads, so the gradients, whose windows overlap, write each plane from one thread.
 * A window of output (y, x) covers padded rows [y*st, y*st + ws) clipped to the padded image
 * (ignore_border=False lets the last one be partial); max ignores the padding and propagates
 * NaN as np.maximum does; 'average_inc_pad' divides by the clipped window's size, padding
 * included, 'average_exc_pad' by the number of input elements in it. A function returns NULL
 * with no exception set when it declines (a dtype it does not compute, shapes that do not
 * fit); the entry then calls the NumPy implementation.
 */
typedef struct { npy_intp wh, ww, sh, sw, ph, pw; int mode, ignore_border; } th_pool_geom;
enum { TH_POOL_MAX, TH_POOL_SUM, TH_POOL_AVG_INC, TH_POOL_AVG_EXC };

/* elements of scratch each thread owns: 2*w rounded up to whole cache lines, plus one, so
 * no two threads write one line */
#define TH_POOL_STRIDE(w) ((((2 * (w) + 1) * 8 + 63) / 64) * 8 + 8)

static npy_intp th_pool_len(npy_intp size, npy_intp ws, npy_intp st, npy_intp p, int ignore)
{
    npy_intp v = size + 2 * p, out;
    if (ignore) { out = (v - ws) >= 0 ? (v - ws) / st + 1 : 0; return out; }
    if (st >= ws) return v > 0 ? (v - 1) / st + 1 : 0;
    out = (v - 1 - ws + st) >= 0 ? (v - 1 - ws + st) / st : 0;
    return out + 1;
}

/* the input rows [*lo, *hi) of window j along an axis, and its divisor for `mode` */
static npy_intp th_pool_span(npy_intp j, npy_intp size, npy_intp ws, npy_intp st, npy_intp p,
                             int mode, npy_intp *lo, npy_intp *hi)
{
    npy_intp start = j * st, end = start + ws < size + 2 * p ? start + ws : size + 2 * p;
    npy_intp inc = end - start;
    *lo = start - p > 0 ? start - p : 0;
    *hi = end - p < size ? end - p : size;
    if (*hi < *lo) *hi = *lo;
    return mode == TH_POOL_AVG_INC ? inc : *hi - *lo;
}

/* the outputs x in [*lo, *hi) of a row whose window offset j reads an input column (not
 * padding): 0 <= x*st + j - p < size */
static void th_pool_cols(npy_intp j, npy_intp size, npy_intp st, npy_intp p, npy_intp n,
                         npy_intp *lo, npy_intp *hi)
{
    npy_intp a = p - j, b = size + p - j;  /* x*st in [a, b) */
    *lo = a > 0 ? (a + st - 1) / st : 0;
    *hi = b > 0 ? (b + st - 1) / st : 0;
    if (*hi > n) *hi = n;
    if (*lo > *hi) *lo = *hi;
}

/* Each output row is built in two passes: the window's input rows are combined column by
 * column into `line` (contiguous, vectorized), then for each column offset j every output x
 * of the row takes line[x*sw + j - pw]. `div` holds each output column's divisor for the
 * average modes. The gradients, when windows do not overlap along a row (sw >= ww), spread
 * each output row's values over the input columns once (`cmap`: the output column each
 * input column belongs to, or -1) and update each input row of the window in one contiguous
 * pass; overlapping windows take the offset-by-offset loops. Each thread has
 * TH_POOL_STRIDE(w) elements of `scratch`; `cols` holds the output columns [lo, hi) that
 * read an input column at each offset j (th_pool_cols), pairs for j = 0 .. ww-1. */
#define TH_DEF_POOL(T) \
static void th_pool_fwd_##T(const th_pool_geom *g, npy_intp planes, npy_intp h, npy_intp w, \
                            npy_intp oh, npy_intp ow, const T *x, T *z, const npy_intp *div, \
                            const npy_intp *cols, T *scratch) \
{ \
    int max = g->mode == TH_POOL_MAX; \
    _Pragma("omp parallel if (planes * oh * ow * g->wh * g->ww > 65536)") \
    { \
    T *line = scratch + TH_POOL_STRIDE(w) * omp_get_thread_num(); \
    _Pragma("omp for schedule(static)") \
    for (npy_intp q = 0; q < planes; ++q) { \
        const T *xp = x + q * h * w; \
        for (npy_intp y = 0; y < oh; ++y) { \
            npy_intp r0, r1; \
            npy_intp dy = th_pool_span(y, h, g->wh, g->sh, g->ph, g->mode, &r0, &r1); \
            T *acc = z + (q * oh + y) * ow; \
            T init = max ? (T)-INFINITY : (T)0; \
            for (npy_intp c = 0; c < w; ++c) line[c] = init; \
            for (npy_intp r = r0; r < r1; ++r) { \
                const T *src = xp + r * w; \
                if (max) { \
                    _Pragma("omp simd") \
                    for (npy_intp c = 0; c < w; ++c) { \
                        T v = src[c], m = line[c]; \
                        line[c] = (v > m || v != v) ? v : m; \
                    } \
                } else { \
                    _Pragma("omp simd") \
                    for (npy_intp c = 0; c < w; ++c) line[c] += src[c]; \
                } \
            } \
            for (npy_intp c = 0; c < ow; ++c) acc[c] = init; \
            for (npy_intp j = 0; j < g->ww; ++j) { \
                npy_intp lo = cols[2 * j], hi = cols[2 * j + 1], sw = g->sw; \
                const T *src = line + j - g->pw; \
                if (max && sw == 2) { /* (a constant stride vectorizes) */ \
                    _Pragma("omp simd") \
                    for (npy_intp c = lo; c < hi; ++c) { \
                        T v = src[2 * c], m = acc[c]; \
                        acc[c] = (v > m || v != v) ? v : m; \
                    } \
                } else if (max) { \
                    for (npy_intp c = lo; c < hi; ++c) { \
                        T v = src[c * sw], m = acc[c]; \
                        acc[c] = (v > m || v != v) ? v : m; \
                    } \
                } else if (sw == 2) { \
                    _Pragma("omp simd") \
                    for (npy_intp c = lo; c < hi; ++c) acc[c] += src[2 * c]; \
                } else { \
                    for (npy_intp c = lo; c < hi; ++c) acc[c] += src[c * sw]; \
                } \
            } \
            if (g->mode == TH_POOL_AVG_INC || g->mode == TH_POOL_AVG_EXC) \
                for (npy_intp c = 0; c < ow; ++c) acc[c] = acc[c] / (T)(dy * div[c]); \
        } \
    } \
    } \
} \
/* gx (zeroed) += gz at each window's maxima (max) or gz / divisor over each window; or, with \
 * grad_grad, out[window] = sum of gx over its maxima */ \
static void th_pool_bwd_##T(const th_pool_geom *g, npy_intp planes, npy_intp h, npy_intp w, \
                            npy_intp oh, npy_intp ow, const T *x, const T *z, const T *gz, \
                            T *gx, int grad_grad, T *out, const npy_intp *div, \
                            const npy_intp *cmap, const npy_intp *cols, T *scratch) \
{ \
    int spread = !grad_grad && g->sw >= g->ww; \
    _Pragma("omp parallel if (planes * oh * ow * g->wh * g->ww > 65536)") \
    { \
    T *zl = scratch + TH_POOL_STRIDE(w) * omp_get_thread_num(), *gl = zl + w; \
    _Pragma("omp for schedule(static)") \
    for (npy_intp q = 0; q < planes; ++q) { \
        for (npy_intp y = 0; y < oh; ++y) { \
            npy_intp r0, r1, row = (q * oh + y) * ow; \
            npy_intp dy = th_pool_span(y, h, g->wh, g->sh, g->ph, g->mode, &r0, &r1); \
            if (grad_grad) for (npy_intp c = 0; c < ow; ++c) out[row + c] = 0; \
            if (spread) { \
                for (npy_intp c = 0; c < w; ++c) { \
                    npy_intp o = cmap[c]; \
                    gl[c] = o < 0 ? (T)0 : g->mode == TH_POOL_MAX || g->mode == TH_POOL_SUM \
                        ? gz[row + o] : gz[row + o] / (T)(dy * div[o]); \
                    if (z) zl[c] = o < 0 ? (T)NAN : z[row + o]; \
                } \
                for (npy_intp r = r0; r < r1; ++r) { \
                    T *d = gx + (q * h + r) * w; \
                    if (z) { \
                        const T *xr = x + (q * h + r) * w; \
                        _Pragma("omp simd") \
                        for (npy_intp c = 0; c < w; ++c) d[c] += xr[c] == zl[c] ? gl[c] : 0; \
                    } else { \
                        _Pragma("omp simd") \
                        for (npy_intp c = 0; c < w; ++c) d[c] += gl[c]; \
                    } \
                } \
                continue; \
            } \
            for (npy_intp r = r0; r < r1; ++r) \
                for (npy_intp j = 0; j < g->ww; ++j) { \
                    npy_intp lo = cols[2 * j], hi = cols[2 * j + 1], sw = g->sw; \
                    npy_intp at = q * h * w + r * w + j - g->pw; \
                    if (g->mode != TH_POOL_MAX) { \
                        for (npy_intp c = lo; c < hi; ++c) \
                            gx[at + c * sw] += g->mode == TH_POOL_SUM ? gz[row + c] \
                                : gz[row + c] / (T)(dy * div[c]); \
                    } else if (grad_grad) { \
                        for (npy_intp c = lo; c < hi; ++c) \
                            out[row + c] += x[at + c * sw] == z[row + c] ? gx[at + c * sw] : 0; \
                    } else { \
                        for (npy_intp c = lo; c < hi; ++c) \
                            if (x[at + c * sw] == z[row + c]) gx[at + c * sw] += gz[row + c]; \
                    } \
                } \
        } \
    } \
    } \
}
TH_DEF_POOL(float)
TH_DEF_POOL(double)

/* each output column's divisor (the window's width for the average modes), then for each
 * input column the output column whose window holds it when windows do not overlap along a
 * row (-1 for none), then th_pool_cols's [lo, hi) for each column offset of the window:
 * ow + w + 2*ww entries, or NULL with MemoryError set */
static npy_intp *th_pool_columns(const th_pool_geom *g, npy_intp w, npy_intp ow)
{
    npy_intp *div = (npy_intp *)PyMem_Malloc(sizeof(npy_intp) * (ow + w + 2 * g->ww + 1));
    if (!div) { PyErr_NoMemory(); return NULL; }
    for (npy_intp c = 0; c < ow; ++c) {
        npy_intp lo, hi;
        div[c] = th_pool_span(c, w, g->ww, g->sw, g->pw, g->mode, &lo, &hi);
    }
    for (npy_intp c = 0; c < w; ++c) {
        npy_intp o = (c + g->pw) / g->sw;
        div[ow + c] = (c + g->pw) % g->sw < g->ww && o < ow ? o : -1;
    }
    for (npy_intp j = 0; j < g->ww; ++j)
        th_pool_cols(j, w, g->sw, g->pw, ow, div + ow + w + 2 * j, div + ow + w + 2 * j + 1);
    return div;
}

/* TH_POOL_STRIDE(w) elements of `type` (float or double) for each OpenMP thread */
static PyArrayObject *th_pool_scratch(npy_intp w, int type)
{
    npy_intp n = TH_POOL_STRIDE(w) * omp_get_max_threads();
    return (PyArrayObject *)PyArray_EMPTY(1, &n, type, 0);
}

/* planes, rows, cols of x (ndim >= 2) and the pooled rows and cols */
static void th_pool_dims(const th_pool_geom *g, PyArrayObject *x, npy_intp *planes,
                         npy_intp *h, npy_intp *w, npy_intp *oh, npy_intp *ow)
{
    int nd = PyArray_NDIM(x);
    *planes = 1;
    for (int k = 0; k < nd - 2; ++k) *planes *= PyArray_DIM(x, k);
    *h = PyArray_DIM(x, nd - 2); *w = PyArray_DIM(x, nd - 1);
    *oh = th_pool_len(*h, g->wh, g->sh, g->ph, g->ignore_border);
    *ow = th_pool_len(*w, g->ww, g->sw, g->pw, g->ignore_border);
}

/* a new array of `type` with x's leading shape and last two axes (a, b) */
static PyArrayObject *th_pool_new(PyArrayObject *x, npy_intp a, npy_intp b, int type, int zero)
{
    int nd = PyArray_NDIM(x);
    npy_intp dims[NPY_MAXDIMS];
    for (int k = 0; k < nd - 2; ++k) dims[k] = PyArray_DIM(x, k);
    dims[nd - 2] = a; dims[nd - 1] = b;
    return (PyArrayObject *)(zero ? PyArray_ZEROS(nd, dims, type, 0)
                                  : PyArray_EMPTY(nd, dims, type, 0));
}

/* 1 if `a` is of `type` and has x's leading shape and the pooled (oh, ow) last axes */
static int th_pool_fits(PyArrayObject *a, PyArrayObject *x, int type, npy_intp oh, npy_intp ow)
{
    int nd = PyArray_NDIM(x);
    if (PyArray_TYPE(a) != type || PyArray_NDIM(a) != nd) return 0;
    for (int k = 0; k < nd - 2; ++k) if (PyArray_DIM(a, k) != PyArray_DIM(x, k)) return 0;
    return PyArray_DIM(a, nd - 2) == oh && PyArray_DIM(a, nd - 1) == ow;
}

static PyObject *th_pool(PyArrayObject *x, const th_pool_geom *g)
{
    int type = PyArray_TYPE(x);
    npy_intp planes, h, w, oh, ow;
    if (type != NPY_FLOAT32 && type != NPY_FLOAT64) return NULL;
    th_pool_dims(g, x, &planes, &h, &w, &oh, &ow);
    npy_intp *div = th_pool_columns(g, w, ow);
    PyArrayObject *sc = div ? th_pool_scratch(w, type) : NULL;
    PyArrayObject *c = sc ? (PyArrayObject *)PyArray_GETCONTIGUOUS(x) : NULL;
    PyArrayObject *z = c ? th_pool_new(x, oh, ow, type, 0) : NULL;
    if (z) {
        if (type == NPY_FLOAT32)
            th_pool_fwd_float(g, planes, h, w, oh, ow, (const float *)PyArray_DATA(c),
                              (float *)PyArray_DATA(z), div, div + ow + w,
                              (float *)PyArray_DATA(sc));
        else
            th_pool_fwd_double(g, planes, h, w, oh, ow, (const double *)PyArray_DATA(c),
                               (double *)PyArray_DATA(z), div, div + ow + w,
                               (double *)PyArray_DATA(sc));
    }
    Py_XDECREF(c); Py_XDECREF(sc); PyMem_Free(div);
    return (PyObject *)z;
}

/* MaxPoolGrad (z given, grad_grad 0), AveragePoolGrad (z NULL) or MaxPoolGradGrad
 * (grad_grad 1: g is the x-shaped gradient, the result has z's shape) */
static PyObject *th_pool_grad(PyArrayObject *x, PyArrayObject *z, PyArrayObject *g_,
                              const th_pool_geom *g, int grad_grad)
{
    int type = PyArray_TYPE(g_);
    npy_intp planes, h, w, oh, ow;
    if (type != NPY_FLOAT32 && type != NPY_FLOAT64) return NULL;
    th_pool_dims(g, x, &planes, &h, &w, &oh, &ow);
    if ((z || grad_grad) && (PyArray_TYPE(x) != type || !th_pool_fits(z, x, type, oh, ow)))
        return NULL;
    if (grad_grad ? !th_pool_fits(g_, x, type, h, w) : !th_pool_fits(g_, x, type, oh, ow))
        return NULL;
    npy_intp *div = th_pool_columns(g, w, ow);
    PyArrayObject *sc = div ? th_pool_scratch(w, type) : NULL;
    if (!sc) { PyMem_Free(div); return NULL; }
    PyArrayObject *xc = z ? (PyArrayObject *)PyArray_GETCONTIGUOUS(x) : NULL;
    PyArrayObject *zc = z ? (PyArrayObject *)PyArray_GETCONTIGUOUS(z) : NULL;
    PyArrayObject *gc = (PyArrayObject *)PyArray_GETCONTIGUOUS(g_);
    PyArrayObject *out = NULL;
    if ((!z || (xc && zc)) && gc)
        out = grad_grad ? th_pool_new(x, oh, ow, type, 0) : th_pool_new(x, h, w, type, 1);
    if (out) {
        void *gx = grad_grad ? PyArray_DATA(gc) : PyArray_DATA(out);
        void *gz = grad_grad ? NULL : PyArray_DATA(gc);
        void *res = grad_grad ? PyArray_DATA(out) : NULL;
        if (type == NPY_FLOAT32)
            th_pool_bwd_float(g, planes, h, w, oh, ow,
                              xc ? (const float *)PyArray_DATA(xc) : NULL,
                              zc ? (const float *)PyArray_DATA(zc) : NULL, (const float *)gz,
                              (float *)gx, grad_grad, (float *)res, div, div + ow,
                              div + ow + w, (float *)PyArray_DATA(sc));
        else
            th_pool_bwd_double(g, planes, h, w, oh, ow,
                               xc ? (const double *)PyArray_DATA(xc) : NULL,
                               zc ? (const double *)PyArray_DATA(zc) : NULL,
                               (const double *)gz, (double *)gx, grad_grad, (double *)res,
                               div, div + ow, div + ow + w, (double *)PyArray_DATA(sc));
    }
    Py_XDECREF(xc); Py_XDECREF(zc); Py_XDECREF(gc); Py_DECREF(sc); PyMem_Free(div);
    return (PyObject *)out;
}
