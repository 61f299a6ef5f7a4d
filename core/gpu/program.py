"""Compile a FunctionGraph for a GPU runtime: lower it to fused kernels and library steps, render
its kernels (each named after its text), have the runtime build them, and run the steps as a
flat list of thunks.

Values live in two slot lists per call, host (NumPy) and device (DeviceArray); a value moves
only when a step needs it on the other side. Function inputs start on the host and are uploaded
by the first device step that reads them; shared variables arrive already on the device. Shape
arithmetic (the outputs of plans marked `host_values`, such as Shape, ShapeI and MakeVector,
and fused steps computed only from them) stays on the host, where its consumers (reshape,
alloc, indexing) read it. Nodes that are not fused are planned by the backend's op table
(theanine.gpu.plans says how).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from math import prod

import numpy as np

from theanine.backend import Backend
from theanine.codegen.fusion import KernelStep, lower
from theanine.codegen.ir import Kernel
from theanine.compile.profiling import phase
from theanine.gpu.array import DeviceArray, contiguous_strides
from theanine.gpu.plans import Place, Plan, PlanKind, ProgramKernels, resolve
from theanine.gpu.runtime import AllocationTooLarge, Runtime
from theanine.graph.basic import Apply, Constant, Variable, format_trace, located
from theanine.graph.fgraph import FunctionGraph
from theanine.printing import pp
from theanine.tensor.random import check_size


class GpuProgram:
    """A graph compiled for one runtime of `backend`, whose op table (`backend.impls`) plans
    every node that is not fused into a kernel; call `run(*inputs)`."""

    def __init__(self, fgraph: FunctionGraph, rt: Runtime, backend: Backend):
        self.rt = rt
        self.renderer = rt.renderer
        self.backend = backend
        if backend.impls is None:
            raise TypeError(f"backend {backend.name!r} runs GPU programs but has no op table "
                            "(Backend.impls)")
        self.impls = backend.impls
        self.sub_programs: list[GpuProgram] = []  # loop bodies and branches, compiled apart
        source = ProgramKernels(self.renderer)
        self.steps = lower(fgraph, self._can_fuse, self._can_reduce, name_prefix="th_k",
                           index_operands=True)
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
        plans: list[Plan] = []
        for s in self.steps:
            if isinstance(s, KernelStep):
                data = [v for v in s.inputs if not isinstance(v, Constant)]
                if data and all(v in host_vars for v in data) and not s.kernel.index_inputs:
                    host_vars.update(s.outputs)
                    plans.append(Plan(PlanKind.HOST_NODES))
                    continue
                prep = source.reduction(s.kernel) if s.kernel.is_reduction else \
                    source.elementwise(s.kernel)
                plans.append(Plan(PlanKind.KERNEL, prep))
            else:
                plan = self.impls[s.node.op].fn(self, s.node, source)
                if plan.host_values:
                    host_vars.update(s.node.outputs)
                plans.append(plan)
        with phase("compiler", f"{backend.name} kernels"):
            kernels = rt.kernels(source.bodies) if source.bodies else {}
        self.plans = [replace(p, prepared=resolve(p.prepared, kernels)) for p in plans]
        self.thunks = [self._thunk(p, s, slot) for p, s in zip(self.plans, self.steps)]
        self.outputs = list(fgraph.outputs)
        self.in_slots = [slots[v] for v in fgraph.inputs]
        self.out_slots = [slot(v) for v in fgraph.outputs]  # (a constant output adds a slot)
        self.n_slots = len(slots)
        self.consts = consts
        self.const_dev: dict[int, object] = {}
        self._origin: DeviceArray | None = None

    # -- planning ----------------------------------------------------------------------------
    def _can_fuse(self, node: Apply) -> bool:
        return self.renderer.r.supports(node.op.scalar_op, [v.dtype for v in node.inputs],
                                        node.outputs[0].dtype) and \
            all(v.dtype in self.rt.dtypes for v in [*node.inputs, *node.outputs])

    def _can_reduce(self, node: Apply) -> bool:
        return node.inputs[0].dtype in self.rt.dtypes and node.op.dtype in self.rt.dtypes

    # -- thunks ------------------------------------------------------------------------------
    def _thunk(self, plan: Plan, s, slot) -> Callable:
        if plan.kind is PlanKind.KERNEL:
            if s.kernel.is_reduction:
                return self._reduction_thunk(s, plan.prepared, slot)
            return self._elementwise_thunk(s, plan.prepared, slot)
        if plan.kind is PlanKind.HOST_NODES:
            return self._host_nodes_thunk(s, slot)
        return self._node_thunk(plan, s.node, slot)

    @staticmethod
    def _kernel_operands(s: KernelStep, slot) -> tuple[Kernel, list, list, list]:
        """A kernel step's kernel, input and output slots, and parameter values."""
        k: Kernel = s.kernel
        params = [_scalar(p, dt) for p, dt in zip(s.params, k.params)]
        return k, [slot(v) for v in s.inputs], [slot(v) for v in s.outputs], params

    def _reduction_thunk(self, s: KernelStep, prep: tuple, slot) -> Callable:
        rt = self.rt
        k, ins, outs, params = self._kernel_operands(s, slot)
        nd = k.ndim
        get = self._dev
        _, kr, comb = prep
        no_identity = k.reduce_op in ("max", "min")
        index = k.index_inputs
        host = self._host

        def reduce(H, D):
            arrays = [self._index_operand(check_size(host(H, D, j))) if b in index else
                      get(H, D, j) for b, j in enumerate(ins)]
            shape = _loop_shape([a.shape for a in arrays], nd)
            if no_identity and any(shape[a] == 0 for a in k.reduce_axes):
                raise ValueError(f"cannot take the {k.reduce_op} over an empty axis of "
                                 f"an input with shape {shape}")
            D[outs[0]] = rt.reduce(k, kr, comb, shape, arrays, params)

        return reduce

    def _elementwise_thunk(self, s: KernelStep, prep: tuple, slot) -> Callable:
        rt = self.rt
        k, ins, outs, params = self._kernel_operands(s, slot)
        nd = k.ndim
        get = self._dev
        _, kc, ks = prep
        dtypes = k.output_dtypes
        shape_of = self._shape
        named = [(v, dt) for v, dt in zip(s.outputs, dtypes)]
        widest = max((np.dtype(dt).itemsize for dt in dtypes), default=1)
        index = k.index_inputs
        host = self._host

        def elementwise(H, D):
            sizes = {b: check_size(host(H, D, ins[b])) for b in index}
            shape = _loop_shape([sizes[b] if b in index else shape_of(H, D, j)
                                 for b, j in enumerate(ins)], nd)
            limit = rt.max_alloc
            if limit is not None and prod(shape) * widest > limit:  # before any upload
                for v, dt in named:
                    rt.check_fits(shape, dt, _describe(v, self.outputs), format_trace(v.trace))
            results = [rt.empty(shape, dt) for dt in dtypes]
            arrays = [self._index_operand(sizes[b]) if b in index else get(H, D, j)
                      for b, j in enumerate(ins)]
            rt.elementwise(k, kc, ks, results, arrays, params)
            for j, r in zip(outs, results):
                D[j] = r

        return elementwise

    def _host_nodes_thunk(self, s: KernelStep, slot) -> Callable:
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

    def _node_thunk(self, plan: Plan, node: Apply, slot) -> Callable:
        """A library step: its inputs read where the plan says, its outputs kept where its
        implementation made them (DeviceArrays on the device, anything else on the host)."""
        rt, run, prep = self.rt, plan.run, plan.prepared
        in_slots = [slot(v) for v in node.inputs]
        out_slots = [slot(v) for v in node.outputs]
        getters = [self._dev if p is Place.DEVICE else self._host
                   for p in plan.read_from(len(in_slots))]

        def step(H, D):
            args = [g(H, D, j) for g, j in zip(getters, in_slots)]
            try:
                results = run(rt, node, prep, *args)
            except AllocationTooLarge as e:
                raise located(AllocationTooLarge(
                    f"{e}; computing {_describe(node.outputs[0], self.outputs)}\nIt was "
                    f"built at:\n{format_trace(node.trace)}")) from None
            for j, r in zip(out_slots, results):
                if isinstance(r, DeviceArray):
                    D[j] = r
                else:
                    H[j] = r

        return step

    def _index_operand(self, shape: tuple) -> DeviceArray:
        """A draw's index operand: an array of `shape` with C-contiguous strides at offset 0,
        whose position is each element's flat index. Kernels read no memory through it; its
        buffer (one element, made once) is only there to be passed."""
        if self._origin is None:
            self._origin = self.rt.empty((1,), "uint64")
        return self._origin.view(shape, contiguous_strides(shape), 0)

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

    @property
    def host_nodes(self) -> list[Apply]:
        """The nodes this program runs on host copies of device values (HOST plans)."""
        return [s.node for p, s in zip(self.plans, self.steps)
                if p.kind is PlanKind.HOST and not p.host_values]

    @property
    def loop_host_nodes(self) -> list[Apply]:
        """The nodes of loop bodies and branches (at any depth) run on host copies of device
        values: what would cross to the host at every step (the C program's namesake)."""
        return [n for sub in self.sub_programs for n in sub.host_nodes + sub.loop_host_nodes]

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
