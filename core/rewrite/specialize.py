"""Specialize: replace general ops by cheaper special cases once the graph is stable.

x ** 2 -> sqr(x); x ** 0.5 -> sqrt(x) and x ** -1 -> reciprocal(x) for floating-point results;
the exponent must be a constant with every element equal. x is cast to the result dtype first,
so `int_x ** 0.5` becomes `sqrt(float64(int_x))`, exactly what pow computed.

z + a*dot(x, y), z - a*dot(x, y) and b*z + a*dot(x, y) -> Gemm (theanine.tensor.blas): one BLAS
call instead of a product, a scaling and an addition.
"""

from __future__ import annotations

from theanine.graph.basic import Apply
from theanine.rewrite.basic import conform, constant_data, elemwise_owner
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.blas import Gemm
from theanine.tensor.linalg import Dot
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


def _scalar_constant(v) -> float | None:
    data = constant_data(v)
    if data is None or data.size != 1:
        return None
    return float(data.reshape(()))


def _scaled_dot(v, clients) -> tuple[float, Apply] | None:
    """(alpha, dot node) if v is dot(x, y) or c * dot(x, y) with a 2-d float Dot used only
    here."""
    node = v.owner
    alpha = 1.0
    mul = elemwise_owner(v, "mul")
    if mul is not None:
        for k in (0, 1):
            c = _scalar_constant(mul.inputs[k])
            inner = mul.inputs[1 - k]
            if c is not None and inner.owner is not None and isinstance(inner.owner.op, Dot):
                alpha, node = c, inner.owner
                break
        else:
            return None
    if node is None or not isinstance(node.op, Dot):
        return None
    x, y = node.inputs
    if x.ndim != 2 or y.ndim != 2 or node.outputs[0].dtype not in FLOAT_DTYPES:
        return None
    if len(clients.get(node.outputs[0], ())) != 1:
        return None
    return alpha, node


def _scaled(v) -> tuple[float, object]:
    """(beta, z) if v is c * z with a scalar constant c, else (1, v)."""
    mul = elemwise_owner(v, "mul")
    if mul is not None:
        for k in (0, 1):
            c = _scalar_constant(mul.inputs[k])
            if c is not None:
                return c, mul.inputs[1 - k]
    return 1.0, v


@node_rewriter(["add", "sub"])
def local_gemm_rewrite(fgraph, node):
    """z + a*dot(x, y), z - a*dot(x, y), b*z + a*dot(x, y) -> Gemm (one BLAS call)."""
    name = node.op.scalar_op.name
    out = node.outputs[0]
    if out.ndim != 2 or out.dtype not in FLOAT_DTYPES:
        return None
    left, right = node.inputs
    for dot_side, z_side in ((right, left), (left, right)):
        if name == "sub" and dot_side is left:
            continue
        found = _scaled_dot(dot_side, fgraph.clients)
        if found is None:
            continue
        alpha, dot_node = found
        beta, z = _scaled(z_side)
        if name == "sub":
            alpha = -alpha
        if z.dtype != out.dtype or z.ndim != 2 or z.type.shape != out.type.shape:
            continue
        new = Gemm(alpha, beta)(z, *dot_node.inputs)
        if new.type.shape != out.type.shape:
            continue
        return [new]
    return None


register_rewrite(local_gemm_rewrite, "specialize", "gemm")
