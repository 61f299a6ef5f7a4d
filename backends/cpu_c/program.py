"""Turn a lowered program (fused kernels and single nodes) into one C function.

`th_run(state, inputs)` receives the graph's input arrays and returns its outputs: kernels run
in C; the remaining nodes are called through their NumPy implementations (library calls) from
C. So one Python-level call runs the whole graph. `state` holds what differs between graphs
that share the same source (constant values, the library callables, the arrays kernels filled
on the last call, reused once nobody holds them), so identical graphs share one compiled
object.

Generated source only contains generated names and numbers, never a user string.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theanine.backends.cpu_c.dialect import CKernelRenderer, stored_accumulator_dtype
from theanine.backends.cpu_c.limits import MAX_DIMS, MAX_OPERANDS, c_defines, input_checks
from theanine.backends.cpu_c.parts import split_into_parts
from theanine.backends.cpu_c.softmax import SOFTMAX_SOURCE
from theanine.codegen.cstyle import reduce_identity
from theanine.codegen.fusion import KernelStep, NodeStep, Step
from theanine.graph.basic import Constant, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import DimShuffle, SumToShapeOf
from theanine.tensor.linalg import Dot
from theanine.tensor.nnet import LogSoftmax, Softmax
from theanine.tensor.shape_ops import ShapeI

NPY_TYPES = {"bool": "NPY_BOOL", "int8": "NPY_INT8", "int16": "NPY_INT16", "int32": "NPY_INT32",
             "int64": "NPY_INT64", "uint8": "NPY_UINT8", "uint16": "NPY_UINT16",
             "uint32": "NPY_UINT32", "uint64": "NPY_UINT64", "float16": "NPY_FLOAT16",
             "float32": "NPY_FLOAT32", "float64": "NPY_FLOAT64", "complex64": "NPY_COMPLEX64",
             "complex128": "NPY_COMPLEX128"}
GRAIN = 32768  # elements below which a kernel runs on one thread

HEADER = r"""
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

/* BLAS gemm from NumPy's bundled OpenBLAS (ILP64 cblas interface), set by th_init_blas */
typedef void (*th_sgemm_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                           int64_t, const float *, int64_t, float, float *, int64_t);
typedef void (*th_dgemm_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                           int64_t, const double *, int64_t, double, double *, int64_t);
static th_sgemm_t th_sgemm = NULL;
static th_dgemm_t th_dgemm = NULL;
int th_init_blas(void *s, void *d) { th_sgemm = (th_sgemm_t)s; th_dgemm = (th_dgemm_t)d; return 0; }

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

/* out = alpha * a.b (+ beta * z): a and b 1-d or 2-d (np.dot semantics), z NULL or an array
 * of the product's shape. Returns a new array, or NULL with an exception set. */
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
 * of the product's shape. Returns a new array, or NULL with an exception set. */
