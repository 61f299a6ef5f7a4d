/* theanine cpu_c: Dot and Gemm as one call of gemm in NumPy's OpenBLAS (program.h includes
 * it; th_init_blas receives the gemm addresses). */

/* BLAS gemm from NumPy's bundled OpenBLAS (ILP64 cblas interface), set by th_init_blas */
typedef void (*th_sgemm_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                           int64_t, const float *, int64_t, float, float *, int64_t);
typedef void (*th_dgemm_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                           int64_t, const double *, int64_t, double, double *, int64_t);
static th_sgemm_t th_sgemm = NULL;
static th_dgemm_t th_dgemm = NULL;
int th_init_blas(void *s, void *d) { th_sgemm = (th_sgemm_t)s; th_dgemm = (th_dgemm_t)d; return 0; }

/* OpenBLAS's openblas_set_num_threads_local (this thread's BLAS threads; returns the previous
 * count), set by th_init_blas_threads when NumPy's OpenBLAS has it: a loop's many small GEMMs
 * run faster on one thread than split over threads woken for each */
typedef int (*th_blas_threads_t)(int);
static th_blas_threads_t th_blas_threads = NULL;
int th_init_blas_threads(void *f) { th_blas_threads = (th_blas_threads_t)f; return 0; }

typedef struct { char *data; npy_intp rows, cols, s0, s1; } th_mat;

/* BLAS layout of a strided matrix: 111 (as is) or 112 (transposed) and its leading dimension;
 * -1 if it must be copied first */
static int th_blas_layout(const th_mat *m, npy_intp it, int *trans, int64_t *ld)
{
    npy_intp s0 = m->rows <= 1 ? m->cols * it : m->s0;
    npy_intp s1 = m->cols <= 1 ? it : m->s1;
    if (s1 == it && s0 > 0 && s0 % it == 0 && s0 >= m->cols * it) {
        *trans = 111; *ld = s0 / it > 1 ? s0 / it : 1; return 0;
    }
    s0 = m->rows <= 1 ? it : m->s0;
    s1 = m->cols <= 1 ? m->rows * it : m->s1;
    if (s0 == it && s1 > 0 && s1 % it == 0 && s1 >= m->rows * it) {
        *trans = 112; *ld = s1 / it > 1 ? s1 / it : 1; return 0;
    }
    return -1;
}

/* `a` (2-d, or 1-d seen as a row or a column) as a strided matrix */
static void th_as_mat(PyArrayObject *a, int as_row, th_mat *m)
{
    if (PyArray_NDIM(a) == 2) {
        m->rows = PyArray_DIM(a, 0); m->cols = PyArray_DIM(a, 1);
        m->s0 = PyArray_STRIDE(a, 0); m->s1 = PyArray_STRIDE(a, 1);
    } else if (as_row) {
        m->rows = 1; m->cols = PyArray_DIM(a, 0); m->s0 = 0; m->s1 = PyArray_STRIDE(a, 0);
    } else {
        m->rows = PyArray_DIM(a, 0); m->cols = 1; m->s0 = PyArray_STRIDE(a, 0); m->s1 = 0;
    }
    m->data = PyArray_BYTES(a);
}

/* out = alpha * a.b (+ beta * z): a and b 1-d or 2-d (np.dot semantics), z NULL or an array
 * of the product's shape; into NULL or where the product is wanted (th_into). Returns a new
 * reference to the product, or NULL with an exception set. */
static PyObject *th_dot(int step, PyArrayObject *a, PyArrayObject *b, PyArrayObject *z,
                        double alpha, double beta, PyObject *into)
{
    int type = PyArray_TYPE(a);
    npy_intp it = PyArray_ITEMSIZE(a);
    PyObject *ca = NULL, *cb = NULL, *out = NULL;
    th_mat A, B;
    th_as_mat(a, 1, &A);
    th_as_mat(b, 0, &B);
    if (A.cols != B.rows) {
        PyObject *sa = PyObject_GetAttrString((PyObject *)a, "shape");
        PyObject *sb = PyObject_GetAttrString((PyObject *)b, "shape");
        PyErr_Format(PyExc_ValueError, "shapes %R and %R are not aligned for dot (inner "
                     "dimensions %zd and %zd differ; step %d)", sa, sb, A.cols, B.rows, step);
        Py_XDECREF(sa); Py_XDECREF(sb);
        return NULL;
    }
    npy_intp dims[2]; int nd = 0;
    if (PyArray_NDIM(a) == 2) dims[nd++] = A.rows;
    if (PyArray_NDIM(b) == 2) dims[nd++] = B.cols;
    out = (PyObject *)th_into(into, nd, dims, type);
    if (!out) out = PyArray_EMPTY(nd, dims, type, 0);
    if (!out) return NULL;
    npy_intp M = A.rows, N = B.cols, K = A.cols;
    char *C = PyArray_BYTES((PyArrayObject *)out);
    if (z) {
        if (PyArray_CopyInto((PyArrayObject *)out, z) < 0) goto fail;
    } else {
        beta = 0.0;
    }
    if (M == 0 || N == 0) return out;
    if (K == 0) {  /* an empty sum: beta * z, or zeros */
        for (npy_intp i = 0; i < M * N; ++i) {
            if (type == NPY_FLOAT64) ((double *)C)[i] = z ? beta * ((double *)C)[i] : 0.0;
            else ((float *)C)[i] = z ? (float)beta * ((float *)C)[i] : 0.0f;
        }
        return out;
    }
    int ta, tb; int64_t lda, ldb;
    if (th_blas_layout(&A, it, &ta, &lda) < 0) {
        ca = PyArray_NewCopy(a, NPY_CORDER);
        if (!ca) goto fail;
        th_as_mat((PyArrayObject *)ca, 1, &A);
        th_blas_layout(&A, it, &ta, &lda);
    }
    if (th_blas_layout(&B, it, &tb, &ldb) < 0) {
        cb = PyArray_NewCopy(b, NPY_CORDER);
        if (!cb) goto fail;
        th_as_mat((PyArrayObject *)cb, 0, &B);
        th_blas_layout(&B, it, &tb, &ldb);
    }
    if (type == NPY_FLOAT64)
        th_dgemm(101, ta, tb, M, N, K, alpha, (const double *)A.data, lda,
                 (const double *)B.data, ldb, beta, (double *)C, N);
    else
        th_sgemm(101, ta, tb, M, N, K, (float)alpha, (const float *)A.data, lda,
                 (const float *)B.data, ldb, (float)beta, (float *)C, N);
    Py_XDECREF(ca); Py_XDECREF(cb);
    return out;
fail:
    Py_XDECREF(ca); Py_XDECREF(cb); Py_XDECREF(out);
    return NULL;
}
