"""Stabilize: replace expressions that overflow, underflow or cancel in floating point by
equal ones that do not.

- log(sigmoid(x))      -> -softplus(-x)   (finite for x = -800, where sigmoid underflows to 0)
- log(1 - sigmoid(x))  -> -softplus(x)
- log(1 + x), log(x + 1) -> log1p(x)      (exact for |x| below the float epsilon)
- exp(x) - 1           -> expm1(x)
- log(softmax(x))      -> log_softmax(x)
"""

from __future__ import annotations

from theanine.rewrite.basic import conform, elemwise_owner, is_filled_with
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.type import FLOAT_DTYPES


@node_rewriter(["log"])
def local_log_sigmoid(fgraph, node):
    """log(sigmoid(x)) -> -softplus(-x)."""
    from theanine.tensor.math import cast, neg, softplus

    sig = elemwise_owner(node.inputs[0], "sigmoid")
    if sig is None:
        return None
    x = cast(sig.inputs[0], sig.outputs[0].dtype)
    return [conform(node.outputs[0], neg(softplus(neg(x))))]


@node_rewriter(["log"])
def local_log1m_sigmoid(fgraph, node):
    """log(1 - sigmoid(x)) -> -softplus(x)."""
    from theanine.tensor.math import cast, neg, softplus

    sub = elemwise_owner(node.inputs[0], "sub")
    if sub is None or not is_filled_with(sub.inputs[0], 1):
        return None
    sig = elemwise_owner(sub.inputs[1], "sigmoid")
    if sig is None:
        return None
    x = cast(sig.inputs[0], sig.outputs[0].dtype)
    return [conform(node.outputs[0], neg(softplus(x)), [sub.inputs[0]])]


@node_rewriter(["log"])
def local_log1p(fgraph, node):
    """log(1 + x), log(x + 1) -> log1p(x), for floating-point sums (an integer sum could wrap
    around, which log1p would not reproduce)."""
    from theanine.tensor.math import cast, log1p

    add = elemwise_owner(node.inputs[0], "add")
    if add is None or add.outputs[0].dtype not in FLOAT_DTYPES:
        return None
    a, b = add.inputs
    for keep, drop in ((a, b), (b, a)):
        if is_filled_with(drop, 1):
            new = log1p(cast(keep, add.outputs[0].dtype))
            return [conform(node.outputs[0], new, [drop])]
    return None


@node_rewriter(["sub"])
def local_expm1(fgraph, node):
    """exp(x) - 1 -> expm1(x)."""
    from theanine.tensor.math import expm1

    a, b = node.inputs
    e = elemwise_owner(a, "exp")
    if e is None or not is_filled_with(b, 1):
        return None
    return [conform(node.outputs[0], expm1(e.inputs[0]), [b])]


@node_rewriter(["log"])
def local_log_softmax(fgraph, node):
    """log(softmax(x)) -> log_softmax(x) (same axis)."""
    from theanine.tensor.nnet import LogSoftmax, Softmax

    sm = node.inputs[0].owner
    if sm is None or not isinstance(sm.op, Softmax):
        return None
    return [conform(node.outputs[0], LogSoftmax(sm.op.axis)(sm.inputs[0]))]


for _rw in (local_log_sigmoid, local_log1m_sigmoid, local_log1p, local_expm1,
            local_log_softmax):
    register_rewrite(_rw, "stabilize")
