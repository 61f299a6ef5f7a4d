/* theanine cpu_c: softmax and log-softmax along one axis (the Softmax and LogSoftmax entries
 * of the C backend's op table include it when a program uses them).
 *
 * Included after the SIMD math declarations so that the exp of a contiguous line vectorizes
 * through libmvec; the sum of a line is accumulated in double (NumPy sums float32 pairwise,
 * which keeps about as many digits). Each line is shifted by its maximum, or by 0 when that is
 * not finite (NaN, +-inf), as the reference does; the maximum is taken ignoring NaN, which
 * changes nothing: a NaN anywhere in a line makes its sum, and so every output of the line,
 * NaN either way.
 */
#define TH_DEF_SOFTMAX(T, SFX) \
static void th_softmax_line_##T(int logmode, npy_intp n, npy_intp st, const T *xl, T *yl) \
{ \
    T m = -INFINITY; double s = 0; \
    if (st == 1) { \
        _Pragma("omp simd reduction(max:m)") \
        for (npy_intp k = 0; k < n; ++k) m = xl[k] > m ? xl[k] : m; \
        if (!isfinite(m)) m = 0; \
        if (logmode) { \
            _Pragma("omp simd reduction(+:s)") \
            for (npy_intp k = 0; k < n; ++k) s += exp##SFX(xl[k] - m); \
            T ls = (T)log(s); \
            _Pragma("omp simd") \
            for (npy_intp k = 0; k < n; ++k) yl[k] = (xl[k] - m) - ls; \
        } else { \
            _Pragma("omp simd reduction(+:s)") \
            for (npy_intp k = 0; k < n; ++k) { T e = exp##SFX(xl[k] - m); yl[k] = e; s += e; } \
            _Pragma("omp simd") \
            for (npy_intp k = 0; k < n; ++k) yl[k] = yl[k] / (T)s; \
        } \
        return; \
    } \
    for (npy_intp k = 0; k < n; ++k) m = xl[k * st] > m ? xl[k * st] : m; \
    if (!isfinite(m)) m = 0; \
    for (npy_intp k = 0; k < n; ++k) { \
        T e = exp##SFX(xl[k * st] - m); s += e; if (!logmode) yl[k * st] = e; } \
    if (logmode) { T ls = (T)log(s); \
        for (npy_intp k = 0; k < n; ++k) yl[k * st] = (xl[k * st] - m) - ls; } \
    else { for (npy_intp k = 0; k < n; ++k) yl[k * st] = yl[k * st] / (T)s; } \
} \
static void th_softmax_##T(int logmode, npy_intp outer, npy_intp n, npy_intp inner, \
                           const T *x, T *y) \
{ \
    npy_intp lines = outer * inner; \
    _Pragma("omp parallel for if (lines * n > 32768) schedule(static)") \
    for (npy_intp l = 0; l < lines; ++l) { \
        npy_intp o = l / inner, i = l % inner; \
        th_softmax_line_##T(logmode, n, inner, x + o * n * inner + i, y + o * n * inner + i); \
    } \
}
TH_DEF_SOFTMAX(float, f)
TH_DEF_SOFTMAX(double, )

/* softmax / log-softmax along one axis of a C-contiguous array seen as (outer, n, inner) */
static PyObject *th_softmax(PyArrayObject *x, int axis, int logmode)
{
    PyArrayObject *c = (PyArrayObject *)PyArray_GETCONTIGUOUS(x);
    if (!c) return NULL;
    int nd = PyArray_NDIM(c);
    npy_intp outer = 1, inner = 1, n = PyArray_DIM(c, axis);
    for (int d = 0; d < axis; ++d) outer *= PyArray_DIM(c, d);
    for (int d = axis + 1; d < nd; ++d) inner *= PyArray_DIM(c, d);
    PyObject *y = PyArray_EMPTY(nd, PyArray_DIMS(c), PyArray_TYPE(c), 0);
    if (y) {
        if (PyArray_TYPE(c) == NPY_FLOAT64)
            th_softmax_double(logmode, outer, n, inner, (const double *)PyArray_DATA(c),
                              (double *)PyArray_DATA((PyArrayObject *)y));
        else
            th_softmax_float(logmode, outer, n, inner, (const float *)PyArray_DATA(c),
                             (float *)PyArray_DATA((PyArrayObject *)y));
    }
    Py_DECREF(c);
    return y;
}
