"""Shape rewrites: `shape(v)` and `shape_i(v, i)` of an op's output become the op's
`infer_shape` result (or a constant where the static shape is known), so asking for a shape does
not compute the tensor."""

from __future__ import annotations

import numpy as np

from theanine.graph.traversal import ancestors
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.tensor.basic import constant
from theanine.tensor.shape_ops import MakeVector, Shape, ShapeI, entry_variable, shape_tuple
from theanine.tensor.type import TensorType


def inferred_shape(v) -> tuple | None:
    """The entries of v's shape (ints where known, int scalars built from the inputs' shapes of
    the node computing v), or None when v's shape can only be read from v itself."""
    if None not in v.type.shape:
        return v.type.shape
    node = v.owner
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
