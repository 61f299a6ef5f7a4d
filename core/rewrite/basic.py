"""Merge (common subexpression elimination), constant folding, and the helpers the pattern
rewrites share (reading constants, matching elementwise nodes, conforming replacements)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Constant, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.rewrite.db import PASSES, GraphRewriter, node_rewriter, register_rewrite
from theanine.tensor.elemwise import DimShuffle, Elemwise, ScalarOp
from theanine.tensor.scalar_ops import is_builtin
from theanine.tensor.type import TensorType

# Outputs with more elements than this stay symbolic: folding them would bake big arrays into
# the graph (and into generated code) instead of computing them at run time.
MAX_FOLDED_SIZE = 1_000_000


# -- helpers ---------------------------------------------------------------------------------

def constant_data(v: Variable) -> np.ndarray | None:
    """The value of `v` if it is a Constant or a DimShuffle of one (how Python scalars enter
    elementwise ops), else None."""
    if isinstance(v, Constant):
        return np.asarray(v.data)
    node = v.owner
    if node is not None and isinstance(node.op, DimShuffle) and \
            isinstance(node.inputs[0], Constant):
        return node.op.perform(node, [np.asarray(node.inputs[0].data)])[0]
    return None


def is_filled_with(v: Variable, value) -> bool:
    """True if `v` is a non-empty constant whose every element equals `value`."""
    data = constant_data(v)
    return data is not None and data.size > 0 and bool(np.all(data == value))


def elemwise_owner(v: Variable, op: str | ScalarOp) -> Apply | None:
    """The node computing `v` if it is an Elemwise of scalar op `op`, else None. A string
    names one of theanine's own scalar ops ("mul"); an op of another's that shares the name
    does not match (pass a plugin's ScalarOp itself to match it)."""
    node = v.owner
    if node is None or not isinstance(node.op, Elemwise):
        return None
    sop = node.op.scalar_op
    if is_builtin(sop, op) if isinstance(op, str) else sop == op:
        return node
    return None


def conform(out: Variable, new: Variable, dropped: Sequence[Variable] = ()) -> Variable | None:
    """`new` given the dtype and static shape of `out`, or None if that is not possible.

    `dropped` are the constant inputs the rewrite removed; if they took part in broadcasting,
    `second(dropped, new)` restores the shape they imposed.
    """
    from theanine.tensor.math import cast, second

    if new.dtype != out.dtype:
        new = cast(new, out.dtype)
    if new.type.shape != out.type.shape:
        for d in dropped:
            new = second(d, new)
    if new.ndim != out.ndim or any(o is not None and n != o
                                   for o, n in zip(out.type.shape, new.type.shape)):
        return None
    return new


# -- merge -----------------------------------------------------------------------------------

class MergeRewriter(GraphRewriter):
    """Common subexpression elimination: Constants with equal `signature()` become one, then
    Apply nodes with an equal op and identical inputs become one."""

    name = "merge"

    def apply(self, fgraph: FunctionGraph, budget: float) -> bool:
        subst: dict[Variable, Variable] = {}
        constants: dict = {}
        for v in fgraph.clients:
            if isinstance(v, Constant):
                try:
                    keep = constants.setdefault(v.signature(), v)
                except TypeError:  # unhashable constant data: leave it alone
                    continue
                if keep is not v:
                    subst[v] = keep
        seen: dict = {}
        for node in fgraph.nodes:
            key = (node.op, tuple(subst.get(i, i) for i in node.inputs))
            keep = seen.setdefault(key, node)
            if keep is not node:
                subst.update(zip(node.outputs, keep.outputs))
        if not subst:
            return False
        # One batch edit: a kept variable is never itself substituted, so there are no chains.
        for old, new in subst.items():
            fgraph.redirect(old, new)
        fgraph.rebuild_clients()
        return True


# -- constant folding ------------------------------------------------------------------------

@node_rewriter(None)
def constant_folding(fgraph: FunctionGraph, node: Apply):
    """A node whose inputs are all Constants becomes Constants (computed with the op's perform),
    unless an output would exceed MAX_FOLDED_SIZE elements or the op opts out with
    `do_constant_folding(node) -> False` (ops with side effects or randomness)."""
    from theanine.tensor.basic import constant

    if not node.inputs or not all(isinstance(i, Constant) for i in node.inputs):
        return None
    opt_out = getattr(node.op, "do_constant_folding", None)
    if opt_out is not None and not opt_out(node):
        return None
    for o in node.outputs:
        if not isinstance(o.type, TensorType):
            return None
        if None not in o.type.shape and math.prod(o.type.shape) > MAX_FOLDED_SIZE:
            return None
    try:
        values = node.op.perform(node, [i.data for i in node.inputs])
    except Exception:  # leave the error to run time, where it is reported with the user's line
        return None
    result = []
    for o, value in zip(node.outputs, values):
        arr = np.asarray(value, dtype=o.type.numpy_dtype)
        if arr.size > MAX_FOLDED_SIZE or not o.type.shape_matches(arr.shape):
            return None
        result.append(constant(arr, name=o.name))
    return result


PASSES.register("merge1", MergeRewriter(), "fast_run", "fast_compile", "merge", position=0)
PASSES.register("merge2", MergeRewriter(), "fast_run", "fast_compile", "merge", position=10)
register_rewrite(constant_folding, "canonicalize", position=0)
