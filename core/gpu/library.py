"""The shared GPU op table (`gpu_impl`): how the GPU backends run every library op that is not
fused into a kernel, and the ops that make a declared round trip through the host.

Each entry plans one node (theanine.gpu.plans): `entry.fn(program, node, source)` returns a
device Plan (its implementation gets the runtime, the node, its prepared kernels and its inputs,
DeviceArrays where the plan reads 'd' and host NumPy values where it reads 'h') or a host Plan,
which runs the op's NumPy `perform` on host copies of its inputs. An entry falls back to the host
plan for dtypes its kernels do not compute; a host round trip's `how` says why there is no
kernel yet. The base `Op` entry runs a user's op (its `perform` is its definition) on the host.
Each GPU backend's own table (`OpTable("opencl", fallback=gpu_impl)`) reads this one for what
it does not override, so a plugin can change one backend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from theanine.codegen.ir import Call, Const, Kernel, Load
from theanine.distributed.ops import AllReduce
from theanine.gpu.array import DeviceArray, contiguous_strides
from theanine.gpu.plans import Plan, PlanKind, ProgramKernels, places
from theanine.gradient import StopGradient
from theanine.graph.basic import Apply, Op
from theanine.ifelse import IfElse
from theanine.op_table import OpTable
from theanine.tensor.allocation import Alloc, ARange
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import DimShuffle, Elemwise, SumToShapeOf
from theanine.tensor.join import Join, Split
from theanine.tensor.linalg import Dot, MatMul, TensorDot
from theanine.tensor.nnet import CrossentropyCategorical1Hot, LogSoftmax, OneHot, Softmax
from theanine.tensor.random import FlatIndex
from theanine.tensor.random_ops import CheckParam, Choice, Multinomial, Permutation
from theanine.tensor.reduction import ArgReduce, Reduce
from theanine.tensor.shape_ops import MakeVector, Reshape, Shape, ShapeI, SpecifyShape
from theanine.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedSubtensor,
    IncSubtensor,
    Subtensor,
    _index_fn,
)

gpu_impl = OpTable("gpu")

GEMM_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
               "uint32", "uint64")
FLOATS = ("float32", "float64")
# dtypes the reduction renderer does not compute (sum_to_shape's reduction kernel)
NO_REDUCTION_KERNEL = ("float16", "complex64", "complex128")


# -- plans and device implementations ------------------------------------------------------------
def perform_on_host(rt, node: Apply, prepared, *inputs) -> list:
    """The op's NumPy perform on host copies of its inputs."""
    return node.op.perform(node, list(inputs))


HOST_PLAN = Plan(PlanKind.HOST, run=perform_on_host)


def on_host(program, node: Apply, source: ProgramKernels) -> Plan:
    """Its perform on the host."""
    return HOST_PLAN


def _device(*op_classes: type, reads: str, how: str, host_values: bool = False) -> Callable:
    """Decorator: `run` is the device implementation of `op_classes` for every dtype, reading
    its inputs where `reads` says (one code per input, the last repeating)."""

    def deco(run: Callable) -> Callable:
        plan = Plan(PlanKind.DEVICE, run=run, reads=places(reads), host_values=host_values)

        def entry(program, node: Apply, source: ProgramKernels) -> Plan:
            return plan

        for cls in op_classes:
            gpu_impl.add(cls, entry, how=how)
        return run

    return deco


def view_through(x: DeviceArray, fn, *args) -> DeviceArray | None:
    """The view of x that NumPy function `fn` (a view-making op's py_fn) gives, found by applying
    fn to a one-byte-per-element stand-in for x with x's strides; None if fn copied. NumPy's own
    rules and errors apply, and no data moves."""
    lo = sum((n - 1) * s for n, s in zip(x.shape, x.strides) if s < 0 and n > 0)
    hi = sum((n - 1) * s for n, s in zip(x.shape, x.strides) if s > 0 and n > 0)
    base = np.empty(hi - lo + 1, np.uint8)
    proxy = np.lib.stride_tricks.as_strided(base[-lo:], x.shape, x.strides)
    out = fn(proxy, *args)
    if not isinstance(out, np.ndarray):
        # a single element comes back as a NumPy scalar, not a view: read its position from
        # a stand-in whose elements hold their own positions
        positions = np.arange(lo, hi + 1, dtype=np.int64)
        proxy = np.lib.stride_tricks.as_strided(positions[-lo:], x.shape,
                                                tuple(8 * s for s in x.strides))
        return x.view((), (), x.offset + int(fn(proxy, *args)))
    if out.size and not np.shares_memory(out, base):
        return None
    start = out.__array_interface__["data"][0] - base.__array_interface__["data"][0] + lo
    return x.view(out.shape, out.strides, x.offset + start)


