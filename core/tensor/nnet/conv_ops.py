"""The 2-d convolution ops (Theano 1.0's AbstractConv2d family): the forward convolution and its
two gradients, each an op of its own so every backend can give each a kernel.

All three share one geometry (`ConvGeometry`): border (padding), subsample (stride), filter
dilation, groups and whether the filters are flipped (`filter_flip=True` is a true convolution,
False a cross-correlation). Their NumPy implementations, which define them, work on a strided
window view of the padded input (N, C, kh, kw, oh, ow) and one tensordot per group.

    out[n, f, y, x] = sum_{c, i, j} xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw] * w'[f, c, i, j]

where g is f's group, xpad the input padded with zeros and w' the filters, flipped along both
spatial axes when `filter_flip`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.scalar_ops import _upcast
from theanine.tensor.shape_ops import Entry, as_entry, const_int, entry_op, entry_variable
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorVariable

Pads = tuple[tuple[int, int], tuple[int, int]]
NUMERIC_KINDS = "iuf"


# -- geometry ---------------------------------------------------------------------------------
def _pair(value, what: str, minimum: int) -> tuple[int, int]:
    """`value` (an int or a pair of ints, each >= minimum) as a pair; else a graph error."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  and v >= minimum for v in items):
        raise graph_error(f"conv2d: {what} must be a pair of ints >= {minimum}, got {value!r}")
    return int(items[0]), int(items[1])


def normalize_border(border_mode) -> str | Pads:
    """Theano's border_mode as 'full', 'half' or explicit ((top, bottom), (left, right)) pads:
    'valid' is zero padding, an int pads all four sides, a pair (rows, cols) of ints or of
    (before, after) pairs pads each axis."""
    if isinstance(border_mode, str):
        if border_mode == "valid":
            return ((0, 0), (0, 0))
        if border_mode in ("full", "half"):
            return border_mode
    elif isinstance(border_mode, (int, np.integer)) and not isinstance(border_mode, bool):
        if border_mode >= 0:
            return ((int(border_mode),) * 2,) * 2
    elif isinstance(border_mode, (tuple, list)) and len(border_mode) == 2:
        pads = []
        for m in border_mode:
            if isinstance(m, (int, np.integer)) and not isinstance(m, bool) and m >= 0:
                pads.append((int(m), int(m)))
            elif isinstance(m, (tuple, list)) and len(m) == 2 and all(
                    isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 0
                    for b in m):
                pads.append((int(m[0]), int(m[1])))
            else:
                break
        else:
            return (pads[0], pads[1])
    raise graph_error(f"conv2d: border_mode must be 'valid', 'full', 'half', an int >= 0 or a "
                      f"pair of ints >= 0 (or of (before, after) pairs), got {border_mode!r}")


@dataclass(frozen=True)
class ConvGeometry:
    """Padding, stride, dilation, groups and flip of one convolution."""

    border: str | Pads = ((0, 0), (0, 0))
    subsample: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flip: bool = True

    @classmethod
    def build(cls, border_mode="valid", subsample=(1, 1), filter_dilation=(1, 1),
              num_groups: int = 1, filter_flip: bool = True) -> ConvGeometry:
        """Checked geometry from Theano's arguments (a graph error names a bad one)."""
        if not isinstance(num_groups, (int, np.integer)) or isinstance(num_groups, bool) or \
                num_groups < 1:
            raise graph_error(f"conv2d: num_groups must be an int >= 1, got {num_groups!r}")
        return cls(normalize_border(border_mode), _pair(subsample, "subsample", 1),
                   _pair(filter_dilation, "filter_dilation", 1), int(num_groups),
                   bool(filter_flip))

    def pads(self, kh: Entry, kw: Entry) -> tuple:
        """((top, bottom), (left, right)) for a kernel of kh x kw (before dilation)."""
        if not isinstance(self.border, str):
            return self.border
        out = []
        for k, d in zip((kh, kw), self.dilation):
            dk = entry_op("add", entry_op("mul", entry_op("sub", k, 1), d), 1)
            p = entry_op("sub", dk, 1) if self.border == "full" else entry_op("int_div", dk, 2)
            out.append((p, p))
        return tuple(out)

    def out_len(self, axis: int, size: Entry, k: Entry) -> Entry:
        """The output length along spatial `axis` (0 rows, 1 columns) for an input of `size`
        and a kernel of `k` (Theano's get_conv_shape_1axis)."""
        (lo, hi) = self.pads(k, k)[axis]
        dk = entry_op("add", entry_op("mul", entry_op("sub", k, 1), self.dilation[axis]), 1)
        span = entry_op("sub", entry_op("add", entry_op("add", size, lo), hi), dk)
        return entry_op("add", entry_op("int_div", span, self.subsample[axis]), 1)

    def describe(self) -> str:
        border = self.border if isinstance(self.border, str) else f"pads={self.border}"
        return (f"{border}, subsample={self.subsample}, dilation={self.dilation}, "
                f"groups={self.groups}, flip={self.flip}")


