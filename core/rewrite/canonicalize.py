"""Canonicalize: remove arithmetic identities (x*1, x+0, x-0, x/1, x**1, --x), useless casts
and DimShuffles, and fold chains of DimShuffles into one.

Identity rewrites only fire when the result keeps the original dtype and static shape; where the
removed constant took part in broadcasting, the result is `second(constant, x)` (and a cast
where the dtype differs), so the rewritten graph computes exactly the same array.

`x / x` is deliberately NOT rewritten to 1: for x = 0 or x = inf the reference computes NaN,
and a rewrite must never change a value the NumPy reference defines.
"""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import GraphError
from theanine.rewrite.basic import conform, constant_data, elemwise_owner, is_filled_with
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.elemwise import DimShuffle, Elemwise, dimshuffle
from theanine.tensor.math import second
from theanine.tensor.scalar_ops import cast_target, is_builtin

# scalar op -> (neutral element, which operand may be the neutral one: "both" or "right")
_NEUTRAL = {
    "mul": (1, "both"),
    "add": (0, "both"),
    "sub": (0, "right"),
    "true_div": (1, "right"),
    "pow": (1, "right"),
}


# For a floating-point x, adding a zero is exact only for -0.0 ((-0.0) + 0.0 is +0.0) and
# subtracting one only for +0.0 ((-0.0) - (-0.0) is +0.0): the sign bit the zero must have.
_ZERO_SIGN = {"add": True, "sub": False}


def _is_exact_zero(op_name: str, keep, drop) -> bool:
    """True if `keep op drop` (drop all zeros) equals keep bit for bit, signed zeros included."""
    if keep.type.numpy_dtype.kind not in "fc":
        return True
    data = constant_data(drop)
    want = _ZERO_SIGN[op_name]
    parts = (data.real, data.imag) if data.dtype.kind == "c" else (data,)
    return all(bool(np.all(np.signbit(p) == want)) for p in parts)


@node_rewriter(list(_NEUTRAL))
def local_neutral_element(fgraph, node):
    """x*1, 1*x, x+0, 0+x, x-0, x/1, x**1 -> x (cast / broadcast to the original type).

    For floating-point x the zero must have the right sign: x + (-0.0) and x - (+0.0) are x,
    but x + 0.0 turns -0.0 into +0.0, so it stays."""
    name = node.op.scalar_op.name
    neutral, side = _NEUTRAL[name]
    a, b = node.inputs
    choices = [(a, b), (b, a)] if side == "both" else [(a, b)]
    for keep, drop in choices:
        if is_filled_with(drop, neutral) and (name not in _ZERO_SIGN
                                              or _is_exact_zero(name, keep, drop)):
            new = conform(node.outputs[0], keep, [drop])
            if new is not None:
                return [new]
    return None


@node_rewriter(["neg"])
def local_double_neg(fgraph, node):
    """--x -> x."""
    inner = elemwise_owner(node.inputs[0], "neg")
    if inner is None:
        return None
    return [conform(node.outputs[0], inner.inputs[0])]


@node_rewriter([Elemwise])
def local_useless_cast(fgraph, node):
    """A cast to the dtype its input already has is the input."""
    if cast_target(node.op.scalar_op) is not None and \
            node.inputs[0].type == node.outputs[0].type:
        return [node.inputs[0]]
    return None


@node_rewriter([DimShuffle])
def local_dimshuffle(fgraph, node):
    """Remove an identity DimShuffle; merge DimShuffle(DimShuffle(x)) into one DimShuffle."""
    op = node.op
    x = node.inputs[0]
    if op.new_order == tuple(range(op.input_ndim)):
        return [x]
    inner = x.owner
    if inner is None or not isinstance(inner.op, DimShuffle):
        return None
    order = ["x" if d == "x" else inner.op.new_order[d] for d in op.new_order]
    try:
        return [dimshuffle(inner.inputs[0], order)]
    except GraphError:
        return None


for _rw in (local_neutral_element, local_double_neg, local_useless_cast, local_dimshuffle):
    register_rewrite(_rw, "canonicalize", position=1)


@node_rewriter(["switch"])
def local_switch_constant_condition(fgraph, node):
    """switch(c, a, b) with a constant condition that is all true (or all false) -> a (or b),
    broadcast to the original shape. Gradients of pow and clip leave these behind."""
    cond, a, b = node.inputs
    data = constant_data(cond)
    if data is None or data.size == 0:
        return None
    if bool(np.all(data)):
        return [conform(node.outputs[0], a, [cond, b])]
    if not bool(np.any(data)):
        return [conform(node.outputs[0], b, [cond, a])]
    return None


@node_rewriter([Elemwise])
def local_fill_sink(fgraph, node):
    """op(second(a, b), c) -> second(a, op(b, c)): move the broadcast-only `second` outward so
    the arithmetic meets constants directly (gradient seeds are fills of ones)."""
    if is_builtin(node.op.scalar_op, "second") or len(node.inputs) < 2:
        return None
    for k, v in enumerate(node.inputs):
        fill = elemwise_owner(v, "second")
        if fill is None or fill.inputs[1].ndim != v.ndim:
            continue
        model, value = fill.inputs
        inputs = list(node.inputs)
        inputs[k] = value
        inner = node.op(*inputs)
        return [conform(node.outputs[0], second(model, inner))]
    return None


for _rw in (local_switch_constant_condition, local_fill_sink):
    register_rewrite(_rw, "canonicalize", position=1)
