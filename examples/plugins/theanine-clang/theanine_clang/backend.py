"""The backend: lower a graph (theanine's fusion), print and build its kernels with clang, and
run it with a flat list of thunks: kernel calls through ctypes, every other op through its
NumPy implementation (the reference's own, so those ops agree with it by construction)."""

from __future__ import annotations

import ctypes

import numpy as np

from theanine.backend import Backend
from theanine.codegen.fusion import KernelStep, NodeStep, lower
from theanine.graph.basic import Apply, Constant
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.reduction import Reduce
from theanine_clang.compiler import build, find_clang
from theanine_clang.dialect import KernelPrinter, accumulator_dtype

_IDENTITY = {"add": 0, "mul": 1, "and": True, "or": False}


def _identity(op: str, dtype: str):
    """The neutral element of reduction `op` in `dtype`."""
    if op in _IDENTITY:
        return _IDENTITY[op]
    kind = np.dtype(dtype).kind
    if kind == "f":
        return -np.inf if op == "max" else np.inf
    if kind == "b":
        return op == "min"
    info = np.iinfo(dtype)
    return info.min if op == "max" else info.max


class ClangBackend(Backend):
    """Kernels compiled by clang (device 'clang'); one thread."""

    name = "clang"
    devices = ("clang",)
    priority = 1

    def __init__(self):
        self.printer = KernelPrinter()

    def available(self) -> tuple[bool, str]:
        command, why = find_clang()
        return command is not None, "" if command else why

    def describe(self) -> list[str]:
        command, version = find_clang()
        return [f"compiler: {' '.join(command)} ({version})" if command else
                f"compiler: none ({version})"]

    def can_fuse(self, node: Apply) -> bool:
        return self.printer.r.supports(node.op.scalar_op, [v.dtype for v in node.inputs],
                                       node.outputs[0].dtype)

    def can_reduce(self, node: Apply) -> bool:
        op: Reduce = node.op
        return self.printer.r.supports("identity", [node.inputs[0].dtype], op.dtype)

    def compile(self, fgraph: FunctionGraph):
        steps = lower(fgraph, self.can_fuse, self.can_reduce, name_prefix="th_k")
        kernels = [s.kernel for s in steps if isinstance(s, KernelStep)]
        lib = None
        if kernels:
            with build(self.printer.source(kernels)) as entry:
                lib = entry.load_library(ctypes.CDLL)
        slots: dict = {v: k for k, v in enumerate(fgraph.inputs)}
        values: list = [None] * len(fgraph.inputs)

        def slot(v) -> int:
            if v not in slots:
                slots[v] = len(values)
                values.append(np.asarray(v.data) if isinstance(v, Constant) else None)
            return slots[v]

        thunks = []
        for step in steps:
            if isinstance(step, KernelStep):
                thunks.append(_kernel_thunk(step, getattr(lib, step.kernel.name),
                                            [slot(v) for v in step.inputs],
                                            [slot(v) for v in step.outputs]))
            else:
                thunks.append(_node_thunk(step, [slot(v) for v in step.node.inputs],
                                          [slot(v) for v in step.node.outputs]))
        results = [slot(v) for v in fgraph.outputs]
        n_in = len(fgraph.inputs)

        def run(*inputs):
            env = list(values)
            env[:n_in] = inputs
            for thunk in thunks:
                thunk(env)
            return tuple(env[k] for k in results)

        run.steps = steps
        return run


def _node_thunk(step: NodeStep, ins: list[int], outs: list[int]):
    fn = step.node.op.py_fn(step.node)
    if len(outs) == 1:
        (o,) = outs

        def thunk(env):
            env[o] = fn(*[env[i] for i in ins])
    else:
        def thunk(env):
            for o, value in zip(outs, fn(*[env[i] for i in ins])):
                env[o] = value
    return thunk


def _kernel_thunk(step: KernelStep, fn, ins: list[int], outs: list[int]):
    k = step.kernel
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * 4
    params = [np.asarray(v, dtype=dt).reshape(()) for v, dt in zip(step.params, k.params)]
    param_ptrs = (ctypes.c_void_p * max(len(params), 1))(*[p.ctypes.data for p in params])
    acc_dtype = accumulator_dtype(k) if k.is_reduction else None
    n_ops = len(outs) + len(ins)

    def call(shape: tuple, arrays: list[np.ndarray], strides: list[tuple]) -> None:
        if 0 in shape:
            return
        c_shape = np.array(shape if k.ndim else (1,), dtype=np.int64)
        c_strides = np.array([s if k.ndim else (0,) for s in strides], dtype=np.int64)
        base = (ctypes.c_void_p * n_ops)(*[a.ctypes.data for a in arrays])
        fn(c_shape.ctypes.data, base, c_strides.ctypes.data, param_ptrs)

    def loop_strides(a: np.ndarray) -> tuple:
        return tuple(0 if n == 1 else s for n, s in zip(a.shape, a.strides))

    def thunk(env):
        arrays = [np.asarray(env[i]) for i in ins]
        shape = np.broadcast_shapes(*[a.shape for a in arrays]) if arrays else (1,) * k.ndim
        in_strides = [loop_strides(a) for a in arrays]
        if not k.is_reduction:
            results = [np.empty(shape, dtype=dt) for dt in k.output_dtypes]
            call(shape, results + arrays, [loop_strides(r) for r in results] + in_strides)
            for o, r in zip(outs, results):
                env[o] = r
            return
        axes = k.reduce_axes
        if k.reduce_op in ("max", "min") and any(shape[a] == 0 for a in axes):
            raise ValueError(f"zero-size array to reduction operation {k.reduce_op}imum which "
                             f"has no identity (input shape {shape})")
        kept = tuple(n for d, n in enumerate(shape) if d not in axes)
        acc = np.full(kept, _identity(k.reduce_op, acc_dtype), dtype=acc_dtype)
        kept_strides = iter(acc.strides)
        acc_strides = tuple(0 if d in axes else next(kept_strides) for d in range(len(shape)))
        call(shape, [acc, *arrays], [acc_strides, *in_strides])
        env[outs[0]] = acc.astype(k.acc_dtype, copy=False)

    return thunk
