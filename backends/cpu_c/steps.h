/* theanine cpu_c: what th_run's steps share, kept out of the generated source so that each
 * step renders as a few calls (a graph of a thousand steps stays quick to compile). */
#include "boundary.h"

/* Operand j of `sp`: the data of `a` and its strides over the loop's first nd axes, 0 along
 * axes where it is broadcast. */
static void th_operand(th_space *sp, int j, PyArrayObject *a, int nd)
{
    sp->base[j] = PyArray_BYTES(a);
    for (int d = 0; d < nd; ++d)
        sp->strides[j][d] = PyArray_DIM(a, d) == 1 ? 0 : PyArray_STRIDE(a, d);
}

/* A random draw's index operand: an array header (no memory is read through it) whose first
 * element is th_index_origin and whose strides, in units of one index, are a C-contiguous
 * array's of the draw's shape `size` (an int64 vector of nd lengths): an element's address
 * minus the origin is its flat index, however the loop is split, merged or broadcast. */
static char th_index_origin[1];

static PyObject *th_index_operand(PyArrayObject *size, int nd)
{
    npy_intp dims[TH_MAXDIMS], strides[TH_MAXDIMS], step = 1;
    if (PyArray_NDIM(size) != 1 || PyArray_DIM(size, 0) != nd ||
        PyArray_TYPE(size) != NPY_INT64) {
        PyErr_Format(PyExc_ValueError, "random draw: size must be an int64 vector of %d "
                     "lengths", nd);
        return NULL;
    }
    for (int d = nd - 1; d >= 0; --d) {
        npy_int64 n = *(npy_int64 *)PyArray_GETPTR1(size, d);
        if (n < 0) {
            PyErr_Format(PyExc_ValueError, "random draw: size must not have negative lengths, "
                         "got %lld on axis %d", (long long)n, d);
            return NULL;
        }
        dims[d] = (npy_intp)n;
        strides[d] = step;
        step *= n > 1 ? (npy_intp)n : 1;
    }
    return PyArray_NewFromDescr(&PyArray_Type, PyArray_DescrFromType(NPY_UINT8), nd, dims,
                                strides, th_index_origin, 0, NULL);
}

/* The loop space of a kernel step over nd axes: `shape` is the broadcast of its n inputs'
 * shapes, which become operands nout.. of `sp` (the outputs, 0..nout-1, are set after they
 * are allocated). -1 with an exception set if the shapes do not broadcast. */
static int th_loop_space(int step, int nd, int n, PyArrayObject **ins, npy_intp *shape,
                         th_space *sp, int nout)
{
    for (int d = 0; d < nd; ++d) shape[d] = 1;
    for (int i = 0; i < n; ++i)
        for (int d = 0; d < nd; ++d) {
            npy_intp m = PyArray_DIM(ins[i], d);
            if (m == 1) continue;
            if (shape[d] == 1) shape[d] = m;
            else if (shape[d] != m) return th_fail_shapes(step, n, ins);
        }
    sp->nop = nout + n;
    sp->ndim = nd;
    for (int d = 0; d < nd; ++d) sp->shape[d] = shape[d];
    for (int i = 0; i < n; ++i) th_operand(sp, nout + i, ins[i], nd);
    return 0;
}

/* Output `out` of library call `call` (`item`, borrowed) as the array the graph declares:
 * of `type` (NumPy's safe casts allowed) with `nd` axes, since kernels read it through
 * pointers of that type and over its first nd axes. Otherwise NULL with `bad` (BadResult in
 * limits.py) raised with (call, out, item), which names the op. */
static PyObject *th_host_value(PyObject *item, int type, int nd, int call, int out,
                               PyObject *bad)
{
    if (!item) return NULL;
    PyObject *a = PyArray_FromAny(item, PyArray_DescrFromType(type), 0, 0,
                                  NPY_ARRAY_NOTSWAPPED, NULL);
    if (a && PyArray_NDIM((PyArrayObject *)a) == nd) return a;
    Py_XDECREF(a);
    if (!a && !PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError))
        return NULL;  /* (out of memory, ...) */
    PyErr_Clear();
    PyObject *args = Py_BuildValue("(iiO)", call, out, item);
    if (args) { PyErr_SetObject(bad, args); Py_DECREF(args); }
    return NULL;
}
