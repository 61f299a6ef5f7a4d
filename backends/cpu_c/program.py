"""Turn a lowered program (fused kernels and single nodes) into one C function.

`th_run(state, inputs)` receives the graph's input arrays and returns its outputs: kernels run
in C; the remaining nodes are called through their NumPy implementations (library calls) from
C. So one Python-level call runs the whole graph. `state` holds what differs between graphs
that share the same source (constant values, the library callables, the reusable buffers of
intermediates), so identical graphs share one compiled object.

Generated source only contains generated names and numbers, never a user string.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theanine.backends.cpu_c.dialect import CKernelRenderer, reduce_identity
from theanine.codegen.cstyle import PRELUDE
from theanine.codegen.fusion import KernelStep, NodeStep, Step
from theanine.graph.basic import Constant, Variable
from theanine.graph.fgraph import FunctionGraph

NPY_TYPES = {"bool": "NPY_BOOL", "int8": "NPY_INT8", "int16": "NPY_INT16", "int32": "NPY_INT32",
             "int64": "NPY_INT64", "uint8": "NPY_UINT8", "uint16": "NPY_UINT16",
             "uint32": "NPY_UINT32", "uint64": "NPY_UINT64", "float32": "NPY_FLOAT32",
             "float64": "NPY_FLOAT64"}
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
    PyErr_Format(PyExc_ValueError, "theanine-step %d: shapes %R cannot be broadcast together",
                 step, shapes);
    Py_XDECREF(shapes);
    return -1;
}

static void th_fail_empty(int step, const char *kind, int nd, npy_intp *shape)
{
    PyObject *t = PyTuple_New(nd);
    for (int d = 0; t && d < nd; ++d) PyTuple_SET_ITEM(t, d, PyLong_FromSsize_t(shape[d]));
    PyErr_Format(PyExc_ValueError, "theanine-step %d: cannot take the %s over an empty axis of "
                 "an input with shape %R", step, kind, t);
    Py_XDECREF(t);
}

/* a reusable buffer for an intermediate: the one kept in `work[slot]` if its shape matches */
static PyArrayObject *th_buffer(PyObject *work, int slot, int nd, npy_intp *shape, int type)
{
    PyObject *w = PyList_GET_ITEM(work, slot);
    if (w != Py_None) {
        PyArrayObject *a = (PyArrayObject *)w;
        int same = PyArray_NDIM(a) == nd && PyArray_TYPE(a) == type;
        for (int d = 0; same && d < nd; ++d) same = PyArray_DIM(a, d) == shape[d];
        if (same && Py_REFCNT(w) == 1) { Py_INCREF(w); return a; }
    }
    PyObject *a = PyArray_EMPTY(nd, shape, type, 0);
    if (!a) return NULL;
    Py_INCREF(a);
    PyList_SetItem(work, slot, a);
    return (PyArrayObject *)a;
}
"""


@dataclass
class Program:
    """A rendered program and the state th_run needs."""

    source: str
    constants: tuple
    host_functions: tuple
    n_work: int


def _buffer_root(v: Variable) -> Variable:
    while v.owner is not None and v.index in v.owner.op.view_of:
        v = v.owner.inputs[v.owner.op.view_of[v.index]]
    return v


