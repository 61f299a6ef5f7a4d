"""Specialize: replace general ops by cheaper special cases once the graph is stable.

x ** 2 -> sqr(x); x ** 0.5 -> sqrt(x) and x ** -1 -> reciprocal(x) for floating-point results;
the exponent must be a constant with every element equal. x is cast to the result dtype first,
so `int_x ** 0.5` becomes `sqrt(float64(int_x))`, exactly what pow computed.
"""

from __future__ import annotations

from theanine.rewrite.basic import conform, constant_data
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.type import FLOAT_DTYPES


@node_rewriter(["pow"])
def local_pow_specialize(fgraph, node):
    """x**2 -> sqr(x), x**0.5 -> sqrt(x), x**-1 -> reciprocal(x)."""
    from theanine.tensor.math import cast, reciprocal, sqr, sqrt

    x, y = node.inputs
    exponent = constant_data(y)
    if exponent is None or exponent.size == 0:
        return None
    value = exponent.flat[0]
    if not (exponent == value).all():
        return None
    out = node.outputs[0]
    is_float = out.dtype in FLOAT_DTYPES
    if value == 2:
        new = sqr(cast(x, out.dtype))
    elif value == 0.5 and is_float:
        new = sqrt(cast(x, out.dtype))
    elif value == -1 and is_float:
        new = reciprocal(cast(x, out.dtype))
    else:
        return None
    return [conform(out, new, [y])]


register_rewrite(local_pow_specialize, "specialize")


@node_rewriter(["add", "sub"])
def local_gemm_rewrite(fgraph, node):
    """beta*z + alpha*dot(x, y) (and the sub form) -> one Gemm."""
    from theanine.tensor.blas import local_gemm

    return local_gemm(fgraph, node)


register_rewrite(local_gemm_rewrite, "specialize", "gemm")
