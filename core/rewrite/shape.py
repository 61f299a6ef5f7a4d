"""Shape rewrites: `shape(v)` and `shape_i(v, i)` of an op's output become the op's
`infer_shape` result (or a constant where the static shape is known), so asking for a shape does
not compute the tensor.

Computing a tensor also checks its inputs' shapes (broadcasting, inner dimensions of dot,
reshape sizes, index bounds), and `infer_shape` does not repeat those checks. So a shape is only
read from `infer_shape` for nodes that cannot fail because of their inputs' shapes: elementwise
ops whose broadcasting the static shapes already prove (on each axis at most one input of
unknown length, and then no other input of a known length other than 1), and DimShuffles that
drop only axes of static length 1. Any other node is computed when its shape is asked for, so
`(x + y).shape` with lengths 3 and 4 raises exactly as `x + y` does."""

from __future__ import annotations

import numpy as np

from theanine.graph.traversal import ancestors
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.basic import constant
from theanine.tensor.elemwise import DimShuffle, Elemwise
from theanine.tensor.shape_ops import MakeVector, Shape, ShapeI, entry_variable, shape_tuple
from theanine.tensor.type import TensorType


def cannot_fail_on_shapes(node) -> bool:
    """True if computing `node` raises for no input shapes its inputs' static shapes allow."""
    op = node.op
    if isinstance(op, Elemwise):
        for axis in range(node.outputs[0].ndim):
            lengths = [i.type.shape[axis] for i in node.inputs]
            unknown = lengths.count(None)
            if unknown > 1 or (unknown and any(n not in (None, 1) for n in lengths)):
                return False
        return True
    if isinstance(op, DimShuffle):
        return all(node.inputs[0].type.shape[d] == 1 for d in op.drop)
    return False


def inferred_shape(v) -> tuple | None:
    """The entries of v's shape (ints where known, int scalars built from the inputs' shapes of
    the node computing v), or None when v's shape can only be read from v itself (including
    when computing v checks something about its inputs' shapes)."""
    node = v.owner
    if node is not None and not cannot_fail_on_shapes(node):
        return None
    if None not in v.type.shape:
        return v.type.shape
    if node is None or not all(isinstance(i.type, TensorType) for i in node.inputs):
        return None
    try:
        shapes = node.op.infer_shape(node, [shape_tuple(i) for i in node.inputs])
    except NotImplementedError:
        return None
    return tuple(s if s is not None else e for s, e in zip(v.type.shape, shapes[v.index]))


def _independent_of(new, v) -> bool:
    return v not in set(ancestors([new]))


@node_rewriter([ShapeI])
def local_shape_i(fgraph, node):
    """shape_i(v, i) -> the i-th entry of v's inferred shape."""
    v = node.inputs[0]
    entries = inferred_shape(v)
    if entries is None:
        return None
    new = entry_variable(entries[node.op.i])
    return [new] if _independent_of(new, v) else None


@node_rewriter([Shape])
def local_shape(fgraph, node):
    """shape(v) -> a constant, or a vector of v's inferred shape entries."""
    v = node.inputs[0]
    entries = inferred_shape(v)
    if entries is None:
        return None
    if all(isinstance(e, int) for e in entries):
        return [constant(np.array(entries, dtype=np.int64))]
    new = MakeVector("int64")(*[entry_variable(e) for e in entries])
    return [new] if _independent_of(new, v) else None


for _rw in (local_shape_i, local_shape):
    register_rewrite(_rw, "shape")
