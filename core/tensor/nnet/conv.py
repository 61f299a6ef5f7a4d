"""Theano's older convolution module (`theano.tensor.nnet.conv`), which earlier LeNet tutorials
import: its `conv2d(input, filters, filter_shape, image_shape)` is the abstract conv2d."""

from __future__ import annotations

from theanine.tensor.nnet.abstract_conv import conv2d as _conv2d
from theanine.tensor.variable import TensorVariable


def conv2d(input, filters, image_shape=None, filter_shape=None, border_mode="valid",
           subsample=(1, 1), **kwargs) -> TensorVariable:
    """A true 2-d convolution ('valid' or 'full'), as the old interface computed it."""
    return _conv2d(input, filters, input_shape=image_shape, filter_shape=filter_shape,
                   border_mode=border_mode, subsample=subsample, **kwargs)


__all__ = ["conv2d"]
