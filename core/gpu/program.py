"""Compile a FunctionGraph for a GPU runtime: lower it to fused kernels and library steps, render
its kernels (each named after its text), have the runtime build them, and run the steps as a
flat list of thunks.

Values live in two slot lists per call, host (NumPy) and device (DeviceArray); a value moves
only when a step needs it on the other side. Function inputs start on the host and are uploaded
by the first device step that reads them; shared variables arrive already on the device. Shape
arithmetic (Shape, ShapeI, MakeVector and elementwise steps computed only from them) stays on
the host, where its consumers (reshape, alloc, indexing) read it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from math import prod

import numpy as np

from theanine.codegen.fusion import KernelStep, lower
from theanine.codegen.gpu import GpuRenderer, content_named
from theanine.codegen.ir import Call, Const, Kernel, Load
from theanine.gpu.library import DEVICE_OPS, GEMM_DTYPES, HOST_OPS
from theanine.gpu.runtime import AllocationTooLarge, Runtime
from theanine.graph.basic import Apply, Constant, Variable, format_trace, located
from theanine.graph.fgraph import FunctionGraph
from theanine.printing import pp
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import Elemwise, SumToShapeOf
from theanine.tensor.linalg import Dot
from theanine.tensor.nnet import LogSoftmax, Softmax
from theanine.tensor.reduction import Reduce
from theanine.tensor.shape_ops import MakeVector, Shape, ShapeI

_HOST_PRODUCERS = (Shape, ShapeI, MakeVector)
FLOATS = ("float32", "float64")


class MissingImplementation(NotImplementedError):
    """The backend has no kernel, device implementation or declared host path for an op."""


class _Source:
    """The kernel functions of one program, each named after its text: a kernel that several
    programs (or several steps of one) need is one function, found by every cache."""

    def __init__(self, renderer: GpuRenderer):
        self.r = renderer
        self.bodies: dict[str, str] = {}

    def _add(self, render: Callable[[str], str], kind: str) -> str:
        name, text = content_named(render, kind)
        self.bodies.setdefault(name, text)
        return name

    def elementwise(self, k: Kernel) -> tuple:
        return (k, self._add(partial(self.r.contiguous, k), "c"),
                self._add(partial(self.r.strided, k), "s"))

    def reduction(self, k: Kernel) -> tuple:
        """k and its partial-result combiner; kernel names are resolved after the build."""
        acc = k.acc_dtype
        comb = Kernel("combine", 2, [(acc, 2)], [], [Load(acc, 0)], reduce_op=k.reduce_op,
                      reduce_axes=(1,), acc_dtype=acc, output_dtypes=[acc])
        return (k, self._add(partial(self.r.reduction, k), "r"),
                (comb, self._add(partial(self.r.reduction, comb), "r")))

    def gemm(self, dtype: str) -> str:
        return self._add(lambda name: self.r.gemm(name, dtype), f"gemm_{dtype}")


def _resolve(prepared, kernels: dict):
    """Replace kernel names in a prepared structure by the built kernels."""
    if isinstance(prepared, str):
        return kernels[prepared]
    if isinstance(prepared, tuple):
        return tuple(_resolve(p, kernels) for p in prepared)
    return prepared


class GpuProgram:
    """A graph compiled for one runtime; call `run(*inputs)`."""

    def __init__(self, fgraph: FunctionGraph, rt: Runtime, backend_name: str):
        self.rt = rt
        self.renderer = rt.renderer
        self.backend_name = backend_name
        self.host_steps: list[str] = []
        src = _Source(self.renderer)
        steps = lower(fgraph, self._can_fuse, self._can_reduce, name_prefix="th_k")
        self.steps = steps
        slots: dict[Variable, int] = {}
        consts: dict[int, np.ndarray] = {}

        def slot(v: Variable) -> int:
            if v not in slots:
                slots[v] = len(slots)
                if isinstance(v, Constant):
                    consts[slots[v]] = np.asarray(v.data)
            return slots[v]

        for v in fgraph.inputs:
            slot(v)
        host_vars: set[Variable] = set()
        plans = []
        for s in steps:
            if isinstance(s, KernelStep):
                data = [v for v in s.inputs if not isinstance(v, Constant)]
                if data and all(v in host_vars for v in data):
                    host_vars.update(s.outputs)
                    plans.append(("host_nodes", s, None))
                    continue
                prep = src.reduction(s.kernel) if s.kernel.is_reduction else \
                    src.elementwise(s.kernel)
                plans.append(("kernel", s, prep))
            else:
                node = s.node
                kind, prep = self._plan_node(node, src)
                if isinstance(node.op, _HOST_PRODUCERS):
                    host_vars.update(node.outputs)
                plans.append((kind, s, prep))
        kernels = rt.kernels(src.bodies) if src.bodies else {}
        self.thunks = [self._thunk(kind, s, _resolve(prep, kernels), slot)
                       for kind, s, prep in plans]
        self.outputs = list(fgraph.outputs)
        self.in_slots = [slots[v] for v in fgraph.inputs]
        self.out_slots = [slot(v) for v in fgraph.outputs]  # (a constant output adds a slot)
        self.n_slots = len(slots)
        self.consts = consts
        self.const_dev: dict[int, object] = {}

    # -- planning ----------------------------------------------------------------------------
    def _can_fuse(self, node: Apply) -> bool:
        return self.renderer.r.supports(node.op.scalar_op, [v.dtype for v in node.inputs],
                                        node.outputs[0].dtype) and \
            all(v.dtype in self.rt.dtypes for v in [*node.inputs, *node.outputs])

    def _can_reduce(self, node: Apply) -> bool:
        return node.inputs[0].dtype in self.rt.dtypes and node.op.dtype in self.rt.dtypes

    def _plan_node(self, node: Apply, src: _Source) -> tuple[str, object]:
        op = node.op
        entry = DEVICE_OPS.get(type(op))
        out_dtype = node.outputs[0].dtype if node.outputs else None
        if entry is not None:
            if isinstance(op, (Dot, Gemm)) and out_dtype in GEMM_DTYPES and \
                    out_dtype in self.rt.dtypes:
                return "device", src.gemm(out_dtype)
            if isinstance(op, (Softmax, LogSoftmax)) and out_dtype in FLOATS and \
                    out_dtype in self.rt.dtypes:
                return "device", self._softmax_kernels(node, src)
            if isinstance(op, SumToShapeOf) and out_dtype in self.rt.dtypes and \
                    out_dtype not in ("float16", "complex64", "complex128"):
                nd = node.inputs[0].ndim
                k = Kernel("th_k", 2 * nd, [(out_dtype, 2 * nd)], [],
                           [Load(out_dtype, 0)], reduce_op="add",
                           reduce_axes=tuple(range(nd, 2 * nd)), acc_dtype=out_dtype,
                           output_dtypes=[out_dtype])
                return "device", src.reduction(k)
            if not isinstance(op, (Dot, Gemm, Softmax, LogSoftmax, SumToShapeOf)):
                return "device", None
        if type(op) in HOST_OPS or isinstance(op, (Dot, Gemm, Softmax, LogSoftmax,
                                                   SumToShapeOf, Elemwise, Reduce)):
            self.host_steps.append(str(op))
            return "host", None
        if type(op).__module__.startswith("theanine."):
            raise MissingImplementation(
                f"backend {self.backend_name!r} has no implementation of op "
                f"{type(op).__name__} ({op}); run it with backend='numpy' or 'c'")
        self.host_steps.append(str(op))
        return "host", None  # a user's op: its perform is its definition

    def _softmax_kernels(self, node: Apply, src: _Source) -> tuple:
        dt = node.outputs[0].dtype
        nd = node.inputs[0].ndim
        ax = node.op.axis
        x, m, s = Load(dt, 0), Load(dt, 1), Load(dt, 2)
        kmax = Kernel("th_k", nd, [(dt, nd)], [], [x], reduce_op="max", reduce_axes=(ax,),
                      acc_dtype=dt, output_dtypes=[dt])
        # shifted by the max only where it is finite, like the reference
        finite = Call("bool", "logical_not", (Call("bool", "logical_or", (
            Call("bool", "isinf", (m,)), Call("bool", "isnan", (m,)))),))
        shifted = Call(dt, "sub", (x, Call(dt, "switch", (finite, m, Const(dt, 0)))))
        ksum = Kernel("th_k", nd, [(dt, nd), (dt, nd)], [], [Call(dt, "exp", (shifted,))],
                      reduce_op="add", reduce_axes=(ax,), acc_dtype=dt, output_dtypes=[dt])
        if isinstance(node.op, LogSoftmax):
            out = Call(dt, "sub", (shifted, Call(dt, "log", (s,))))
        else:
            out = Call(dt, "true_div", (Call(dt, "exp", (shifted,)), s))
        kout = Kernel("th_k", nd, [(dt, nd)] * 3, [], [out], output_dtypes=[dt])
        return (src.reduction(kmax), src.reduction(ksum), src.elementwise(kout))

    # -- thunks ------------------------------------------------------------------------------
    def _thunk(self, kind: str, s, prep, slot) -> Callable:
        rt = self.rt
        if kind == "kernel":
            k: Kernel = s.kernel
            ins = [slot(v) for v in s.inputs]
            outs = [slot(v) for v in s.outputs]
            params = [_scalar(p, dt) for p, dt in zip(s.params, k.params)]
            nd = k.ndim
            get = self._dev
            if k.is_reduction:
                _, kr, comb = prep
                no_identity = k.reduce_op in ("max", "min")

                def reduce(H, D):
                    arrays = [get(H, D, j) for j in ins]
                    shape = _loop_shape([a.shape for a in arrays], nd)
                    if no_identity and any(shape[a] == 0 for a in k.reduce_axes):
                        raise ValueError(f"cannot take the {k.reduce_op} over an empty axis of "
                                         f"an input with shape {shape}")
                    D[outs[0]] = rt.reduce(k, kr, comb, shape, arrays, params)

                return reduce
            _, kc, ks = prep
            dtypes = k.output_dtypes

            shape_of = self._shape
            named = [(v, dt) for v, dt in zip(s.outputs, dtypes)]
            widest = max((np.dtype(dt).itemsize for dt in dtypes), default=1)

            def elementwise(H, D):
                shape = _loop_shape([shape_of(H, D, j) for j in ins], nd)
                limit = rt.max_alloc
                if limit is not None and prod(shape) * widest > limit:  # before any upload
                    for v, dt in named:
                        rt.check_fits(shape, dt, _describe(v, self.outputs),
                                      format_trace(v.trace))
                arrays = [get(H, D, j) for j in ins]
                results = [rt.empty(shape, dt) for dt in dtypes]
                rt.elementwise(k, kc, ks, results, arrays, params)
                for j, r in zip(outs, results):
                    D[j] = r

            return elementwise
        if kind == "host_nodes":
            nodes = s.nodes
            made = {o for n in nodes for o in n.outputs}
            ins = {v: slot(v) for n in nodes for v in n.inputs
                   if not isinstance(v, Constant) and v not in made}
            outs = [(v, slot(v)) for v in s.outputs]
            host = self._host

            def host_nodes(H, D):
                env = {v: host(H, D, j) for v, j in ins.items()}
                for n in nodes:
                    args = [v.data if isinstance(v, Constant) else env[v] for v in n.inputs]
                    env.update(zip(n.outputs, n.op.perform(n, args)))
                for v, j in outs:
                    H[j] = env[v]

            return host_nodes
        node = s.node
        in_slots = [slot(v) for v in node.inputs]
        out_slots = [slot(v) for v in node.outputs]
        if kind == "device":
            places, impl, _ = DEVICE_OPS[type(node.op)]
            places = places + places[-1] * len(in_slots)
            getters = [self._dev if p == "d" else self._host for p in places]

            def device(H, D):
                args = [g(H, D, j) for g, j in zip(getters, in_slots)]
                try:
                    results = impl(rt, node, prep, *args)
                except AllocationTooLarge as e:
                    raise located(AllocationTooLarge(
                        f"{e}; computing {_describe(node.outputs[0], self.outputs)}\nIt was "
                        f"built at:\n{format_trace(node.trace)}")) from None
                for j, r in zip(out_slots, results):
                    if isinstance(r, np.ndarray):
                        H[j] = r
                    else:
                        D[j] = r

            return device
        host = self._host

        def on_host(H, D):
            args = [host(H, D, j) for j in in_slots]
            for j, r in zip(out_slots, node.op.perform(node, args)):
                H[j] = r

        return on_host

    def _dev(self, H, D, j):
        d = D[j]
        if d is None:
            if j in self.consts:
                d = self.const_dev.get(j)
                if d is None:
                    d = self.const_dev[j] = self.rt.to_device(self.consts[j])
            else:
                d = self.rt.to_device(H[j])
            D[j] = d
        return d

    def _shape(self, H, D, j) -> tuple:
        """The shape of the value in slot j, wherever it is (nothing moves)."""
        if D[j] is not None:
            return D[j].shape
        return np.shape(self.consts[j] if j in self.consts else H[j])

    def _host(self, H, D, j):
        h = H[j]
        if h is None:
            h = self.consts[j] if j in self.consts else D[j].get()
            H[j] = h
        return h

    def run(self, *inputs) -> list:
        """Run with host arrays or DeviceArrays as inputs; outputs are DeviceArrays where the
        value was computed on the device, else host arrays."""
        H: list = [None] * self.n_slots
        D: list = [None] * self.n_slots
        for j, v in zip(self.in_slots, inputs):
            if isinstance(v, np.ndarray):
                H[j] = v
            else:
                D[j] = v
        for t in self.thunks:
            t(H, D)
        return [D[j] if D[j] is not None else self._host(H, D, j) for j in self.out_slots]


def _scalar(value, dtype: str):
    arr = np.asarray(value, dtype=dtype).reshape(())
    return arr.view(np.uint8)[()] if dtype == "bool" else arr[()]


def _loop_shape(shapes: list, nd: int) -> tuple:
    shape = np.broadcast_shapes(*shapes) if shapes else ()
    return (1,) * (nd - len(shape)) + tuple(shape)


def _describe(v: Variable, outputs: list) -> str:
    """A value of the graph as the user wrote it (shortened), and whether it is an output."""
    text = pp(v)
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{'the output' if v in outputs else 'the intermediate value'} {text}"
