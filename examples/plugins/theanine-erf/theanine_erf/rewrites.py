"""Recognise GELU written out, `0.5 * x * (1 + erf(x / sqrt(2)))` (factors in any order,
`x * (1/sqrt 2)` too), and replace it by `gelu(x)`: one op, and no cancellation in
`1 + erf(...)`, which is 0 in floating point for x below about -8 (float64) where gelu is not."""

from __future__ import annotations

import math

import numpy as np

from theanine.rewrite.basic import conform, constant_data, elemwise_owner, is_filled_with
from theanine.rewrite.db import node_rewriter
from theanine.tensor.type import FLOAT_DTYPES
from theanine_erf.ops import ERF, gelu


def _factors(v, out: list) -> list:
    """The factors of a product tree of `mul` nodes (v itself when it is no product)."""
    node = elemwise_owner(v, "mul")
    if node is None:
        out.append(v)
    else:
        for i in node.inputs:
            _factors(i, out)
    return out


def _is_scalar(v, value: float) -> bool:
    """True if `v` is a constant equal to `value` as its dtype rounds it."""
    data = constant_data(v)
    if data is None or data.size == 0 or data.dtype.kind != "f":
        return False
    return bool(np.all(data == np.asarray(value, dtype=data.dtype)))


def _scaled_by_sqrt_half(v):
    """x if `v` is x / sqrt(2) or x * (1/sqrt 2) (either order), else None."""
    div = elemwise_owner(v, "true_div")
    if div is not None and _is_scalar(div.inputs[1], math.sqrt(2)):
        return div.inputs[0]
    mul = elemwise_owner(v, "mul")
    if mul is not None:
        a, b = mul.inputs
        for x, c in ((a, b), (b, a)):
            if _is_scalar(c, math.sqrt(0.5)):
                return x
    return None


def _erf_argument(v):
    """y if `v` is 1 + erf(y) (either order), else None."""
    add = elemwise_owner(v, "add")
    if add is None:
        return None
    a, b = add.inputs
    for one, e in ((a, b), (b, a)):
        erf_node = elemwise_owner(e, ERF.scalar_op)
        if erf_node is not None and is_filled_with(one, 1):
            return erf_node.inputs[0]
    return None


@node_rewriter(["mul"])
def local_gelu(fgraph, node):
    """0.5 * x * (1 + erf(x / sqrt 2)) -> gelu(x), for floating-point x."""
    out = node.outputs[0]
    if out.dtype not in FLOAT_DTYPES:
        return None
    factors = _factors(out, [])
    if len(factors) != 3:
        return None
    for half in factors:
        if not _is_scalar(half, 0.5):
            continue
        rest = [f for f in factors if f is not half]
        for x, cdf in (rest, rest[::-1]):
            y = _erf_argument(cdf)
            if y is not None and _scaled_by_sqrt_half(y) is x and x.dtype == out.dtype:
                return [conform(out, gelu(x), [half])]
    return None
