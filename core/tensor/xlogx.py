"""`T.xlogx` (Theano's theano.tensor.xlogx): x * log(x) and x * log(y) taken as 0 where x is 0,
the entropy and cross-entropy terms of binary units (rnnrbm's pseudo-likelihood monitor)."""

from __future__ import annotations

from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import eq, log, switch
from theanine.tensor.variable import TensorVariable


def xlogy0(x, y) -> TensorVariable:
    """x * log(y), and 0 where x == 0 (even where y is 0 too); log reads 1 there, so neither
    the value nor the gradient is NaN."""
    x, y = as_tensor_variable(x), as_tensor_variable(y)
    return x * log(switch(eq(x, 0), 1, y))


def xlogx(x) -> TensorVariable:
    """x * log(x), and 0 where x == 0."""
    return xlogy0(x, x)


__all__ = ["xlogx", "xlogy0"]
