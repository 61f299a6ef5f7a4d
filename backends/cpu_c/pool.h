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

#define TH_DEF_POOL(T) \
static void th_pool_fwd_##T(const th_pool_geom *g, npy_intp planes, npy_intp h, npy_intp w, \
                            npy_intp oh, npy_intp ow, const T *x, T *z) \
{ \
    _Pragma("omp parallel for schedule(static) if (planes * oh * ow * g->wh * g->ww > 65536)") \
    for (npy_intp q = 0; q < planes; ++q) { \
        const T *xp = x + q * h * w; \
        T *zp = z + q * oh * ow; \
        for (npy_intp y = 0; y < oh; ++y) { \
            npy_intp r0, r1, c0, c1; \
            npy_intp dy = th_pool_span(y, h, g->wh, g->sh, g->ph, g->mode, &r0, &r1); \
            for (npy_intp xx = 0; xx < ow; ++xx) { \
                npy_intp dx = th_pool_span(xx, w, g->ww, g->sw, g->pw, g->mode, &c0, &c1); \
                T acc; \
                if (g->mode == TH_POOL_MAX) { \
                    acc = -INFINITY; \
                    for (npy_intp r = r0; r < r1; ++r) \
                        for (npy_intp c = c0; c < c1; ++c) { \
                            T v = xp[r * w + c]; \
                            if (v > acc || v != v) acc = v; \
                            if (acc != acc) { r = r1; break; } \
                        } \
                } else { \
                    acc = 0; \
                    for (npy_intp r = r0; r < r1; ++r) \
                        for (npy_intp c = c0; c < c1; ++c) acc += xp[r * w + c]; \
                    if (g->mode != TH_POOL_SUM) acc = acc / (T)(dy * dx); \
                } \
                zp[y * ow + xx] = acc; \
            } \
        } \
    } \
} \
/* gx (zeroed) += gz at each window's maxima (max) or gz / divisor over each window; or, with \
 * grad_grad, out[window] = sum of gx over its maxima */ \
static void th_pool_bwd_##T(const th_pool_geom *g, npy_intp planes, npy_intp h, npy_intp w, \
                            npy_intp oh, npy_intp ow, const T *x, const T *z, const T *gz, \
                            T *gx, int grad_grad, T *out) \
{ \
    _Pragma("omp parallel for schedule(static) if (planes * oh * ow * g->wh * g->ww > 65536)") \
    for (npy_intp q = 0; q < planes; ++q) { \
        const T *xp = x ? x + q * h * w : NULL, *zp = z ? z + q * oh * ow : NULL; \
        const T *gzp = gz ? gz + q * oh * ow : NULL; \
        T *gxp = gx + q * h * w; \
        for (npy_intp y = 0; y < oh; ++y) { \
            npy_intp r0, r1, c0, c1; \
            npy_intp dy = th_pool_span(y, h, g->wh, g->sh, g->ph, g->mode, &r0, &r1); \
            for (npy_intp xx = 0; xx < ow; ++xx) { \
                npy_intp dx = th_pool_span(xx, w, g->ww, g->sw, g->pw, g->mode, &c0, &c1); \
                if (g->mode == TH_POOL_MAX) { \
                    T m = zp[y * ow + xx], s = 0; \
                    for (npy_intp r = r0; r < r1; ++r) \
                        for (npy_intp c = c0; c < c1; ++c) \
                            if (xp[r * w + c] == m) { \
                                if (grad_grad) s += gxp[r * w + c]; \
                                else gxp[r * w + c] += gzp[y * ow + xx]; \
                            } \
                    if (grad_grad) out[q * oh * ow + y * ow + xx] = s; \
                } else { \
                    T share = g->mode == TH_POOL_SUM ? gzp[y * ow + xx] \
                                                     : gzp[y * ow + xx] / (T)(dy * dx); \
                    for (npy_intp r = r0; r < r1; ++r) \
                        for (npy_intp c = c0; c < c1; ++c) gxp[r * w + c] += share; \
                } \
            } \
        } \
    } \
}
TH_DEF_POOL(float)
TH_DEF_POOL(double)

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
    PyArrayObject *c = (PyArrayObject *)PyArray_GETCONTIGUOUS(x);
    PyArrayObject *z = c ? th_pool_new(x, oh, ow, type, 0) : NULL;
    if (z) {
        if (type == NPY_FLOAT32)
            th_pool_fwd_float(g, planes, h, w, oh, ow, (const float *)PyArray_DATA(c),
                              (float *)PyArray_DATA(z));
        else
            th_pool_fwd_double(g, planes, h, w, oh, ow, (const double *)PyArray_DATA(c),
                               (double *)PyArray_DATA(z));
    }
    Py_XDECREF(c);
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
                              (float *)gx, grad_grad, (float *)res);
        else
            th_pool_bwd_double(g, planes, h, w, oh, ow,
                               xc ? (const double *)PyArray_DATA(xc) : NULL,
                               zc ? (const double *)PyArray_DATA(zc) : NULL,
                               (const double *)gz, (double *)gx, grad_grad, (double *)res);
    }
    Py_XDECREF(xc); Py_XDECREF(zc); Py_XDECREF(gc);
    return (PyObject *)out;
}