class _Emitter:
    def __init__(self, fgraph: FunctionGraph, steps: list[Step]):
        self.fgraph = fgraph
        self.steps = steps
        self.slot: dict[Variable, int] = {}
        self.constants: list = []
        self.host: list = []
        self.lines: list[str] = []
        self.kernels: list[str] = []
        self.n_work = 0
        self.renderer = CKernelRenderer()
        self.held = {_buffer_root(v) for v in fgraph.outputs}
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

    def new_slot(self, v: Variable) -> int:
        self.slot[v] = len(self.slot)
        return self.slot[v]

    def release(self, k: int) -> None:
        for v in dict.fromkeys(self._reads(self.steps[k])):
            if self.last_use.get(v) == k and v.owner is not None:
                s = self.slot[v]
                self.lines.append(f"    Py_CLEAR(v[{s}]);")

    def emit(self) -> Program:
        for i, v in enumerate(self.fgraph.inputs):
            s = self.new_slot(v)
            self.lines.append(f"    v[{s}] = PyTuple_GET_ITEM(inputs, {i}); Py_INCREF(v[{s}]);")
        for k, step in enumerate(self.steps):
            if isinstance(step, KernelStep):
                self.kernel_step(k, step)
            else:
                self.node_step(k, step)
            self.release(k)
        outs = [f"(PyObject *){self.ref(v)}" for v in self.fgraph.outputs]
        n_vals = max(len(self.slot), 1)
        body = ["PyObject *th_run(PyObject *state, PyObject *inputs)", "{",
                f"    PyObject *v[{n_vals}] = {{0}};",
                "    PyObject *consts = PyTuple_GET_ITEM(state, 0);",
                "    PyObject *fns = PyTuple_GET_ITEM(state, 1);",
                "    PyObject *work = PyTuple_GET_ITEM(state, 2);",
                "    (void)consts; (void)fns; (void)work;"]
        body += self.lines
        body.append(f"    PyObject *result = PyTuple_New({len(outs)});")
        body.append("    if (!result) goto fail;")
        for j, o in enumerate(outs):
            body.append(f"    Py_INCREF({o}); PyTuple_SET_ITEM(result, {j}, {o});")
        body.append(f"    for (int i = 0; i < {n_vals}; ++i) Py_XDECREF(v[i]);")
        body.append("    return result;")
        body.append("fail:")
        body.append(f"    for (int i = 0; i < {n_vals}; ++i) Py_XDECREF(v[i]);")
        body.append("    return NULL;")
        body.append("}")
        source = "\n".join([HEADER, PRELUDE, *self.kernels, *body]) + "\n"
        return Program(source, tuple(self.constants), tuple(self.host), self.n_work)

    # -- steps ---------------------------------------------------------------------------------
    def kernel_step(self, k: int, step: KernelStep) -> None:
        kern = step.kernel
        kern.name = f"k{k}"
        is_red = kern.is_reduction
        self.kernels.append(self.renderer.reduction(kern) if is_red
                            else self.renderer.elementwise(kern))
        nd = kern.ndim
        L = self.lines
        ins = [self.ref(v) for v in step.inputs]
        L.append(f"    {{ /* step {k} */")
        L.append(f"    npy_intp shape[{max(nd, 1)}];")
        L.append(f"    for (int d = 0; d < {nd}; ++d) shape[d] = 1;")
        for a in ins:
            L.append(f"    for (int d = 0; d < {nd}; ++d) {{ npy_intp n = PyArray_DIM({a}, d); "
                     f"if (n != 1) {{ if (shape[d] == 1) shape[d] = n; else if (shape[d] != n) "
                     f"{{ PyArrayObject *arrs[] = {{{', '.join(ins)}}}; "
                     f"th_fail_shapes({k}, {len(ins)}, arrs); goto fail; }} }} }}")
        red_strides = self._reduction_output(k, step, nd) if is_red else None
        if not is_red:
            for v in step.outputs:
                self._alloc(v, nd, "shape")
        outs = [f"((PyArrayObject *)v[{self.slot[v]}])" for v in step.outputs]
        nop = len(outs) + len(ins)
        L.append("    th_space sp;")
        L.append(f"    sp.nop = {nop}; sp.ndim = {nd};")
        L.append(f"    for (int d = 0; d < {nd}; ++d) sp.shape[d] = shape[d];")
        for j, a in enumerate(outs + ins):
            L.append(f"    sp.base[{j}] = PyArray_BYTES({a});")
            if red_strides is not None and j == 0:
                L.append("    " + " ".join(f"sp.strides[0][{d}] = {st};"
                                           for d, st in enumerate(red_strides)))
                continue
            L.append(f"    for (int d = 0; d < {nd}; ++d) sp.strides[{j}][d] = "
                     f"PyArray_DIM({a}, d) == 1 ? 0 : PyArray_STRIDE({a}, d);")
        params = []
        for value, dt in zip(step.params, kern.params):
            self.constants.append(np.asarray(value, dtype=dt).reshape(()))
            params.append(f"PyArray_BYTES((PyArrayObject *)PyTuple_GET_ITEM(consts, "
                          f"{len(self.constants) - 1}))")
        L.append(f"    const char *prm[{max(len(params), 1)}] = {{{', '.join(params) or '0'}}};")
        if is_red:
            L.append(f"    if (th_reduce(&sp, {kern.name}, prm, {GRAIN}, out_count, "
                     f"sizeof({self.renderer.dialect.type(kern.acc_dtype)}), "
                     f"{kern.name}_combine) < 0) {{ PyErr_NoMemory(); goto fail; }}")
        else:
            L.append(f"    th_elementwise(&sp, {kern.name}, prm, {GRAIN});")
        L.append("    }")

    def _reduction_output(self, k: int, step: KernelStep, nd: int) -> list[str]:
        """Allocate the output (filled with the identity); return its strides over the loop
        space (0 along reduced axes)."""
        kern = step.kernel
        L = self.lines
        kept = [d for d in range(nd) if d not in kern.reduce_axes]
        out = step.outputs[0]
        L.append(f"    npy_intp oshape[{max(len(kept), 1)}];")
        for j, d in enumerate(kept):
            L.append(f"    oshape[{j}] = shape[{d}];")
        self._alloc(out, len(kept), "oshape")
        o = f"((PyArrayObject *)v[{self.slot[out]}])"
        acc_t = self.renderer.dialect.type(kern.acc_dtype)
        L.append(f"    npy_intp out_count = PyArray_SIZE({o});")
        if kern.reduce_op in ("max", "min"):
            axes = " || ".join(f"d == {a}" for a in kern.reduce_axes) or "0"
            L.append(f"    {{ npy_intp red = 1; for (int d = 0; d < {nd}; ++d) if ({axes}) "
                     f"red *= shape[d]; if (red == 0) {{ th_fail_empty({k}, "
                     f"\"{kern.reduce_op}\", {nd}, shape); goto fail; }} }}")
        ident = reduce_identity(kern.reduce_op, kern.acc_dtype)
        L.append(f"    {{ {acc_t} *o = ({acc_t} *)PyArray_DATA({o}); "
                 f"for (npy_intp i = 0; i < out_count; ++i) o[i] = ({acc_t})({ident}); }}")
        strides = []
        j = 0
        for d in range(nd):
            if d in kern.reduce_axes:
                strides.append("0")
            else:
                strides.append(f"(PyArray_DIM({o}, {j}) == 1 ? 0 : PyArray_STRIDE({o}, {j}))")
                j += 1
        return strides

    def _alloc(self, v: Variable, nd: int, shape: str) -> None:
        s = self.new_slot(v)
        typ = NPY_TYPES[v.dtype]
        if _buffer_root(v) in self.held:
            self.lines.append(f"    v[{s}] = PyArray_EMPTY({nd}, {shape}, {typ}, 0); "
                              f"if (!v[{s}]) goto fail;")
        else:
            w = self.n_work
            self.n_work += 1
            self.lines.append(f"    v[{s}] = (PyObject *)th_buffer(work, {w}, {nd}, {shape}, "
                              f"{typ}); if (!v[{s}]) goto fail;")

    def node_step(self, k: int, step: NodeStep) -> None:
        node = step.node
        self.host.append(node.op.py_fn(node))
        args = ", ".join(f"(PyObject *){self.ref(v)}" for v in node.inputs)
        L = self.lines
        L.append(f"    {{ /* step {k} */")
        L.append(f"    PyObject *r = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, "
                 f"{len(self.host) - 1}), {args + ', ' if args else ''}NULL);")
        L.append("    if (!r) goto fail;")
        if len(node.outputs) == 1:
            s = self.new_slot(node.outputs[0])
            L.append(f"    v[{s}] = PyArray_FromAny(r, NULL, 0, 0, 0, NULL); Py_DECREF(r); "
                     f"if (!v[{s}]) goto fail;")
        else:
            for j, o in enumerate(node.outputs):
                s = self.new_slot(o)
                L.append(f"    {{ PyObject *item = PySequence_GetItem(r, {j}); v[{s}] = item ? "
                         f"PyArray_FromAny(item, NULL, 0, 0, 0, NULL) : NULL; Py_XDECREF(item); }}")
            L.append("    Py_DECREF(r);")
            L.append("    " + " || ".join(f"!v[{self.slot[o]}]" for o in node.outputs)
                     .join(["if (", ") goto fail;"]))
        L.append("    }")


def render_program(fgraph: FunctionGraph, steps: list[Step]) -> Program:
    """Render `steps` (from theanine.codegen.fusion.lower) of `fgraph` as one C source."""
    return _Emitter(fgraph, steps).emit()
