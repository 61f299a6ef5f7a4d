"""Device implementations of the library ops that are not fused kernels, and the ops that make
a declared round trip through the host.

Each device implementation gets the runtime, the node, the program's prepared kernels for that
node and its inputs (DeviceArray where the table says 'd', host NumPy values where it says 'h')
and returns its outputs. An op in HOST_OPS runs its NumPy `perform` on host copies of its inputs;
the reason says why it has no kernel yet. A theanine op in neither table fails compilation by
name (user ops defined outside theanine run their `perform`, their definition, on the host).
"""

from __future__ import annotations

import numpy as np

from theanine.gpu.array import DeviceArray, contiguous_strides
from theanine.gradient import StopGradient
from theanine.tensor.allocation import Alloc, ARange
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import DimShuffle, Elemwise, SumToShapeOf
from theanine.tensor.jacobian_map import JacobianMap
from theanine.tensor.join import Join, Split
from theanine.tensor.linalg import Dot, MatMul, TensorDot
from theanine.tensor.nnet import CrossentropyCategorical1Hot, LogSoftmax, OneHot, Softmax
from theanine.tensor.reduction import ArgReduce, Reduce
from theanine.tensor.shape_ops import MakeVector, Reshape, Shape, ShapeI, SpecifyShape
from theanine.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedSubtensor,
    IncSubtensor,
    Subtensor,
)

GEMM_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
               "uint32", "uint64")


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


def _shape(rt, node, prepared, x):
    return (np.array(x.shape, dtype=np.int64),)


def _shape_i(rt, node, prepared, x):
    return (np.array(x.shape[node.op.i], dtype=np.int64),)


def _specify_shape(rt, node, prepared, x, *entries):
    # the check runs on a zero-stride stand-in of x's shape and dtype: no data moves
    stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, x.dtype), x.shape, (0,) * x.ndim)
    node.op.perform(node, [stand_in, *entries])  # raises on a mismatch
    return (x,)


def _view_op(rt, node, prepared, x, *args):
    v = view_through(x, node.op.py_fn(node), *args)
    if v is None:  # NumPy had to copy (a reshape of a non-contiguous array): copy on device
        v = view_through(rt.copy(x), node.op.py_fn(node), *args)
    if v is None:
        raise RuntimeError(f"{node.op} is not a view of a contiguous array on this backend")
    return (v,)


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


def _split(rt, node, prepared, x, *args):
    fn = node.op.py_fn(node)
    n = len(node.outputs)
    return tuple(view_through(x, lambda p, *a, j=j: fn(p, *a)[j], *args) for j in range(n))


def _identity(rt, node, prepared, x, *rest):
    return (x,)


def _alloc(rt, node, prepared, value, *entries):
    it = iter(entries)
    shape = tuple(int(next(it)) if p is None else p for p in node.op.pattern)
    if any(n < 0 for n in shape):
        raise ValueError(f"alloc: negative dimension in shape {shape}")
    out = rt.empty(shape, node.outputs[0].dtype)
    rt.copy(value, out)
    return (out,)


def _sum_to_shape(rt, node, prepared, g, x):
    if g.shape == x.shape:
        return (g,)
    kernel, compiled, combine = prepared
    lead = g.ndim - x.ndim
    keep = [1 if a < lead or (x.shape[a - lead] == 1 and g.shape[a] != 1) else g.shape[a]
            for a in range(g.ndim)]
    red = [g.shape[a] // keep[a] if keep[a] else 1 for a in range(g.ndim)]
    kst = [s if n != 1 else 0 for n, s in zip(keep, g.strides)]
    rst = [s if n != 1 else 0 for n, s in zip(red, g.strides)]
    loop = tuple(keep) + tuple(red)
    proxy = g.view(loop, tuple(kst) + tuple(rst))
    out = rt.reduce(kernel, compiled, combine, loop, [proxy], [])
    return (out.view(x.shape, contiguous_strides(x.shape)),)


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


# op class -> (input placement per input ('d' device / 'h' host; the last letter repeats),
#              implementation, description)
DEVICE_OPS: dict[type, tuple[str, object, str]] = {
    Shape: ("d", _shape, "the device array's shape (host)"),
    ShapeI: ("d", _shape_i, "the device array's shape (host)"),
    SpecifyShape: ("dh", _specify_shape, "shape check on the host"),
    DimShuffle: ("d", _dimshuffle, "a view"),
    Reshape: ("dh", _view_op, "a view (after a device copy when not contiguous)"),
    Subtensor: ("dh", _view_op, "a view"),
    Split: ("dh", _split, "views"),
    StopGradient: ("d", _identity, "identity"),
    Alloc: ("dh", _alloc, "broadcast copy kernel"),
    SumToShapeOf: ("dd", _sum_to_shape, "identity when shapes agree, else a reduction kernel"),
    Dot: ("dd", _dot, "tiled GEMM kernel (local memory)"),
    Gemm: ("ddd", _gemm, "tiled GEMM kernel with alpha and beta"),
    Softmax: ("d", _softmax, "max and sum reduction kernels, one elementwise kernel"),
    LogSoftmax: ("d", _softmax, "max and sum reduction kernels, one elementwise kernel"),
}

HOST_OPS: dict[type, str] = {
    MakeVector: "shape arithmetic on host scalars",
    ARange: "NumPy arange on the host, uploaded",
    Join: "host round trip (NumPy concatenate): no device kernel yet",
    AdvancedSubtensor: "host round trip (NumPy advanced indexing): no device kernel yet",
    IncSubtensor: "host round trip (NumPy slice assignment): no device kernel yet",
    AdvancedIncSubtensor: "host round trip (NumPy np.add.at): no device kernel yet",
    ArgReduce: "host round trip (NumPy argmax/argmin): no device kernel yet",
    TensorDot: "host round trip (NumPy tensordot): no device kernel yet",
    MatMul: "host round trip (NumPy matmul): no device kernel yet",
    OneHot: "host round trip (NumPy one-hot): no device kernel yet",
    CrossentropyCategorical1Hot: "host round trip (NumPy indexing): no device kernel yet",
    JacobianMap: "host round trip (loop over a compiled gradient)",
    Elemwise: "host round trip for dtypes the renderer does not support (float16, complex)",
    Reduce: "host round trip for dtypes the renderer does not support (float16, complex)",
}