@_device(Shape, reads="d", how="the device array's shape (host)", host_values=True)
def _shape(rt, node, prepared, x):
    return (np.array(x.shape, dtype=np.int64),)


@_device(ShapeI, reads="d", how="the device array's shape (host)", host_values=True)
def _shape_i(rt, node, prepared, x):
    return (np.array(x.shape[node.op.i], dtype=np.int64),)


@_device(SpecifyShape, reads="dh", how="shape check on the host")
def _specify_shape(rt, node, prepared, x, *entries):
    # the check runs on a zero-stride stand-in of x's shape and dtype: no data moves
    stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, x.dtype), x.shape, (0,) * x.ndim)
    node.op.perform(node, [stand_in, *entries])  # raises on a mismatch
    return (x,)


@_device(Reshape, reads="dh", how="a view (after a device copy when not contiguous)")
@_device(Subtensor, reads="dh", how="a view")
def _view_op(rt, node, prepared, x, *args):
    v = view_through(x, node.op.py_fn(node), *args)
    if v is None:  # NumPy had to copy (a reshape of a non-contiguous array): copy on device
        v = view_through(rt.copy(x), node.op.py_fn(node), *args)
    if v is None:
        raise RuntimeError(f"{node.op} is not a view of a contiguous array on this backend")
    return (v,)


@_device(IncSubtensor, reads="ddh", how="a device copy whose indexed view a kernel sets or "
         "increments (basic indices)")
def _inc_subtensor(rt, node, prepared, x, y, *args):
    op = node.op
    index = _index_fn(op.idx_list, True)
    out = rt.copy(x)
    try:
        region = view_through(out, lambda p, *a: p[index(a)], *args)
        fits = region is not None and np.broadcast_shapes(y.shape, region.shape) == \
            region.shape and (op.set_instead_of_inc or out.dtype != np.bool_)
    except (IndexError, ValueError, TypeError):
        fits = False
    if not fits:  # the reference raises its own error (or, for odd cases, computes it)
        return (rt.to_device(op.perform(node, [x.get(), y.get(), *args])[0]),)
    if op.set_instead_of_inc:
        rt.copy(y, region)
    else:
        rt.add_into(y, region)
    return (out,)


@_device(DimShuffle, reads="d", how="a view")
def _dimshuffle(rt, node, prepared, x):
    op = node.op
    for d in op.drop:
        if x.shape[d] != 1:
            raise ValueError(f"{op}: cannot drop axis {d} of length {x.shape[d]} (shape "
                             f"{x.shape}); only length-1 axes can be dropped")
    kept = [(n, s) for i, (n, s) in enumerate(zip(x.shape, x.strides)) if i not in op.drop]
    dims = [kept[p] for p in op.perm]
    for i in op.expand:
        dims.insert(i, (1, 0))
    return (x.view(tuple(n for n, _ in dims), tuple(s for _, s in dims)),)


@_device(Split, reads="dh", how="views")
def _split(rt, node, prepared, x, *args):
    fn = node.op.py_fn(node)
    n = len(node.outputs)
    return tuple(view_through(x, lambda p, *a, j=j: fn(p, *a)[j], *args) for j in range(n))


@_device(StopGradient, reads="d", how="identity")
def _identity(rt, node, prepared, x, *rest):
    return (x,)


@_device(Alloc, reads="dh", how="broadcast copy kernel")
def _alloc(rt, node, prepared, value, *entries):
    it = iter(entries)
    shape = tuple(int(next(it)) if p is None else p for p in node.op.pattern)
    if any(n < 0 for n in shape):
        raise ValueError(f"alloc: negative dimension in shape {shape}")
    out = rt.empty(shape, node.outputs[0].dtype)
    rt.copy(value, out)
    return (out,)