def conv_output_shape(geometry: ConvGeometry, image_shape, kernel_shape) -> tuple:
    """(batch, filters, rows, cols) of the convolution; None where not known statically."""
    out = [image_shape[0], kernel_shape[0]]
    for axis in (0, 1):
        size, k = image_shape[2 + axis], kernel_shape[2 + axis]
        out.append(None if size is None or k is None else geometry.out_len(axis, size, k))
    return tuple(out)


# -- NumPy implementation ---------------------------------------------------------------------
def _pads_now(geometry: ConvGeometry, kh: int, kw: int) -> Pads:
    (t, b), (left, r) = geometry.pads(kh, kw)
    return (int(t), int(b)), (int(left), int(r))


def _windows(xp: np.ndarray, kshape: tuple, oshape: tuple, g: ConvGeometry) -> np.ndarray:
    """The read-only view (N, C, kh, kw, oh, ow) of padded input xp: element [n, c, i, j, y, x]
    is xp[n, c, y*sh + i*dh, x*sw + j*dw]."""
    sn, sc, sh, sw = xp.strides
    shape = xp.shape[:2] + tuple(kshape) + tuple(oshape)
    strides = (sn, sc, sh * g.dilation[0], sw * g.dilation[1], sh * g.subsample[0],
               sw * g.subsample[1])
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _pad(x: np.ndarray, pads: Pads) -> np.ndarray:
    if not any(pads[0] + pads[1]):
        return x
    return np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))


def _check_channels(g: ConvGeometry, what: str, channels: int, wshape: tuple) -> None:
    """The filters' shape must fit `channels` input channels in g.groups groups."""
    f, cg = wshape[:2]
    if f % g.groups or cg * g.groups != channels:
        raise ValueError(
            f"{what}: the input has {channels} channels and the filters have shape "
            f"{tuple(wshape)}: expected filters of shape (F, {channels // max(g.groups, 1)}, kh, "
            f"kw) with F divisible by num_groups={g.groups} (input channels / num_groups "
            f"= filter channels)")


def _out_shape_now(g: ConvGeometry, what: str, xshape: tuple, wshape: tuple) -> tuple:
    oh, ow = (int(g.out_len(a, xshape[2 + a], wshape[2 + a])) for a in (0, 1))
    if oh < 1 or ow < 1:
        pads = _pads_now(g, *wshape[2:])
        raise ValueError(
            f"{what}: the kernel ({wshape[2]}x{wshape[3]}, dilation {g.dilation}) is larger "
            f"than the padded input ({xshape[2]}+{sum(pads[0])} x {xshape[3]}+{sum(pads[1])} "
            f"with {g.describe()}): the output would have {oh}x{ow} pixels")
    return oh, ow


