"""Theano's 2-d convolution API (`theano.tensor.nnet.conv2d`, `abstract_conv`): conv2d, its two
gradients as functions, and the output-shape helper, over the ops of `conv_ops`.

The `input_shape` / `filter_shape` hints are checked against the variables' static shapes and
then asserted (a run-time shape check that also makes the shapes static), so every later shape
is known when the graph is built."""

from __future__ import annotations

from collections.abc import Sequence

from theanine.graph.basic import graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.nnet.conv_ops import (
    Conv2d,
    Conv2dGradInputs,
    Conv2dGradWeights,
    ConvGeometry,
    conv_output_shape,
)
from theanine.tensor.shape_ops import const_int, specify_shape
from theanine.tensor.variable import TensorVariable


def _hinted(v: TensorVariable, hint, what: str, arg: str) -> TensorVariable:
    """v with the shape hint `hint` (4 entries, None or an int each) applied: a hint that
    contradicts v's static shape is a graph error; one that adds knowledge becomes a shape
    check at run time."""
    v = as_tensor_variable(v)
    if hint is None:
        return v
    hint = tuple(None if h is None else const_int(h) for h in hint)
    if len(hint) != 4:
        raise graph_error(f"{what}: {arg} must have 4 entries, got {hint!r}")
    if v.ndim != 4:
        return v  # the op names the wrong rank
    static = v.type.shape
    for k, (s, h) in enumerate(zip(static, hint)):
        if s is not None and h is not None and s != h:
            raise graph_error(f"{what}: {arg}={hint} but {v} has static shape {static} "
                              f"(axis {k}: {s}, not {h})")
    if all(h is None or s is not None for s, h in zip(static, hint)):
        return v
    return specify_shape(v, tuple(s if s is not None else h for s, h in zip(static, hint)))


def _unshared(unshared: bool, kwargs: dict, what: str) -> None:
    if unshared:
        raise graph_error(f"{what}: unshared convolutions (unshared=True) are not supported")
    if kwargs:
        raise graph_error(f"{what}: unexpected arguments {sorted(kwargs)}")


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), filter_flip: bool = True, image_shape=None,
           filter_dilation=(1, 1), num_groups: int = 1, unshared: bool = False,
           **kwargs) -> TensorVariable:
    """The 2-d convolution of `input` (batch, channels, rows, cols) with `filters` (filters,
    channels / num_groups, rows, cols), as Theano 1.0's conv2d: border_mode 'valid', 'full',
    'half', an int or a pair; `filter_flip=True` is a true convolution (False: correlation)."""
    _unshared(unshared, kwargs, "conv2d")
    if image_shape is not None:  # Theano's deprecated name for input_shape
        if input_shape is not None:
            raise graph_error("conv2d: give input_shape or image_shape, not both")
        input_shape = image_shape
    g = ConvGeometry.build(border_mode, subsample, filter_dilation, num_groups, filter_flip)
    x = _hinted(input, input_shape, "conv2d", "input_shape")
    w = _hinted(filters, filter_shape, "conv2d", "filter_shape")
    return Conv2d(g)(x, w)


def conv2d_grad_wrt_inputs(output_grad, filters, input_shape, filter_shape=None,
                           border_mode="valid", subsample=(1, 1), filter_flip: bool = True,
                           filter_dilation=(1, 1), num_groups: int = 1,
                           unshared: bool = False) -> TensorVariable:
    """The gradient of conv2d's output (`output_grad`) with respect to its input, of
    `input_shape` (4 entries; its last two, the image size, are required)."""
    _unshared(unshared, {}, "conv2d_grad_wrt_inputs")
    g = ConvGeometry.build(border_mode, subsample, filter_dilation, num_groups, filter_flip)
    if input_shape is None or len(input_shape) != 4:
        raise graph_error(f"conv2d_grad_wrt_inputs: input_shape must have 4 entries, got "
                          f"{input_shape!r}")
    w = _hinted(filters, filter_shape, "conv2d_grad_wrt_inputs", "filter_shape")
    out = Conv2dGradInputs(g)(w, output_grad, input_shape[2], input_shape[3])
    known = [None if e is None else const_int(e) for e in input_shape[:2]]
    if any(k is not None for k in known):
        out = _hinted(out, (*known, None, None), "conv2d_grad_wrt_inputs", "input_shape")
    return out


def conv2d_grad_wrt_weights(input, output_grad, filter_shape, input_shape=None,
                            border_mode="valid", subsample=(1, 1), filter_flip: bool = True,
                            filter_dilation=(1, 1), num_groups: int = 1,
                            unshared: bool = False) -> TensorVariable:
    """The gradient of conv2d's output (`output_grad`) with respect to its filters, of
    `filter_shape` (4 entries; its last two, the kernel size, are required)."""
    _unshared(unshared, {}, "conv2d_grad_wrt_weights")
    g = ConvGeometry.build(border_mode, subsample, filter_dilation, num_groups, filter_flip)
    if filter_shape is None or len(filter_shape) != 4:
        raise graph_error(f"conv2d_grad_wrt_weights: filter_shape must have 4 entries, got "
                          f"{filter_shape!r}")
    x = _hinted(input, input_shape, "conv2d_grad_wrt_weights", "input_shape")
    return Conv2dGradWeights(g)(x, output_grad, filter_shape[2], filter_shape[3])


def get_conv_output_shape(image_shape: Sequence, kernel_shape: Sequence, border_mode,
                          subsample: Sequence, filter_dilation: Sequence | None = None) -> tuple:
    """(batch, filters, rows, cols) of conv2d's output for these shapes (ints, symbolic
    scalars or None where unknown), as Theano's abstract_conv.get_conv_output_shape."""
    g = ConvGeometry.build(border_mode, subsample, filter_dilation or (1, 1))
    return conv_output_shape(g, tuple(image_shape), tuple(kernel_shape))


def get_conv_shape_1axis(image_shape, kernel_shape, border_mode, subsample, dilation=1):
    """One axis of get_conv_output_shape (None when either length is unknown)."""
    if image_shape is None or kernel_shape is None:
        return None
    if isinstance(border_mode, tuple) or (isinstance(border_mode, int) and
                                          not isinstance(border_mode, bool)):
        border_mode = (border_mode, 0)
    g = ConvGeometry.build(border_mode, (subsample, 1), (dilation, 1))
    return g.out_len(0, image_shape, kernel_shape)


__all__ = ["conv2d", "conv2d_grad_wrt_inputs", "conv2d_grad_wrt_weights",
           "get_conv_output_shape", "get_conv_shape_1axis"]
