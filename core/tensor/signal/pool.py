"""2-d pooling over the last two axes (Theano's `theano.tensor.signal.pool`): `pool_2d` in
max, sum and average modes, and the ops of its gradients.

Geometry as Theano 1.0: windows of `ws` every `stride` (default ws) over the input padded by
`pad` on each side (padding needs ignore_border=True and pad < ws). With ignore_border=False a
last, partial window covers what is left. Max ignores padding; 'average_inc_pad' divides by
the window's size including padding (but not beyond the border), 'average_exc_pad' by the
number of input elements in it. Max pooling's gradient goes to every element of a window that
equals its maximum (ties all receive it, as Theano's MaxPoolGrad does).

The NumPy implementations loop over the ws[0] * ws[1] offsets of a window, each a strided
slice of the whole (padded) input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import ones_like, zeros_like
from theanine.tensor.shape_ops import Entry, entry_op
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorVariable

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


@dataclass(frozen=True)
class PoolGeometry:
    """Window, stride, padding, mode and border rule of one pooling."""

    ws: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    mode: str
    ignore_border: bool

    def out_len(self, axis: int, size: Entry) -> Entry:
        """The pooled length of an axis of `size` (Theano's Pool.out_shape)."""
        ws, st, p = self.ws[axis], self.stride[axis], self.pad[axis]
        v = entry_op("add", size, 2 * p)
        if self.ignore_border:
            out = entry_op("add", entry_op("int_div", entry_op("sub", v, ws), st), 1)
            return entry_op("maximum", out, 0)
        if st >= ws:
            return entry_op("add", entry_op("int_div", entry_op("sub", v, 1), st), 1)
        tail = entry_op("int_div", entry_op("sub", v, 1 + ws - st), st)
        return entry_op("add", entry_op("maximum", tail, 0), 1)

    def describe(self) -> str:
        return (f"ws={self.ws}, stride={self.stride}, pad={self.pad}, mode={self.mode!r}, "
                f"ignore_border={self.ignore_border}")


def _ints2(value, what: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
            for v in value):
        raise graph_error(f"pool_2d: {what} must be a pair of ints >= {minimum}, got "
                          f"{value!r}")
    return int(value[0]), int(value[1])


def pool_geometry(ws, ignore_border, stride, pad, mode: str) -> PoolGeometry:
    """Checked geometry from pool_2d's arguments (a graph error names a bad one)."""
    if mode == "max_deterministic":
        mode = "max"
    if mode not in MODES:
        raise graph_error(f"pool_2d: mode must be one of {', '.join(map(repr, MODES))}, got "
                          f"{mode!r}")
    ws = _ints2(ws, "ws", 1)
    stride = ws if stride is None else _ints2(stride, "stride", 1)
    pad = (0, 0) if pad is None else _ints2(pad, "pad", 0)
    if any(pad) and not ignore_border:
        raise graph_error(f"pool_2d: padding {pad} needs ignore_border=True")
    if any(p >= w for p, w in zip(pad, ws)):
        raise graph_error(f"pool_2d: pad {pad} must be smaller than the window ws={ws}")
    return PoolGeometry(ws, stride, pad, mode, bool(ignore_border))


# -- NumPy implementation ---------------------------------------------------------------------
def _layout(g: PoolGeometry, shape: tuple) -> tuple:
    """(out rows, out cols, extended rows, extended cols): the extended (padded, then grown so
    every window fits) image holds the input at offset pad."""
    oh, ow = (int(g.out_len(a, shape[-2 + a])) for a in (0, 1))
    eh = max(shape[-2] + 2 * g.pad[0], (oh - 1) * g.stride[0] + g.ws[0]) if oh else 0
    ew = max(shape[-1] + 2 * g.pad[1], (ow - 1) * g.stride[1] + g.ws[1]) if ow else 0
    return oh, ow, eh, ew


def _extended(x: np.ndarray, g: PoolGeometry, eh: int, ew: int, fill) -> np.ndarray:
    out = np.full(x.shape[:-2] + (eh, ew), fill, x.dtype)
    ph, pw = g.pad
    out[..., ph:ph + x.shape[-2], pw:pw + x.shape[-1]] = x
    return out


def _offset(a: np.ndarray, g: PoolGeometry, i: int, j: int, oh: int, ow: int) -> np.ndarray:
    """The elements at offset (i, j) of every window: a (..., oh, ow) strided slice."""
    sh, sw = g.stride
    return a[..., i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _counts(g: PoolGeometry, shape: tuple, oh: int, ow: int) -> np.ndarray:
    """Each window's divisor (oh, ow) for the average modes."""
    per_axis = []
    for axis, n in ((0, oh), (1, ow)):
        size, ws, st, p = shape[-2 + axis], g.ws[axis], g.stride[axis], g.pad[axis]
        start = np.arange(n) * st
        end = np.minimum(start + ws, size + 2 * p)
        if g.mode == "average_exc_pad":
            start, end = np.maximum(start, p), np.minimum(end, size + p)
        per_axis.append(np.maximum(end - start, 0))
    return np.multiply.outer(per_axis[0], per_axis[1])


def pool_forward(x: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """pool_2d of x over its last two axes."""
    x = np.asarray(x)
    oh, ow, eh, ew = _layout(g, x.shape)
    if not oh or not ow:
        return np.zeros(x.shape[:-2] + (oh, ow), x.dtype)
    ext = _extended(x, g, eh, ew, _lowest(x.dtype) if g.mode == "max" else 0)
    offsets = [(i, j) for i in range(g.ws[0]) for j in range(g.ws[1])]
    acc = _offset(ext, g, *offsets[0], oh, ow).copy()
    combine = np.maximum if g.mode == "max" else np.add
    for i, j in offsets[1:]:
        combine(acc, _offset(ext, g, i, j, oh, ow), out=acc)
    if g.mode.startswith("average"):
        acc = (acc / _counts(g, x.shape, oh, ow)).astype(x.dtype, copy=False)
    return acc


def max_pool_grad(x: np.ndarray, z: np.ndarray, gz: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The gradient of max pooling: gz[window] added to every element equal to the window's
    maximum z."""
    x, z, gz = np.asarray(x), np.asarray(z), np.asarray(gz)
    oh, ow, eh, ew = _layout(g, x.shape)
    _check_pooled("max_pool_grad", g, x.shape, (oh, ow), z, gz)
    if not oh or not ow:
        return np.zeros(x.shape, gz.dtype)
    ext = _extended(x, g, eh, ew, _lowest(x.dtype))
    gext = np.zeros(ext.shape, gz.dtype)
    for i in range(g.ws[0]):
        for j in range(g.ws[1]):
            hit = _offset(ext, g, i, j, oh, ow) == z
            _offset(gext, g, i, j, oh, ow)[...] += np.where(hit, gz, 0)
    return _cropped(gext, g, x.shape)


def average_pool_grad(x: np.ndarray, gz: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """The gradient of sum and average pooling: gz / divisor added to every window element."""
    x, gz = np.asarray(x), np.asarray(gz)
    oh, ow, eh, ew = _layout(g, x.shape)
    _check_pooled("average_pool_grad", g, x.shape, (oh, ow), gz)
    if not oh or not ow:
        return np.zeros(x.shape, gz.dtype)
    share = gz if g.mode == "sum" else (gz / _counts(g, x.shape, oh, ow)).astype(gz.dtype)
    gext = np.zeros(x.shape[:-2] + (eh, ew), gz.dtype)
    for i in range(g.ws[0]):
        for j in range(g.ws[1]):
            _offset(gext, g, i, j, oh, ow)[...] += share
    return _cropped(gext, g, x.shape)


def _cropped(gext: np.ndarray, g: PoolGeometry, shape: tuple) -> np.ndarray:
    ph, pw = g.pad
    return np.ascontiguousarray(gext[..., ph:ph + shape[-2], pw:pw + shape[-1]])


def _check_pooled(what: str, g: PoolGeometry, shape: tuple, pooled: tuple, *arrays) -> None:
    expected = tuple(shape[:-2]) + tuple(pooled)
    for a in arrays:
        if a.shape != expected:
            raise ValueError(f"{what}: pooling an input of shape {tuple(shape)} ({g.describe()})"
                             f" gives shape {expected}, but a pooled value has shape {a.shape}")


# -- ops --------------------------------------------------------------------------------------
class _PoolOp(Op):
    __props__ = ("geometry",)

    def __init__(self, geometry: PoolGeometry):
        self.geometry = geometry

    def __str__(self):
        return f"{type(self).__name__}{{{self.geometry.describe()}}}"

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)


def _as_images(x, what: str, arg: str = "input") -> TensorVariable:
    x = as_tensor_variable(x)
    if x.ndim < 2:
        raise graph_error(f"{what}: {arg} must have at least 2 dims (it pools the last two), "
                          f"got {x} with {x.ndim} dims")
    if x.type.numpy_dtype.kind not in "iuf":
        raise graph_error(f"{what}: {arg} must hold numbers, got {x} of dtype {x.dtype}")
    return x


class Pool(_PoolOp):
    """pool_2d(x): max, sum or average over windows of the last two axes."""

    def make_node(self, x):
        x = _as_images(x, "pool_2d")
        g = self.geometry
        if g.mode.startswith("average") and x.type.numpy_dtype.kind != "f":
            raise graph_error(f"pool_2d: mode {g.mode!r} needs a float input, got {x} of dtype "
                              f"{x.dtype}")
        return Apply(self, [x], [TensorType(x.dtype, self._shape(x.type.shape))()])

    def _shape(self, shape: tuple) -> tuple:
        return tuple(shape[:-2]) + tuple(
            None if shape[-2 + a] is None else self.geometry.out_len(a, shape[-2 + a])
            for a in (0, 1))

    def py_fn(self, node):
        g = self.geometry
        return lambda x: pool_forward(x, g)

    def infer_shape(self, node, input_shapes):
        (xs,) = input_shapes
        return [tuple(xs[:-2]) + tuple(self.geometry.out_len(a, xs[-2 + a]) for a in (0, 1))]

    def pullback(self, node, inputs, outputs, output_grads):
        (x,), (gz,) = inputs, output_grads
        if self.geometry.mode == "max":
            return [MaxPoolGrad(self.geometry)(x, outputs[0], gz)]
        return [AveragePoolGrad(self.geometry)(x, gz)]


class MaxPoolGrad(_PoolOp):
    """max_pool_grad(x, z, gz): max pooling's gradient for input x, pooled z, z's gradient gz."""

    def make_node(self, x, z, gz):
        x = _as_images(x, "max_pool_grad")
        z, gz = as_tensor_variable(z), as_tensor_variable(gz)
        return Apply(self, [x, z, gz], [TensorType(gz.dtype, x.type.shape)()])

    def py_fn(self, node):
        g = self.geometry
        return lambda x, z, gz: max_pool_grad(x, z, gz, g)

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0]]

    def pullback(self, node, inputs, outputs, output_grads):
        x, z, gz = inputs
        (gg,) = output_grads
        return [zeros_like(x), zeros_like(z), MaxPoolGradGrad(self.geometry)(x, z, gg)]


class MaxPoolGradGrad(_PoolOp):
    """max_pool_grad_grad(x, z, gg): MaxPoolGrad's gradient with respect to gz, gg summed
    over each window's maxima (the R-operator of max pooling)."""

    def make_node(self, x, z, gg):
        x = _as_images(x, "max_pool_grad_grad")
        z, gg = as_tensor_variable(z), as_tensor_variable(gg)
        return Apply(self, [x, z, gg], [TensorType(gg.dtype, z.type.shape)()])

    def py_fn(self, node):
        g = self.geometry

        def grad_grad(x, z, gg):
            x, z, gg = np.asarray(x), np.asarray(z), np.asarray(gg)
            oh, ow, eh, ew = _layout(g, x.shape)
            _check_pooled("max_pool_grad_grad", g, x.shape, (oh, ow), z)
            ext = _extended(x, g, eh, ew, _lowest(x.dtype))
            gext = _extended(gg, g, eh, ew, 0)
            out = np.zeros(z.shape, gg.dtype)
            for i in range(g.ws[0]):
                for j in range(g.ws[1]):
                    hit = _offset(ext, g, i, j, oh, ow) == z
                    out += np.where(hit, _offset(gext, g, i, j, oh, ow), 0)
            return out

        return grad_grad

    def infer_shape(self, node, input_shapes):
        return [input_shapes[1]]

    def pullback(self, node, inputs, outputs, output_grads):
        x, z, gg = inputs
        (g2,) = output_grads
        return [zeros_like(x), zeros_like(z), MaxPoolGrad(self.geometry)(x, z, g2)]


class AveragePoolGrad(_PoolOp):
    """average_pool_grad(x, gz): sum or average pooling's gradient for input x (its shape)."""

    def make_node(self, x, gz):
        x = _as_images(x, "average_pool_grad")
        gz = as_tensor_variable(gz)
        return Apply(self, [x, gz], [TensorType(gz.dtype, x.type.shape)()])

    def py_fn(self, node):
        g = self.geometry
        return lambda x, gz: average_pool_grad(x, gz, g)

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0]]

    def pullback(self, node, inputs, outputs, output_grads):
        x, gz = inputs
        (gg,) = output_grads
        return [zeros_like(x), Pool(self.geometry)(gg)]


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode: str = "max",
            ds=None, st=None, padding=None) -> TensorVariable:
    """Pool the last two axes of `input` over windows `ws` (Theano 1.0's pool_2d); `ds`, `st`
    and `padding` are Theano's deprecated names of ws, stride and pad."""
    for old, new, name in ((ds, ws, "ws"), (st, stride, "stride")):
        if old is not None and new is not None:
            raise graph_error(f"pool_2d: give {name} or its deprecated name, not both")
    ws = ds if ws is None else ws
    stride = st if stride is None else stride
    if padding is not None:
        pad = padding
    if ws is None:
        raise graph_error("pool_2d: the window size ws is required")
    if ignore_border is None:
        warnings.warn("pool_2d: ignore_border was not given; it defaults to False as in "
                      "Theano 1.0 (pass it explicitly)", stacklevel=2)
        ignore_border = False
    return Pool(pool_geometry(ws, ignore_border, stride, pad, mode))(input)


def max_pool_2d_same_size(input, patch_size) -> TensorVariable:
    """input where it is the maximum of its non-overlapping patch_size patch, else 0."""
    g = pool_geometry(patch_size, True, None, None, "max")
    x = _as_images(input, "max_pool_2d_same_size")
    z = Pool(g)(x)
    return MaxPoolGrad(g)(x, z, ones_like(z)) * x


__all__ = ["pool_2d", "max_pool_2d_same_size", "Pool", "MaxPoolGrad", "MaxPoolGradGrad",
           "AveragePoolGrad"]
