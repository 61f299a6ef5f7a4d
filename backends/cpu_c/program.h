/* theanine cpu_c: the start of every generated program (after the TH_MAX* limits): the
 * Python and NumPy headers, the entry points th_init and th_init_blas, and the helpers
 * its steps call (errors, views, reused output buffers, BLAS gemm). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "runtime.h"

static int th_ready = 0;
int th_init(void) { if (!th_ready) { if (_import_array() < 0) return -1; th_ready = 1; } return 0; }

static int th_fail_shapes(int step, int n, PyArrayObject **arrs)
{
    PyObject *shapes = PyList_New(0);
    for (int i = 0; shapes && i < n; ++i) {
        PyObject *t = PyTuple_New(PyArray_NDIM(arrs[i]));
        for (int d = 0; t && d < PyArray_NDIM(arrs[i]); ++d)
            PyTuple_SET_ITEM(t, d, PyLong_FromSsize_t(PyArray_DIM(arrs[i], d)));
        if (t) { PyList_Append(shapes, t); Py_DECREF(t); }
    }
    PyErr_Format(PyExc_ValueError, "shapes %R cannot be broadcast together (step %d)",
                 shapes, step);
    Py_XDECREF(shapes);
    return -1;
}

static void th_fail_empty(int step, const char *kind, int nd, npy_intp *shape)
{
    PyObject *t = PyTuple_New(nd);
    for (int d = 0; t && d < nd; ++d) PyTuple_SET_ITEM(t, d, PyLong_FromSsize_t(shape[d]));
    PyErr_Format(PyExc_ValueError, "cannot take the %s over an empty axis of an input with "
                 "shape %R (step %d)", kind, t, step);
    Py_XDECREF(t);
}

/* a new reference to `into` when it is a C-contiguous array of `nd` axes of lengths `shape` and
 * type `type` (where a loop body's output is wanted: a row of its trace), else NULL (no error) */
static PyArrayObject *th_into(PyObject *into, int nd, npy_intp *shape, int type)
{
    if (!into) return NULL;
    PyArrayObject *a = (PyArrayObject *)into;
    if (PyArray_NDIM(a) != nd || PyArray_TYPE(a) != type || !PyArray_IS_C_CONTIGUOUS(a) ||
        !PyArray_ISWRITEABLE(a))
        return NULL;
    for (int d = 0; d < nd; ++d)
        if (PyArray_DIM(a, d) != shape[d]) return NULL;
    Py_INCREF(into);
    return a;
}

#include "dot.h"

/* a view of x with axes reordered ('x' axes of length 1 inserted, dropped axes of length 1) */
static PyObject *th_dimshuffle(int step, PyArrayObject *x, int nd, const int *order,
                               int ndrop, const int *drop)
{
    for (int i = 0; i < ndrop; ++i)
        if (PyArray_DIM(x, drop[i]) != 1) {
            PyErr_Format(PyExc_ValueError, "cannot drop axis %d of length %zd (only length-1 "
                         "axes can be dropped; step %d)", drop[i], PyArray_DIM(x, drop[i]), step);
            return NULL;
        }
    npy_intp dims[TH_MAXDIMS], strides[TH_MAXDIMS];
    for (int j = 0; j < nd; ++j) {
        if (order[j] < 0) { dims[j] = 1; strides[j] = 0; }
        else { dims[j] = PyArray_DIM(x, order[j]); strides[j] = PyArray_STRIDE(x, order[j]); }
    }
    PyArray_Descr *descr = PyArray_DESCR(x);
    Py_INCREF(descr);
    PyObject *v = PyArray_NewFromDescr(&PyArray_Type, descr, nd, dims, strides,
                                       PyArray_DATA(x), PyArray_FLAGS(x) & NPY_ARRAY_WRITEABLE,
                                       NULL);
    if (!v) return NULL;
    Py_INCREF(x);
    if (PyArray_SetBaseObject((PyArrayObject *)v, (PyObject *)x) < 0) { Py_DECREF(v); return NULL; }
    return v;
}

/* 1 if x's dimensions are the `dims` (as many as x has axes), else 0 */
static int th_dims_equal(PyArrayObject *x, const npy_int64 *dims)
{
    for (int d = 0; d < PyArray_NDIM(x); ++d)
        if (PyArray_DIM(x, d) != dims[d]) return 0;
    return 1;
}

/* g (float32/64) summed down to the `nd` lengths `shape` (the inverse of broadcasting) when
 * that sums exactly one axis, by NumPy's add.reduce as the reference does; NULL with no
 * exception set for any other case (the caller falls back to the reference) */
static PyObject *th_sum_to_shape(PyArrayObject *g, int nd, const npy_int64 *shape)
{
    int lead = PyArray_NDIM(g) - nd, type = PyArray_TYPE(g), axis = -1, count = lead;
    if (lead < 0 || nd > TH_MAXDIMS || (type != NPY_FLOAT32 && type != NPY_FLOAT64)) return NULL;
    if (lead == 1) axis = 0;
    npy_intp dims[TH_MAXDIMS + 1];
    for (int i = 0; i < nd; ++i) {
        npy_intp have = PyArray_DIM(g, lead + i);
        dims[i] = (npy_intp)shape[i];
        if (dims[i] == 1 && have != 1) { axis = lead + i; ++count; }
        else if (dims[i] != have) return NULL;
    }
    if (count != 1) return NULL;
    PyObject *sum = PyArray_Sum(g, axis, NPY_NOTYPE, NULL);  /* (a NumPy scalar when 0-d) */
    PyObject *a = sum ? PyArray_FROM_O(sum) : NULL;
    Py_XDECREF(sum);
    if (!a) return NULL;
    PyArray_Dims to = {dims, nd};
    PyObject *r = PyArray_Newshape((PyArrayObject *)a, &to, NPY_CORDER);
    Py_DECREF(a);
    return r;
}

/* the length of axis i as a 0-d int64 array */
static PyObject *th_shape_i(PyArrayObject *x, int i)
{
    PyObject *r = PyArray_ZEROS(0, NULL, NPY_INT64, 0);
    if (r) *(int64_t *)PyArray_DATA((PyArrayObject *)r) = PyArray_DIM(x, i);
    return r;
}

/* the array kept in `work[slot]` if its shape, strides and type match and only `work` refers
 * to it (whoever received it on an earlier call has let it go), else a new one kept there;
 * `strides` NULL means C order */
static PyArrayObject *th_buffer(PyObject *work, int slot, int nd, npy_intp *shape,
                                npy_intp *strides, int type)
{
    PyObject *w = PyList_GET_ITEM(work, slot);
    if (w != Py_None) {
        PyArrayObject *a = (PyArrayObject *)w;
        int same = PyArray_NDIM(a) == nd && PyArray_TYPE(a) == type;
        for (int d = 0; same && d < nd; ++d)
            same = PyArray_DIM(a, d) == shape[d] && (!strides || shape[d] <= 1
                                                     || PyArray_STRIDE(a, d) == strides[d]);
        if (same && Py_REFCNT(w) == 1) { Py_INCREF(w); return a; }
    }
    PyObject *a = PyArray_NewFromDescr(&PyArray_Type, PyArray_DescrFromType(type), nd, shape,
                                       strides, NULL, 0, NULL);
    if (!a) return NULL;
    Py_INCREF(a);
    PyList_SetItem(work, slot, a);
    return (PyArrayObject *)a;
}
