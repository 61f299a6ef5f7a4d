/* theanine cpu_c: the check of the values th_run is called with.
 *
 * Kernels read an input through pointers of its compiled type and look at its first `nd`
 * axes, so every value must be an ndarray of that type, in native byte order, with exactly
 * that rank (unaligned data is read correctly). Python converts values before the call unless the function was compiled
 * with trust_input=True; this check keeps a value that was not converted from being read as
 * something it is not (a list read as an array crashes the process). A failure raises
 * `bad_value` (limits.BadValue) with the value's position.
 */
static int th_check_values(PyObject *inputs, int n, const int *types, const int *ndims,
                           PyObject *bad_value)
{
    if (!PyTuple_Check(inputs) || PyTuple_GET_SIZE(inputs) != n) {
        PyErr_Format(PyExc_TypeError, "the compiled program takes %d values", n);
        return -1;
    }
    for (int i = 0; i < n; ++i) {
        PyObject *o = PyTuple_GET_ITEM(inputs, i);
        if (types[i] < 0) continue;  /* not an array (a sparse matrix): read by library calls */
        if (PyArray_Check(o)) {
            PyArrayObject *a = (PyArrayObject *)o;
            if (PyArray_NDIM(a) == ndims[i] && PyArray_EquivTypenums(PyArray_TYPE(a), types[i])
                && PyArray_ISNOTSWAPPED(a))
                continue;
        }
        PyObject *k = PyLong_FromLong(i);
        if (k) { PyErr_SetObject(bad_value, k); Py_DECREF(k); }
        return -1;
    }
    return 0;
}