def _flipped(w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    return w[:, :, ::-1, ::-1] if g.flip else w


def conv2d_forward(x: np.ndarray, w: np.ndarray, g: ConvGeometry, dtype) -> np.ndarray:
    """The convolution of images x (N, C, H, W) with filters w (F, C/groups, kh, kw)."""
    x, w = np.asarray(x, dtype), np.asarray(w, dtype)
    _check_channels(g, "conv2d", x.shape[1], w.shape)
    oh, ow = _out_shape_now(g, "conv2d", x.shape, w.shape)
    win = _windows(_pad(x, _pads_now(g, *w.shape[2:])), w.shape[2:], (oh, ow), g)
    wf = _flipped(w, g)
    out = np.empty((x.shape[0], w.shape[0], oh, ow), dtype)
    fg, cg = w.shape[0] // g.groups, w.shape[1]
    for k in range(g.groups):
        part = np.tensordot(win[:, k * cg:(k + 1) * cg], wf[k * fg:(k + 1) * fg],
                            axes=([1, 2, 3], [1, 2, 3]))  # (N, oh, ow, Fg)
        out[:, k * fg:(k + 1) * fg] = part.transpose(0, 3, 1, 2)
    return out


def _check_top(g: ConvGeometry, what: str, xshape: tuple, wshape: tuple, top: np.ndarray):
    expected = (xshape[0], wshape[0]) + _out_shape_now(g, what, xshape, wshape)
    if top.shape != expected:
        raise ValueError(f"{what}: the output gradient has shape {top.shape}, but a convolution "
                         f"of inputs {tuple(xshape)} with filters {tuple(wshape)} ({g.describe()})"
                         f" gives shape {expected}")


def conv2d_grad_inputs(w: np.ndarray, top: np.ndarray, rows: int, cols: int,
                       g: ConvGeometry, dtype) -> np.ndarray:
    """The gradient of the convolution with respect to its input (of `rows` x `cols` pixels),
    given the filters w and the output's gradient `top`."""
    w, top = np.asarray(w, dtype), np.asarray(top, dtype)
    xshape = (top.shape[0], w.shape[1] * g.groups, int(rows), int(cols))
    _check_channels(g, "conv2d_grad_wrt_inputs", xshape[1], w.shape)
    _check_top(g, "conv2d_grad_wrt_inputs", xshape, w.shape, top)
    (pt, pb), (pl, pr) = _pads_now(g, *w.shape[2:])
    n, _, oh, ow = top.shape
    gxp = np.zeros((n, xshape[1], rows + pt + pb, cols + pl + pr), dtype)
    wf = _flipped(w, g)
    fg, cg = w.shape[0] // g.groups, w.shape[1]
    (sh, sw), (dh, dw) = g.subsample, g.dilation
    for k in range(g.groups):
        cols_ = np.tensordot(top[:, k * fg:(k + 1) * fg], wf[k * fg:(k + 1) * fg],
                             axes=([1], [0]))  # (N, oh, ow, Cg, kh, kw)
        for i in range(w.shape[2]):
            for j in range(w.shape[3]):
                gxp[:, k * cg:(k + 1) * cg, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                    j * dw:j * dw + (ow - 1) * sw + 1:sw] += cols_[..., i, j].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(gxp[:, :, pt:pt + rows, pl:pl + cols])


def conv2d_grad_weights(x: np.ndarray, top: np.ndarray, kh: int, kw: int, g: ConvGeometry,
                        dtype) -> np.ndarray:
    """The gradient of the convolution with respect to its filters (kh x kw), given the input
    x and the output's gradient `top`."""
    x, top = np.asarray(x, dtype), np.asarray(top, dtype)
    if x.shape[1] % g.groups:
        raise ValueError(f"conv2d_grad_wrt_weights: the input has {x.shape[1]} channels, not "
                         f"divisible by num_groups={g.groups}")
    wshape = (top.shape[1], x.shape[1] // g.groups, int(kh), int(kw))
    _check_channels(g, "conv2d_grad_wrt_weights", x.shape[1], wshape)
    _check_top(g, "conv2d_grad_wrt_weights", x.shape, wshape, top)
    win = _windows(_pad(x, _pads_now(g, kh, kw)), (kh, kw), top.shape[2:], g)
    gw = np.empty(wshape, dtype)
    fg, cg = wshape[0] // g.groups, wshape[1]
    for k in range(g.groups):
        gw[k * fg:(k + 1) * fg] = np.tensordot(top[:, k * fg:(k + 1) * fg],
                                               win[:, k * cg:(k + 1) * cg],
                                               axes=([0, 2, 3], [0, 4, 5]))
    return np.ascontiguousarray(_flipped(gw, g))


# -- ops --------------------------------------------------------------------------------------
def _as_4d(v, what: str, arg: str) -> TensorVariable:
    v = as_tensor_variable(v)
    if v.ndim != 4:
        raise graph_error(f"{what}: {arg} must be a 4-d tensor {_LAYOUT[arg]}, got {v} with "
                          f"{v.ndim} dims (type {v.type})")
    if v.type.numpy_dtype.kind not in NUMERIC_KINDS:
        raise graph_error(f"{what}: {arg} must hold numbers (ints or floats), got {v} of dtype "
                          f"{v.dtype}")
    return v


_LAYOUT = {"input": "(batch, channels, rows, columns)",
           "filters": "(filters, channels / num_groups, rows, columns)",
           "output_grad": "(batch, filters, rows, columns)"}


class _ConvOp(Op):
    """What the three convolution ops share: their geometry, and checks of static shapes."""

    __props__ = ("geometry",)
    fname = "conv2d"

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def __str__(self):
        return f"{type(self).__name__}{{{self.geometry.describe()}}}"

    def _static_checks(self, xshape: tuple, wshape: tuple) -> None:
        """Graph errors for what the static shapes already show to be wrong."""
        g = self.geometry
        c, (f, cg) = xshape[1], wshape[:2]
        if f is not None and f % g.groups:
            raise graph_error(f"{self.fname}: {f} filters are not divisible by "
                              f"num_groups={g.groups}")
        if c is not None and cg is not None and c != cg * g.groups:
            raise graph_error(
                f"{self.fname}: the input has {c} channels but the filters have {cg} "
                f"(filter shape {wshape}, num_groups={g.groups}): expected {c // g.groups} "
                f"filter channels (input channels / num_groups)")
        for axis, name in ((0, "rows"), (1, "columns")):
            size, k = xshape[2 + axis], wshape[2 + axis]
            if size is not None and k is not None and g.out_len(axis, size, k) < 1:
                raise graph_error(
                    f"{self.fname}: the kernel has {k} {name} (dilation {g.dilation[axis]}) "
                    f"but the input has only {size} {name} with {g.describe()}: the "
                    f"output would have {g.out_len(axis, size, k)} {name}")

    def infer_shape(self, node, input_shapes):
        static = node.outputs[0].type.shape
        return [tuple(s if s is not None else e
                      for s, e in zip(static, self._shape_entries(node, input_shapes)))]

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)


def _spatial(values, what: str) -> tuple[Entry, Entry]:
    """A pair of sizes (ints or int scalars)."""
    if len(values) != 2:
        raise graph_error(f"{what}: expected 2 sizes (rows, columns), got {values!r}")
    return tuple(as_entry(v, what) for v in values)


class Conv2d(_ConvOp):
    """conv2d(input, filters): the convolution of a batch of images with a set of filters."""

    def make_node(self, x, w):
        x, w = _as_4d(x, self.fname, "input"), _as_4d(w, self.fname, "filters")
        self._static_checks(x.type.shape, w.type.shape)
        shape = conv_output_shape(self.geometry, x.type.shape, w.type.shape)
        return Apply(self, [x, w], [TensorType(str(_upcast(x.dtype, w.dtype)), shape)()])

    def py_fn(self, node):
        g, dtype = self.geometry, node.outputs[0].type.numpy_dtype
        return lambda x, w: conv2d_forward(x, w, g, dtype)

    def _shape_entries(self, node, input_shapes):
        xs, ws = input_shapes
        return (xs[0], ws[0]) + tuple(self.geometry.out_len(a, xs[2 + a], ws[2 + a])
                                      for a in (0, 1))

    def pullback(self, node, inputs, outputs, output_grads):
        x, w = inputs
        (gz,) = output_grads
        gx = Conv2dGradInputs(self.geometry)(w, gz, x.shape[2], x.shape[3])
        gw = Conv2dGradWeights(self.geometry)(x, gz, w.shape[2], w.shape[3])
        return [_cast_like(gx, x), _cast_like(gw, w)]


def _cast_like(g: TensorVariable, v: TensorVariable) -> TensorVariable:
    from theanine.tensor.math import cast

    return g if g.dtype == v.dtype else cast(g, v.dtype)


class Conv2dGradInputs(_ConvOp):
    """conv2d_grad_wrt_inputs(filters, output_grad, rows, cols): the input's gradient (the
    transposed convolution), for an input of rows x cols pixels."""

    fname = "conv2d_grad_wrt_inputs"

    def make_node(self, w, top, rows, cols):
        w, top = _as_4d(w, self.fname, "filters"), _as_4d(top, self.fname, "output_grad")
        rows, cols = (entry_variable(as_entry(v, self.fname)) for v in (rows, cols))
        g = self.geometry
        h, wd = const_int(rows), const_int(cols)
        if top.type.shape[1] is not None and w.type.shape[0] is not None and \
                top.type.shape[1] != w.type.shape[0]:
            raise graph_error(f"{self.fname}: output_grad has {top.type.shape[1]} channels but "
                              f"there are {w.type.shape[0]} filters")
        c = None if w.type.shape[1] is None else w.type.shape[1] * g.groups
        xshape = (top.type.shape[0], c, h, wd)
        self._static_checks(xshape, w.type.shape)
        out = TensorType(str(_upcast(w.dtype, top.dtype)), xshape)()
        return Apply(self, [w, top, rows, cols], [out])

    def py_fn(self, node):
        g, dtype = self.geometry, node.outputs[0].type.numpy_dtype
        return lambda w, top, rows, cols: conv2d_grad_inputs(w, top, int(rows), int(cols), g,
                                                            dtype)

    def _shape_entries(self, node, input_shapes):
        ws, ts = input_shapes[:2]
        return (ts[0], entry_op("mul", ws[1], self.geometry.groups), node.inputs[2],
                node.inputs[3])

    def pullback(self, node, inputs, outputs, output_grads):
        w, top = inputs[:2]
        (gg,) = output_grads
        gw = Conv2dGradWeights(self.geometry)(gg, top, w.shape[2], w.shape[3])
        gtop = Conv2d(self.geometry)(gg, w)
        return [_cast_like(gw, w), _cast_like(gtop, top), None, None]


class Conv2dGradWeights(_ConvOp):
    """conv2d_grad_wrt_weights(input, output_grad, kh, kw): the filters' gradient."""

    fname = "conv2d_grad_wrt_weights"

    def make_node(self, x, top, kh, kw):
        x, top = _as_4d(x, self.fname, "input"), _as_4d(top, self.fname, "output_grad")
        kh, kw = (entry_variable(as_entry(v, self.fname)) for v in (kh, kw))
        g = self.geometry
        c = x.type.shape[1]
        if c is not None and c % g.groups:
            raise graph_error(f"{self.fname}: the input has {c} channels, not divisible by "
                              f"num_groups={g.groups}")
        wshape = (top.type.shape[1], None if c is None else c // g.groups, const_int(kh),
                  const_int(kw))
        self._static_checks(x.type.shape, wshape)
        out = TensorType(str(_upcast(x.dtype, top.dtype)), wshape)()
        return Apply(self, [x, top, kh, kw], [out])

    def py_fn(self, node):
        g, dtype = self.geometry, node.outputs[0].type.numpy_dtype
        return lambda x, top, kh, kw: conv2d_grad_weights(x, top, int(kh), int(kw), g, dtype)

    def _shape_entries(self, node, input_shapes):
        xs, ts = input_shapes[:2]
        return (ts[1], entry_op("int_div", xs[1], self.geometry.groups), node.inputs[2],
                node.inputs[3])

    def pullback(self, node, inputs, outputs, output_grads):
        x, top = inputs[:2]
        (gg,) = output_grads
        gx = Conv2dGradInputs(self.geometry)(gg, top, x.shape[2], x.shape[3])
        gtop = Conv2d(self.geometry)(x, gg)
        return [_cast_like(gx, x), _cast_like(gtop, top), None, None]


__all__ = ["ConvGeometry", "Conv2d", "Conv2dGradInputs", "Conv2dGradWeights",
           "conv_output_shape", "normalize_border", "conv2d_forward", "conv2d_grad_inputs",
           "conv2d_grad_weights"]
