"""Theano's other names for theanine's functions, so ported programs call them unchanged:
`as_tensor`, `sgn`, `iround`, `largest`, `smallest` and `max_and_argmax`."""

from __future__ import annotations

from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import cast, maximum, minimum, round, sign
from theanine.tensor.reduction import argmax, max
from theanine.tensor.variable import TensorVariable

as_tensor = as_tensor_variable


def sgn(x) -> TensorVariable:
    """The sign of x: -1, 0 or 1 (Theano's name for sign)."""
    return sign(x)


def iround(x) -> TensorVariable:
    """x rounded (as T.round) and cast to int64."""
    return cast(round(x), "int64")


def largest(*args) -> TensorVariable:
    """The elementwise maximum of all the arguments."""
    if not args:
        raise TypeError("largest() needs at least one argument")
    out = as_tensor_variable(args[0])
    for a in args[1:]:
        out = maximum(out, a)
    return out


def smallest(*args) -> TensorVariable:
    """The elementwise minimum of all the arguments."""
    if not args:
        raise TypeError("smallest() needs at least one argument")
    out = as_tensor_variable(args[0])
    for a in args[1:]:
        out = minimum(out, a)
    return out


def max_and_argmax(x, axis=None, keepdims: bool = False) -> list[TensorVariable]:
    """[max, argmax] of x over `axis` (Theano's pair)."""
    return [max(x, axis=axis, keepdims=keepdims), argmax(x, axis=axis, keepdims=keepdims)]


__all__ = ["as_tensor", "iround", "largest", "max_and_argmax", "sgn", "smallest"]