static PyObject *th_dot(int step, PyArrayObject *a, PyArrayObject *b, PyArrayObject *z,
                        double alpha, double beta)
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
    out = PyArray_EMPTY(nd, dims, type, 0);
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
"""


# libm functions glibc's libmvec has SIMD versions of; declared so that gcc vectorizes loops
# calling them (otherwise it only does under -ffast-math, which would change NaN semantics)
VECTOR_MATH = ["exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan",
               "asin", "acos", "atan", "sinh", "cosh", "tanh"]


def vector_math_declarations() -> str:
    lines = []
    for fn in VECTOR_MATH:
        lines += ["#pragma omp declare simd notinbranch", f"extern double {fn}(double);",
                  "#pragma omp declare simd notinbranch", f"extern float {fn}f(float);"]
    return "\n".join(lines)


@dataclass
class Program:
    """A rendered program and the state th_run needs."""

    source: str
    constants: tuple
    host_functions: tuple
    n_work: int
    host_nodes: dict  # index of a library call in host_functions -> its node


class _Emitter:
    def __init__(self, fgraph: FunctionGraph, steps: list[Step], blas: bool,
                 vector_math: bool):
        self.fgraph = fgraph
        self.blas = blas
        self.vector_math = vector_math
        self.steps = steps
        self.slot: dict[Variable | tuple, int] = {}  # (tuples: a step's temporaries)
        self.constants: list = []
        self.host: list = []
        self.host_nodes: dict = {}
        self.lines: list[str] = []
        self.kernels: list[str] = []
        self.kernel_names: dict[str, str] = {}  # rendered text -> name: one function each
        self.cuts: list[int] = []  # indices of self.lines between steps
        self.n_work = 0
        self.uses_softmax = False
        self.renderer = CKernelRenderer()
        self.last_use = self._last_uses()

    def _reads(self, step: Step) -> list[Variable]:
        return step.inputs if isinstance(step, KernelStep) else step.node.inputs

    def _writes(self, step: Step) -> list[Variable]:
        return step.outputs if isinstance(step, KernelStep) else step.node.outputs

    def _last_uses(self) -> dict:
        last = {}
        for k, s in enumerate(self.steps):
            for v in self._reads(s):
                last[v] = k
        for v in self.fgraph.outputs:
            last[v] = len(self.steps)
        return last

    def ref(self, v: Variable) -> str:
        """C expression of the (PyArrayObject *) holding v."""
        if v not in self.slot:
            if not isinstance(v, Constant):
                raise RuntimeError(f"cpu_c program: {v} read before it is computed")
            self.constants.append(np.require(v.data, requirements="C"))
            self.slot[v] = len(self.slot)
            self.lines.append(f"    v[{self.slot[v]}] = PyTuple_GET_ITEM(consts, "
                              f"{len(self.constants) - 1}); Py_INCREF(v[{self.slot[v]}]);")
        return f"((PyArrayObject *)v[{self.slot[v]}])"

    def new_slot(self, v: Variable | tuple) -> int:
        self.slot[v] = len(self.slot)
        return self.slot[v]

    def release(self, k: int) -> None:
        for v in dict.fromkeys(self._reads(self.steps[k])):
            if self.last_use.get(v) == k and v.owner is not None:
                s = self.slot[v]
                self.lines.append(f"    Py_CLEAR(v[{s}]);")

    def emit(self) -> Program:
        entry = []
        for i, v in enumerate(self.fgraph.inputs):
            s = self.new_slot(v)
            entry.append(f"    v[{s}] = PyTuple_GET_ITEM(inputs, {i}); Py_INCREF(v[{s}]);")
        for k, step in enumerate(self.steps):
            if isinstance(step, KernelStep):
                self.kernel_step(k, step)
            else:
                self.node_step(k, step)
            self.release(k)
            self.cuts.append(len(self.lines))
        for v in self.fgraph.outputs:
            self.ref(v)
        outs = ", ".join(str(self.slot[v]) for v in self.fgraph.outputs) or "0"
        n_outs = len(self.fgraph.outputs)
        parts, calls = split_into_parts(self.lines, self.cuts)
        n_vals = max(len(self.slot), 1)
        body = ["PyObject *th_run(PyObject *state, PyObject *inputs)", "{",
                f"    PyObject *v[{n_vals}] = {{0}};",
                "    PyObject *consts = PyTuple_GET_ITEM(state, 0);",
                "    PyObject *fns = PyTuple_GET_ITEM(state, 1);",
                "    PyObject *work = PyTuple_GET_ITEM(state, 2);",
                "    (void)consts; (void)fns; (void)work;"]
        body += input_checks(self.fgraph, NPY_TYPES)
        body += entry + calls
        body.append(f"    PyObject *result = PyTuple_New({n_outs});")
        body.append("    if (!result) goto fail;")
        body.append(f"    static const int outs[] = {{{outs}}};")
        body.append(f"    for (int j = 0; j < {n_outs}; ++j) {{ Py_INCREF(v[outs[j]]); "
                    "PyTuple_SET_ITEM(result, j, v[outs[j]]); }")
        body.append(f"    for (int i = 0; i < {n_vals}; ++i) Py_XDECREF(v[i]);")
        body.append("    return result;")
        body.append("fail:")
        body.append(f"    for (int i = 0; i < {n_vals}; ++i) Py_XDECREF(v[i]);")
        body.append("    return NULL;")
        body.append("}")
        simd_math = vector_math_declarations() if self.vector_math else ""
        softmax = SOFTMAX_SOURCE if self.uses_softmax else ""
        source = "\n".join([c_defines(), HEADER, '#include "steps.h"', simd_math, softmax,
                            self.renderer.dialect.prelude(), *self.kernels, *parts,
                            *body]) + "\n"
        return Program(source, tuple(self.constants), tuple(self.host), self.n_work,
                       self.host_nodes)

    # -- steps ---------------------------------------------------------------------------------
    def kernel_step(self, k: int, step: KernelStep) -> None:
        kern = step.kernel
        is_red = kern.is_reduction
        kern.name = "th_kernel"  # identical kernels (differing in parameters) share a function
        text = self.renderer.reduction(kern) if is_red else self.renderer.elementwise(kern)
        kern.name = self.kernel_names.setdefault(text, f"k{k}")
        if kern.name == f"k{k}":
            self.kernels.append(text.replace("th_kernel", kern.name))
        nd = kern.ndim
        L = self.lines
        ins = [self.ref(v) for v in step.inputs]
        nout = len(step.outputs)
        nop = nout + len(ins)
        if nop > MAX_OPERANDS or nd > MAX_DIMS:  # fusion and check_ranks keep within these
            raise RuntimeError(f"cpu_c program: kernel {k} has {nop} arrays of {nd} axes")
        L.append(f"    {{ /* step {k} */")
        L.append(f"    PyArrayObject *ins[] = {{{', '.join(ins) or 'NULL'}}};")
        L.append(f"    npy_intp shape[{max(nd, 1)}]; th_space sp;")
        L.append(f"    if (th_loop_space({k}, {nd}, {len(ins)}, ins, shape, &sp, {nout}) < 0) "
                 "goto fail;")
        if is_red:
            acc, narrow = self._reduction_output(k, step, nd)
        else:
            for j, v in enumerate(step.outputs):
                self._alloc(v, nd, "shape")
                L.append(f"    th_operand(&sp, {j}, (PyArrayObject *)v[{self.slot[v]}], {nd});")
        params = []
        for value, dt in zip(step.params, kern.params):
            self.constants.append(np.asarray(value, dtype=dt).reshape(()))
            params.append(f"PyArray_BYTES((PyArrayObject *)PyTuple_GET_ITEM(consts, "
                          f"{len(self.constants) - 1}))")
        L.append(f"    const char *prm[{max(len(params), 1)}] = {{{', '.join(params) or '0'}}};")
        if is_red:
            L.append(f"    if (th_reduce(&sp, lead, {kern.name}, prm, {GRAIN}, out_count, "
                     f"sizeof({self.renderer.dialect.type(acc)}), "
                     f"{kern.name}_combine) < 0) {{ PyErr_NoMemory(); goto fail; }}")
            L += narrow
        else:
            L.append(f"    th_elementwise(&sp, {kern.name}, prm, {GRAIN});")
        L.append("    }")

    def _reduction_output(self, k: int, step: KernelStep, nd: int) -> tuple[str, list[str]]:
        """Allocate the output (filled with the identity) in the memory order of the input
        that leads the loop (`lead`), and set operand 0's strides over the loop space (0
        along reduced axes). Returns the accumulator dtype and the lines that narrow a wider
        accumulator into the output after the reduction (none when it is the output)."""
        kern = step.kernel
        L = self.lines
        kept = [d for d in range(nd) if d not in kern.reduce_axes]
        out = step.outputs[0]
        dialect = self.renderer.dialect
        acc = stored_accumulator_dtype(kern, dialect)
        acc_t = dialect.type(acc)
        L.append("    int lead = th_lead(&sp, 1);")
        L.append(f"    npy_intp oshape[{max(len(kept), 1)}];")
        for j, d in enumerate(kept):
            L.append(f"    oshape[{j}] = shape[{d}];")
        if len(kept) > 1:
            L.append(f"    static const int kept[] = {{{', '.join(map(str, kept))}}};")
        narrow = []
        if acc == out.dtype:
            self._alloc(out, len(kept), "oshape", self._kept_strides(kept, acc_t, "ostr"))
            o = f"((PyArrayObject *)v[{self.slot[out]}])"
        else:  # a wider accumulator in a slot of its own, narrowed into the output after
            wide = self._alloc(("accumulator", k), len(kept), "oshape",
                               self._kept_strides(kept, acc_t, "wstr"), acc)
            o = f"((PyArrayObject *)v[{wide}])"
            # (the output's layout is worked out now: th_reduce reorders the loop space)
            self._alloc(out, len(kept), "oshape",
                        self._kept_strides(kept, dialect.type(out.dtype), "ostr"), lines=narrow)
            narrow.append(f"    if (PyArray_CopyInto((PyArrayObject *)v[{self.slot[out]}], {o}) "
                          f"< 0) goto fail;")
            narrow.append(f"    Py_CLEAR(v[{wide}]);")
        L.append(f"    npy_intp out_count = PyArray_SIZE({o});")
        if kern.reduce_op in ("max", "min"):
            axes = " || ".join(f"d == {a}" for a in kern.reduce_axes) or "0"
            L.append(f"    {{ npy_intp red = 1; for (int d = 0; d < {nd}; ++d) if ({axes}) "
                     f"red *= shape[d]; if (red == 0) {{ th_fail_empty({k}, "
                     f"\"{kern.reduce_op}\", {nd}, shape); goto fail; }} }}")
        ident = reduce_identity(kern.reduce_op, acc, dialect)
        L.append(f"    {{ {acc_t} *o = ({acc_t} *)PyArray_DATA({o}); "
                 f"for (npy_intp i = 0; i < out_count; ++i) o[i] = ({acc_t})({ident}); }}")
        L.append(f"    sp.base[0] = PyArray_BYTES({o});")
        j = 0
        for d in range(nd):
            if d in kern.reduce_axes:
                L.append(f"    sp.strides[0][{d}] = 0;")
            else:
                L.append(f"    sp.strides[0][{d}] = PyArray_DIM({o}, {j}) == 1 ? 0 : "
                         f"PyArray_STRIDE({o}, {j});")
                j += 1
        return acc, narrow

    def _kept_strides(self, kept: list[int], item_t: str, name: str) -> str:
        """C name of the strides (NULL: C order) that lay out the kept axes of `kept` in the
        lead input's memory order for items of C type `item_t`."""
        if len(kept) <= 1:
            return "NULL"
        lines = self.lines
        lines.append(f"    int64_t {name}_[{len(kept)}]; npy_intp *{name} = NULL;")
        lines.append(f"    if (lead > 0) {{ th_kept_strides({len(kept)}, kept, sp.shape, "
                     f"sp.strides[lead], sizeof({item_t}), {name}_); "
                     f"{name} = (npy_intp *){name}_; }}")
        return name

    def _alloc(self, v: Variable | tuple, nd: int, shape: str, strides: str = "NULL",
               dtype: str | None = None, lines: list[str] | None = None) -> int:
        """A kernel's output array (or a temporary keyed by a tuple, of `dtype`) in a new slot:
        the one this step filled on the previous call when nobody else holds it any more (so
        large arrays are not page-faulted in again), else new. Returns the slot."""
        s = self.new_slot(v)
        w = self.n_work
        self.n_work += 1
        (self.lines if lines is None else lines).append(
            f"    v[{s}] = (PyObject *)th_buffer(work, {w}, {nd}, {shape}, {strides}, "
            f"{NPY_TYPES[dtype or v.dtype]}); if (!v[{s}]) goto fail;")
        return s

    def node_step(self, k: int, step: NodeStep) -> None:
        node = step.node
        op = node.op
        if isinstance(op, DimShuffle):
            return self._dimshuffle(k, node)
        if isinstance(op, (Softmax, LogSoftmax)) and node.inputs[0].dtype in ("float32",
                                                                             "float64"):
            self.uses_softmax = True
            return self._simple(node, f"th_softmax({self.ref(node.inputs[0])}, {op.axis}, "
                                      f"{int(isinstance(op, LogSoftmax))})")
        if isinstance(op, ShapeI):
            return self._simple(node, f"th_shape_i({self.ref(node.inputs[0])}, {op.i})")
        if isinstance(op, SumToShapeOf):
            return self._sum_to_shape(k, node)
        dtype = node.outputs[0].dtype
        floats = dtype in ("float32", "float64") and all(v.dtype == dtype for v in node.inputs)
        if self.blas and floats and isinstance(op, Dot):
            return self._blas(k, node, None, 1.0, 0.0)
        if self.blas and floats and isinstance(op, Gemm):
            return self._blas(k, node, node.inputs[0], op.alpha, op.beta)
        return self._host_call(k, node)

    def _simple(self, node, call: str) -> None:
        """An output computed by one C call returning a new reference (NULL on error)."""
        s = self.new_slot(node.outputs[0])
        self.lines.append(f"    v[{s}] = {call}; if (!v[{s}]) goto fail;")

    def _sum_to_shape(self, k: int, node) -> None:
        """g itself when it already has x's shape (the usual case), else NumPy's sum."""
        g, x = (self.ref(v) for v in node.inputs)
        self.host.append(node.op.py_fn(node))
        s = self.new_slot(node.outputs[0])
        L = self.lines
        L.append(f"    if (PyArray_NDIM({g}) == PyArray_NDIM({x}) && PyArray_CompareLists("
                 f"PyArray_DIMS({g}), PyArray_DIMS({x}), PyArray_NDIM({g}))) {{")
        L.append(f"        v[{s}] = (PyObject *){g}; Py_INCREF(v[{s}]);")
        L.append("    } else {")
        L.append(f"        v[{s}] = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, "
                 f"{len(self.host) - 1}), {g}, {x}, NULL);")
        L.append(f"        if (!v[{s}]) goto fail;")
        L.append("    }")

    def _dimshuffle(self, k: int, node) -> None:
        op = node.op
        order = [-1 if d == "x" else d for d in op.new_order]
        s = self.new_slot(node.outputs[0])
        x = self.ref(node.inputs[0])
        drop = list(op.drop) or [0]
        self.lines.append(
            f"    {{ static const int order[] = {{{', '.join(map(str, order)) or '0'}}}; "
            f"static const int drop[] = {{{', '.join(map(str, drop))}}}; "
            f"v[{s}] = th_dimshuffle({k}, {x}, {len(order)}, order, {len(op.drop)}, drop); "
            f"if (!v[{s}]) goto fail; }}")

    def _blas(self, k: int, node, z, alpha: float, beta: float) -> None:
        a, b = node.inputs[-2:]
        s = self.new_slot(node.outputs[0])
        L = self.lines
        za = self.ref(z) if z is not None else "NULL"
        call = (f"th_dot({k}, {self.ref(a)}, {self.ref(b)}, {za}, {alpha!r}, {beta!r})")
        if z is None:
            L.append(f"    v[{s}] = {call}; if (!v[{s}]) goto fail;")
            return
        # z must have the product's shape for an in-place gemm; otherwise NumPy broadcasts it
        self.host.append(node.op.py_fn(node))
        L.append(f"    if (PyArray_DIM({za}, 0) == PyArray_DIM({self.ref(a)}, 0) && "
                 f"PyArray_DIM({za}, 1) == PyArray_DIM({self.ref(b)}, 1)) {{")
        L.append(f"        v[{s}] = {call};")
        L.append("    } else {")
        L.append(f"        v[{s}] = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, "
                 f"{len(self.host) - 1}), {za}, {self.ref(a)}, {self.ref(b)}, NULL);")
        L.append("    }")
        L.append(f"    if (!v[{s}]) goto fail;")

    def _host_call(self, k: int, node) -> None:
        self.host.append(node.op.py_fn(node))
        args = ", ".join(f"(PyObject *){self.ref(v)}" for v in node.inputs)
        L = self.lines
        L.append(f"    {{ /* step {k} */")
        L.append(f"    PyObject *r = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, "
                 f"{len(self.host) - 1}), {args + ', ' if args else ''}NULL);")
        L.append("    if (!r) goto fail;")
        call = len(self.host) - 1
        self.host_nodes[call] = node
        for j, o in enumerate(node.outputs):
            item = "r; Py_INCREF(r)" if len(node.outputs) == 1 else f"PySequence_GetItem(r, {j})"
            s = self.new_slot(o)
            L.append(f"    {{ PyObject *item = {item}; v[{s}] = th_host_value(item, "
                     f"{NPY_TYPES[o.dtype]}, {o.ndim}, {call}, {j}, PyTuple_GET_ITEM(state, 4)); "
                     f"Py_XDECREF(item); if (!v[{s}]) {{ Py_DECREF(r); goto fail; }} }}")
        L.append("    Py_DECREF(r);")
        L.append("    }")


def render_program(fgraph: FunctionGraph, steps: list[Step], blas: bool,
                   vector_math: bool) -> Program:
    """Render `steps` (from theanine.codegen.fusion.lower) of `fgraph` as one C source.

    blas: call gemm directly for Dot and Gemm (th_init_blas must be given its address);
    vector_math: declare libmvec's SIMD math so loops calling exp/log/tanh vectorize.
    """
    return _Emitter(fgraph, steps, blas, vector_math).emit()