def _sum_to_shape(rt, node, prepared, g, x):
    target = node.op.target(x)
    if g.shape == target:
        return (g,)
    kernel, compiled, combine = prepared
    lead = g.ndim - len(target)
    keep = [1 if a < lead or (target[a - lead] == 1 and g.shape[a] != 1) else g.shape[a]
            for a in range(g.ndim)]
    red = [g.shape[a] // keep[a] if keep[a] else 1 for a in range(g.ndim)]
    kst = [s if n != 1 else 0 for n, s in zip(keep, g.strides)]
    rst = [s if n != 1 else 0 for n, s in zip(red, g.strides)]
    loop = tuple(keep) + tuple(red)
    proxy = g.view(loop, tuple(kst) + tuple(rst))
    out = rt.reduce(kernel, compiled, combine, loop, [proxy], [])
    return (out.view(target, contiguous_strides(target)),)


def _dot(rt, node, prepared, a, b):
    a2 = a if a.ndim == 2 else a.view((1, a.shape[0]), (0, a.strides[0]))
    b2 = b if b.ndim == 2 else b.view((b.shape[0], 1), (b.strides[0], 0))
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned")
    out = rt.gemm(prepared, a2, b2, None, 1, 0, node.outputs[0].dtype)
    shape = a.shape[:-1] + b.shape[1:]
    return (out.view(shape, contiguous_strides(shape)),)


def _gemm(rt, node, prepared, z, x, y):
    if x.shape[1] != y.shape[0]:
        raise ValueError(f"gemm: shapes {x.shape} and {y.shape} are not aligned")
    return (rt.gemm(prepared, x, y, z, node.op.alpha, node.op.beta, node.outputs[0].dtype),)


def _softmax(rt, node, prepared, x):
    (kmax, cmax, combmax), (ksum, csum, combsum), (kout, kc, ks) = prepared
    ax = node.op.axis
    m = rt.reduce(kmax, cmax, combmax, x.shape, [x], [])
    m = _expand(m, x.shape, ax)
    s = _expand(rt.reduce(ksum, csum, combsum, x.shape, [x, m], []), x.shape, ax)
    out = rt.empty(x.shape, node.outputs[0].dtype)
    rt.elementwise(kout, kc, ks, [out], [x, m, s], [])
    return (out,)


def _expand(r: DeviceArray, shape: tuple, ax: int) -> DeviceArray:
    """A reduction result over axis `ax` viewed with that axis put back (length 1)."""
    shp = shape[:ax] + (1,) + shape[ax + 1:]
    strides = list(r.strides)
    strides.insert(ax, 0)
    return r.view(shp, tuple(strides))


def _gemm_entry(run: Callable, reads: str) -> Callable:
    """An entry running `run` with the tiled GEMM kernel of the output dtype, or the host plan
    for dtypes the kernel does not compute."""

    def entry(program, node: Apply, source: ProgramKernels) -> Plan:
        dt = node.outputs[0].dtype
        if dt not in GEMM_DTYPES or dt not in program.rt.dtypes:
            return HOST_PLAN
        return Plan(PlanKind.DEVICE, source.gemm(dt), run, places(reads))

    return entry


gpu_impl.add(Dot, _gemm_entry(_dot, "dd"),
             how="tiled GEMM kernel (local memory); other dtypes on the host")
gpu_impl.add(Gemm, _gemm_entry(_gemm, "ddd"),
             how="tiled GEMM kernel with alpha and beta; other dtypes on the host")


def _softmax_kernels(node: Apply, source: ProgramKernels, log: bool) -> tuple:
    """The max and sum reductions along the axis and the elementwise kernel of (log)softmax."""
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
    if log:
        out = Call(dt, "sub", (shifted, Call(dt, "log", (s,))))
    else:
        out = Call(dt, "true_div", (Call(dt, "exp", (shifted,)), s))
    kout = Kernel("th_k", nd, [(dt, nd)] * 3, [], [out], output_dtypes=[dt])
    return (source.reduction(kmax), source.reduction(ksum), source.elementwise(kout))


def _softmax_entry(log: bool) -> Callable:
    """An entry running (log)softmax's kernels for float32/float64 outputs, else the host plan."""

    def entry(program, node: Apply, source: ProgramKernels) -> Plan:
        dt = node.outputs[0].dtype
        if dt not in FLOATS or dt not in program.rt.dtypes:
            return HOST_PLAN
        return Plan(PlanKind.DEVICE, _softmax_kernels(node, source, log), _softmax, places("d"))

    return entry


gpu_impl.add(Softmax, _softmax_entry(log=False),
             how="max and sum reduction kernels, one elementwise kernel; other dtypes on the host")
gpu_impl.add(LogSoftmax, _softmax_entry(log=True),
             how="max and sum reduction kernels, one elementwise kernel; other dtypes on the host")


@gpu_impl.register(SumToShapeOf)
def _plan_sum_to_shape(program, node: Apply, source: ProgramKernels) -> Plan:
    """Identity when shapes agree, else a reduction kernel; float16/complex on the host."""
    dt = node.outputs[0].dtype
    if dt not in program.rt.dtypes or dt in NO_REDUCTION_KERNEL:
        return HOST_PLAN
    nd = node.inputs[0].ndim
    k = Kernel("th_k", 2 * nd, [(dt, 2 * nd)], [], [Load(dt, 0)], reduce_op="add",
               reduce_axes=tuple(range(nd, 2 * nd)), acc_dtype=dt, output_dtypes=[dt])
    return Plan(PlanKind.DEVICE, source.reduction(k), _sum_to_shape,
                places("dh" if node.op.from_shape else "dd"))


@gpu_impl.register(MakeVector)
def _plan_make_vector(program, node: Apply, source: ProgramKernels) -> Plan:
    """Shape arithmetic on host scalars."""
    return Plan(PlanKind.HOST, run=perform_on_host, host_values=True)


def _round_trips(reasons: dict[type, str]) -> None:
    for cls, why in reasons.items():
        gpu_impl.add(cls, on_host, how=why)


_round_trips({
    ARange: "NumPy arange on the host, uploaded",
    FlatIndex: "NumPy arange on the host, uploaded (a fused draw reads no index array)",
    Permutation: "host round trip (sorts of Philox keys): the same numbers as every backend",
    Multinomial: "host round trip (binomials over Philox uniforms): the same numbers as every "
                 "backend",
    Choice: "host round trip (sorts and CDF searches over Philox words): the same numbers as "
            "every backend",
    CheckParam: "host round trip (checks a random draw's parameter, raising a ValueError)",
    Join: "host round trip (NumPy concatenate): no device kernel yet",
    AdvancedSubtensor: "host round trip (NumPy advanced indexing): no device kernel yet",
    AdvancedIncSubtensor: "host round trip (NumPy np.add.at): no device kernel yet",
    ArgReduce: "host round trip (NumPy argmax/argmin): no device kernel yet",
    TensorDot: "host round trip (NumPy tensordot): no device kernel yet",
    IfElse: "host round trip (both branches computed: function() makes every IfElse lazy)",
    MatMul: "host round trip (NumPy matmul): no device kernel yet",
    OneHot: "host round trip (NumPy one-hot): no device kernel yet",
    CrossentropyCategorical1Hot: "host round trip (NumPy indexing): no device kernel yet",
    Elemwise: "host round trip for dtypes the renderer does not support (float16, complex)",
    Reduce: "host round trip for dtypes the renderer does not support (float16, complex)",
    AllReduce: "host round trip (MPI's all-reduce in fused buckets); CUDA's table uses NCCL on "
               "the device buffers where it is found",
    Op: "its perform on the host (a user's op: perform is its definition)",
})


from theanine.gpu import conv as _conv  # noqa: E402, F401 (registers convolution and pooling)
from theanine.gpu import scan as _scan  # noqa: E402, F401 (registers Scan and LazyIfElse)
from theanine.gpu import sparse as _sparse  # noqa: E402, F401 (refuses theanine.sparse ops)
