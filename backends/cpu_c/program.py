"""Turn a lowered program (fused kernels and single nodes) into one C function.

`th_run(state, inputs)` receives the graph's input arrays and returns its outputs: kernels run
in C; each remaining node is rendered by its entry in the backend's op table (library.py): a C
call, or its NumPy implementation called from C. So one Python-level call runs the whole graph.
The C the program shares with every other (program.h, steps.h, runtime.h) lives beside this
module and is included, not generated. `state` holds what differs between graphs
that share the same source (constant values, the library callables, the arrays kernels filled
on the last call, reused once nobody holds them), so identical graphs share one compiled
object.

Generated source only contains generated names and numbers, never a user string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from theanine.backend import Backend
from theanine.backends.cpu_c.dialect import CKernelRenderer, stored_accumulator_dtype
from theanine.backends.cpu_c.limits import MAX_DIMS, MAX_OPERANDS, c_defines, input_checks
from theanine.backends.cpu_c.parts import split_into_parts
from theanine.backends.cpu_c.step_timer import STEP_TIMER_C, time_step
from theanine.codegen.cstyle import reduce_identity
from theanine.codegen.fusion import KernelStep, Step
from theanine.graph.basic import Apply, Constant, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.elemwise import SumToShapeOf
from theanine.tensor.shape_ops import SpecifyShape

NPY_TYPES = {"bool": "NPY_BOOL", "int8": "NPY_INT8", "int16": "NPY_INT16", "int32": "NPY_INT32",
             "int64": "NPY_INT64", "uint8": "NPY_UINT8", "uint16": "NPY_UINT16",
             "uint32": "NPY_UINT32", "uint64": "NPY_UINT64", "float16": "NPY_FLOAT16",
             "float32": "NPY_FLOAT32", "float64": "NPY_FLOAT64", "complex64": "NPY_COMPLEX64",
             "complex128": "NPY_COMPLEX128"}
# ops whose C entries return their first input itself when its shape is the one wanted, so a
# loop body's output computed through them may be computed in its trace row
PASS_THROUGH = (SumToShapeOf, SpecifyShape)
GRAIN = 32768  # elements below which a kernel runs on one thread

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
    loop_host_nodes: list  # the nodes of loop bodies called on the host (Python per step)


class Emitter:
    """Renders one program: kernel steps here, node steps through the backend's op table
    (library.py), whose entries call `ref`, `new_slot`, `c_call`, `host_call`, `add_host` and
    `include` and append to `lines`."""

    def __init__(self, fgraph: FunctionGraph, steps: list[Step], blas: bool,
                 vector_math: bool, backend: Backend, parent: Emitter | None = None,
                 prefix: str = "", timed: bool = False):
        self.fgraph = fgraph
        self.timed = timed  # time each step (step_timer.py): a profiled program's th_run
        self.backend = backend
        self.blas = blas
        self.vector_math = vector_math
        self.steps = steps
        self.prefix = prefix  # of the names of this emitter's kernels and functions
        self.slot: dict[Variable | tuple, int] = {}  # (tuples: a step's temporaries)
        self._written: list[Variable] = []  # the body outputs an entry asked `into` for
        self.lines: list[str] = []
        self.cuts: list[int] = []  # indices of self.lines between steps
        self.last_use = self._last_uses()
        self.root = self if parent is None else parent.root
        self.direct: dict[Variable, int] = {}  # a loop body's outputs it may write in place
        if parent is None:  # what the whole program shares (a loop's body is a child)
            self.constants: list = []
            self.host: list = []
            self.host_nodes: dict = {}
            self.loop_host_nodes: list[Apply] = []  # host calls inside loop bodies
            self.kernels: list[str] = []
            self.kernel_names: dict[str, str] = {}  # rendered text -> name: one function each
            self.functions: list[str] = []  # loop bodies (child emitters' functions)
            self.n_work = 0
            self.includes: list[str] = []  # headers entries need, after the SIMD declarations
            self.renderer = CKernelRenderer()
        else:
            for name in ("constants", "host", "host_nodes", "loop_host_nodes", "kernels",
                         "kernel_names", "functions", "includes", "renderer"):
                setattr(self, name, getattr(parent, name))

    def _reads(self, step: Step) -> list[Variable]:
        return step.inputs if isinstance(step, KernelStep) else step.node.inputs

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

    def _render(self, input_expr: str) -> tuple[list[str], str, int, list[str], list[str], int]:
        """Render the steps: (entry lines taking input i from `input_expr` % i, the output
        slots as a C list, their count, the part functions, the lines calling them, the
        number of value slots)."""
        entry = []
        for i, v in enumerate(self.fgraph.inputs):
            s = self.new_slot(v)
            entry.append(f"    v[{s}] = {input_expr % i}; Py_INCREF(v[{s}]);")
        self.render_steps()
        outs = ", ".join(str(self.slot[v]) for v in self.fgraph.outputs) or "0"
        parts, calls = split_into_parts(self.lines, self.cuts, self.prefix)
        return entry, outs, len(self.fgraph.outputs), parts, calls, max(len(self.slot), 1)

    def into(self, v: Variable) -> str:
        """C expression of where a loop body's output `v` is wanted (dst[j], maybe NULL), or
        NULL: an entry computing `v` into a new array passes it to th_into."""
        if v not in self.direct:
            return "NULL"
        self._written.append(v)
        return f"dst[{self.direct[v]}]"

    def emit(self) -> Program:
        entry, outs, n_outs, parts, calls, n_vals = self._render("PyTuple_GET_ITEM(inputs, %d)")
        body = ["PyObject *th_run(PyObject *state, PyObject *inputs)", "{",
                f"    PyObject *v[{n_vals}] = {{0}};",
                "    PyObject *consts = PyTuple_GET_ITEM(state, 0);",
                "    PyObject *fns = PyTuple_GET_ITEM(state, 1);",
                "    PyObject *work = PyTuple_GET_ITEM(state, 2);",
                "    PyObject **dst = NULL;",
                "    (void)consts; (void)fns; (void)work; (void)dst;"]
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
        includes = [f'#include "{h}"' for h in self.includes]
        source = "\n".join([c_defines(), '#include "program.h"', '#include "steps.h"',
                            simd_math, *includes, STEP_TIMER_C if self.timed else "",
                            self.renderer.dialect.prelude(random=any(
                                "th_random_" in k or "th_philox" in k for k in self.kernels)),
                            *self.kernels, *self.functions, *parts,
                            *body]) + "\n"
        return Program(source, tuple(self.constants), tuple(self.host), self.n_work,
                       self.host_nodes, self.loop_host_nodes)

    def emit_function(self, name: str, traced: int = 0) -> list[bool]:
        """Render this (child) emitter's graph as `static int name(state, in, out, dst)`,
        which reads its inputs from `in`, stores new references to its outputs in `out` and
        returns 0 (-1 with an exception set): a loop's body, added to the program's
        functions. `dst[j]` (or NULL) is where output j is wanted (a row of its trace): a
        kernel or a product computing it writes there when the shape and type fit, saving the
        copy; `dst` has an entry for each of the first `traced` outputs. Returns, per output,
        whether one may."""
        self.direct = {}
        for j, v in enumerate(self.fgraph.outputs[:traced]):
            while v.owner is not None and isinstance(v.owner.op, PASS_THROUGH):
                v = v.owner.inputs[0]  # the entry returns its input when the shape agrees
            if v.owner is not None and v not in self.direct and v not in self.fgraph.inputs:
                self.direct[v] = j
        entry, outs, n_outs, parts, calls, n_vals = self._render("in[%d]")
        written = {self.direct[v] for v in self._written}
        self.functions += parts + [
            f"static int {name}(PyObject *state, PyObject **in, PyObject **out, "
            "PyObject **dst)", "{",
            f"    PyObject *v[{n_vals}] = {{0}};", *entry, *calls,
            f"    static const int outs[] = {{{outs}}};",
            f"    for (int j = 0; j < {n_outs}; ++j) {{ out[j] = v[outs[j]]; "
            "Py_INCREF(out[j]); }",
            f"    for (int i = 0; i < {n_vals}; ++i) Py_XDECREF(v[i]);",
            "    return 0;", "fail:",
            f"    for (int i = 0; i < {n_vals}; ++i) Py_XDECREF(v[i]);",
            "    return -1;", "}"]
        return [j in written for j in range(n_outs)]

    def render_steps(self) -> None:
        """Append every step's lines (and the references of constant outputs)."""
        for k, step in enumerate(self.steps):
            start = len(self.lines)
            if isinstance(step, KernelStep):
                self.kernel_step(k, step)
            else:
                self.backend.impls[step.node.op].fn(self, k, step.node)
            if self.timed:
                time_step(self.lines, start, k)
            self.release(k)
            self.cuts.append(len(self.lines))
        for v in self.fgraph.outputs:
            self.ref(v)

    # -- steps ---------------------------------------------------------------------------------
    def kernel_step(self, k: int, step: KernelStep) -> None:
        kern = step.kernel
        is_red = kern.is_reduction
        kern.name = "th_kernel"  # identical kernels (differing in parameters) share a function
        text = self.renderer.reduction(kern) if is_red else self.renderer.elementwise(kern)
        kern.name = self.kernel_names.setdefault(text, f"{self.prefix}k{k}")
        if kern.name == f"{self.prefix}k{k}":
            self.kernels.append(text.replace("th_kernel", kern.name))
        nd = kern.ndim
        L = self.lines
        ins, index_slots = [], []
        for b, v in enumerate(step.inputs):
            if b in kern.index_inputs:  # a draw's element index: built from its size
                s = self.new_slot(("index", k, b))
                index_slots.append(s)
                self.lines.append(f"    v[{s}] = th_index_operand({self.ref(v)}, "
                                  f"{kern.inputs[b][1]}); if (!v[{s}]) goto fail;")
                ins.append(f"((PyArrayObject *)v[{s}])")
            else:
                ins.append(self.ref(v))
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
        L += [f"    Py_CLEAR(v[{s}]);" for s in index_slots]
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
        w = self.root.n_work
        self.root.n_work += 1
        into = self.into(v) if strides == "NULL" and isinstance(v, Variable) else "NULL"
        typ = NPY_TYPES[dtype or v.dtype]
        (self.lines if lines is None else lines).append(
            f"    v[{s}] = (PyObject *)th_into({into}, {nd}, {shape}, {typ}); if (!v[{s}]) "
            f"v[{s}] = (PyObject *)th_buffer(work, {w}, {nd}, {shape}, {strides}, {typ}); "
            f"if (!v[{s}]) goto fail;")
        return s

    # -- what the op table's entries call ------------------------------------------------------
    def include(self, header: str) -> None:
        """Include `header` (a file beside runtime.h) once, after the SIMD math declarations."""
        if header not in self.includes:
            self.includes.append(header)

    def add_host(self, fn: Callable) -> int:
        """Pass the Python callable `fn` to the program; its index in `fns`."""
        self.host.append(fn)
        return len(self.host) - 1

    def c_call(self, node: Apply, call: str) -> None:
        """The node's one output computed by C expression `call` returning a new reference
        (NULL with an exception set on an error)."""
        s = self.new_slot(node.outputs[0])
        self.lines.append(f"    v[{s}] = {call}; if (!v[{s}]) goto fail;")

    def host_call(self, k: int, node: Apply, fn: Callable | None = None) -> None:
        """Call `fn` (default: the op's py_fn, its NumPy implementation) on the node's input
        arrays from C, and check each output is the array the graph declares: `fn` returns
        the output (one output) or a sequence of them."""
        call = self.add_host(node.op.py_fn(node) if fn is None else fn)
        self.host_nodes[call] = node
        if self.root is not self:
            self.loop_host_nodes.append(node)
        args = ", ".join(f"(PyObject *){self.ref(v)}" for v in node.inputs)
        L = self.lines
        L.append(f"    {{ /* step {k} */")
        L.append(f"    PyObject *r = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, "
                 f"{call}), {args + ', ' if args else ''}NULL);")
        L.append("    if (!r) goto fail;")
        for j, o in enumerate(node.outputs):
            item = "r; Py_INCREF(r)" if len(node.outputs) == 1 else f"PySequence_GetItem(r, {j})"
            s = self.new_slot(o)
            L.append(f"    {{ PyObject *item = {item}; v[{s}] = th_host_value(item, "
                     f"{NPY_TYPES[o.dtype]}, {o.ndim}, {call}, {j}, PyTuple_GET_ITEM(state, 4)); "
                     f"Py_XDECREF(item); if (!v[{s}]) {{ Py_DECREF(r); goto fail; }} }}")
        L.append("    Py_DECREF(r);")
        L.append("    }")


def render_program(fgraph: FunctionGraph, steps: list[Step], blas: bool,
                   vector_math: bool, backend: Backend, timed: bool = False) -> Program:
    """Render `steps` (from theanine.codegen.fusion.lower) of `fgraph` as one C source.

    blas: call gemm directly for Dot and Gemm (th_init_blas must be given its address);
    vector_math: declare libmvec's SIMD math so loops calling exp/log/tanh vectorize;
    backend: the C backend, whose op table (`impls`) renders the steps that are not kernels;
    timed: the profiler's program, timing each step into the arrays state[5] holds.
    """
    return Emitter(fgraph, steps, blas, vector_math, backend, timed=timed).emit()
