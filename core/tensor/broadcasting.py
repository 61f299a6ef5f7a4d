"""Theano's broadcast-pattern helpers, for ported programs: shape_padleft / shape_padright /
shape_padaxis add length-1 axes, and addbroadcast / patternbroadcast declare axes of length 1
(checked at run time). theanine's types record lengths, not a broadcastable flag, so a known
length of 1 cannot be forgotten: patternbroadcast refuses to turn one back to unknown."""

from __future__ import annotations

from theanine.graph.basic import graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.elemwise import dimshuffle
from theanine.tensor.shape_ops import expand_dims, normalize_axis, specify_shape
from theanine.tensor.variable import TensorVariable


def shape_padleft(x, n_ones: int = 1) -> TensorVariable:
    """x with `n_ones` axes of length 1 in front."""
    x = as_tensor_variable(x)
    return dimshuffle(x, ["x"] * n_ones + list(range(x.ndim)))


def shape_padright(x, n_ones: int = 1) -> TensorVariable:
    """x with `n_ones` axes of length 1 at the end."""
    x = as_tensor_variable(x)
    return dimshuffle(x, list(range(x.ndim)) + ["x"] * n_ones)


def shape_padaxis(x, axis: int) -> TensorVariable:
    """x with an axis of length 1 inserted at `axis` (negative counts from the end of the
    result, as np.expand_dims)."""
    return expand_dims(x, axis)


def addbroadcast(x, *axes: int) -> TensorVariable:
    """x, declared (and checked at run time) to have length 1 on `axes`."""
    x = as_tensor_variable(x)
    ones = {normalize_axis(a, x.ndim, "addbroadcast", x) for a in axes}
    if not ones:
        return x
    return specify_shape(x, [1 if i in ones else s for i, s in enumerate(x.type.shape)])


def patternbroadcast(x, broadcastable) -> TensorVariable:
    """x with length 1 declared on the axes `broadcastable` marks True; an axis marked False
    must not have a known length of 1 (theanine cannot forget it)."""
    x = as_tensor_variable(x)
    pattern = tuple(bool(b) for b in broadcastable)
    if len(pattern) != x.ndim:
        raise graph_error(f"patternbroadcast: {x} has {x.ndim} dims but the pattern {pattern} "
                          f"has {len(pattern)}")
    fixed = [i for i, (b, s) in enumerate(zip(pattern, x.type.shape)) if not b and s == 1]
    if fixed:
        raise graph_error(f"patternbroadcast: {x} has static shape {x.type.shape}; axes "
                          f"{fixed} are known to have length 1 and cannot be made "
                          f"non-broadcastable (build {x} with an unknown length there)")
    return addbroadcast(x, *[i for i, b in enumerate(pattern) if b])


__all__ = ["addbroadcast", "patternbroadcast", "shape_padaxis", "shape_padleft",
           "shape_padright"]
