"""Products of tensors: `dot` (NumPy/Theano semantics for every rank), `matmul`, `tensordot`,
`outer` and `batched_dot`.

Three ops carry them: `Dot` (1-d/2-d operands: the GEMM/GEMV a backend maps to a BLAS call),
`TensorDot` (general contraction over listed axes) and `MatMul` (stacks of matrices with batch
broadcasting). Everything else is a DimShuffle or an elementwise product around them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor import math as tm
from theanine.tensor.basic import as_tensor_pair, as_tensor_variable
from theanine.tensor.elemwise import broadcast_static_shapes, dimshuffle, reduce_to_shape_of
from theanine.tensor.type import DISCRETE_DTYPES, TensorType, format_shape
from theanine.tensor.variable import TensorVariable


def _out_dtype(a: TensorVariable, b: TensorVariable) -> str:
    return np.result_type(a.type.numpy_dtype, b.type.numpy_dtype).name


def _check_contracted(fname: str, a, b, axes_a: Sequence[int], axes_b: Sequence[int]) -> None:
    """Raise a GraphError when a statically known contracted length of a differs from b's."""
    for i, j in zip(axes_a, axes_b, strict=True):
        n, m = a.type.shape[i], b.type.shape[j]
        if n is not None and m is not None and n != m:
            what = (f"inner dimensions {n} and {m} differ" if len(axes_a) == 1 else
                    f"contracted axis {i} of {a} and axis {j} of {b} differ: {n} and {m}")
            raise graph_error(f"{fname}: {a} has shape {format_shape(a.type.shape)}, {b} has shape "
                              f"{format_shape(b.type.shape)}: {what}")


def _differentiable(x) -> bool:
    return x.dtype not in DISCRETE_DTYPES


def _named(op: Op, fn):
    """fn(a, b), with a shape error re-raised naming the op and both input shapes."""
    def run(a, b):
        try:
            return fn(a, b)
        except ValueError as e:
            raise ValueError(f"{op}: inputs of shapes {np.shape(a)} and {np.shape(b)}: "
                             f"{e}") from None

    return run


def _transpose(x):
    return dimshuffle(x, list(range(x.ndim - 2)) + [x.ndim - 1, x.ndim - 2])


class Dot(Op):
    """np.dot of two 1-d or 2-d tensors: inner product, matrix-vector or matrix-matrix."""

    def make_node(self, a, b):
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        if a.ndim not in (1, 2) or b.ndim not in (1, 2):
            raise graph_error(f"Dot takes 1-d or 2-d inputs, got {a} ({a.ndim}-d) and {b} "
                              f"({b.ndim}-d); use dot() for other ranks")
        _check_contracted("dot", a, b, [a.ndim - 1], [0])
        shape = a.type.shape[:-1] + b.type.shape[1:]
        return Apply(self, [a, b], [TensorType(_out_dtype(a, b), shape)()])

    def perform(self, node, inputs):
        out = self.py_fn(node)(*inputs)
        return (np.asarray(out, dtype=node.outputs[0].type.numpy_dtype),)

    def py_fn(self, node):
        return _named(self, np.dot)

    def pullback(self, node, inputs, outputs, output_grads):
        (a, b), (gz,) = inputs, output_grads
        if a.ndim == 1 and b.ndim == 1:
            ga, gb = gz * b, gz * a
        elif a.ndim == 1:  # (m,) . (m, k) -> (k,)
            ga, gb = dot(b, gz), outer(a, gz)
        elif b.ndim == 1:  # (n, m) . (m,) -> (n,)
            ga, gb = outer(gz, b), dot(gz, a)
        else:
            ga, gb = dot(gz, _transpose(b)), dot(_transpose(a), gz)
        return [ga if _differentiable(a) else None, gb if _differentiable(b) else None]

    def infer_shape(self, node, input_shapes):
        sa, sb = input_shapes
        return [tuple(sa[:-1]) + tuple(sb[1:])]


class TensorDot(Op):
    """np.tensordot(a, b, (axes_a, axes_b)): sum over the paired axes; the result has a's free
    axes then b's, each in their original order."""

    __props__ = ("axes_a", "axes_b")

    def __init__(self, axes_a: Sequence[int], axes_b: Sequence[int]):
        self.axes_a = tuple(axes_a)
        self.axes_b = tuple(axes_b)

    def make_node(self, a, b):
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        for x, axes in ((a, self.axes_a), (b, self.axes_b)):
            if any(not 0 <= i < x.ndim for i in axes):
                raise graph_error(f"tensordot: axes {axes} are out of range for {x} with "
                                  f"{x.ndim} dims")
        _check_contracted("tensordot", a, b, self.axes_a, self.axes_b)
        shape = tuple(s for i, s in enumerate(a.type.shape) if i not in self.axes_a) + \
            tuple(s for i, s in enumerate(b.type.shape) if i not in self.axes_b)
        return Apply(self, [a, b], [TensorType(_out_dtype(a, b), shape)()])

    def perform(self, node, inputs):
        out = self.py_fn(node)(*inputs)
        return (np.asarray(out, dtype=node.outputs[0].type.numpy_dtype),)

    def py_fn(self, node):
        axes = (list(self.axes_a), list(self.axes_b))
        return _named(self, lambda a, b: np.tensordot(a, b, axes))

    def pullback(self, node, inputs, outputs, output_grads):
        (a, b), (gz,) = inputs, output_grads
        ia, ib = self.axes_a, self.axes_b
        free_a = [i for i in range(a.ndim) if i not in ia]
        free_b = [i for i in range(b.ndim) if i not in ib]
        nfa = len(free_a)
        ga = gb = None
        if _differentiable(a):
            # axes of the product: a's free axes, then b's contracted axes in b's order
            g = tensordot(gz, b, (list(range(nfa, gz.ndim)), free_b))
            origin = free_a + [ia[ib.index(j)] for j in sorted(ib)]
            ga = dimshuffle(g, [origin.index(i) for i in range(a.ndim)])
        if _differentiable(b):
            # axes of the product: a's contracted axes in a's order, then b's free axes
            g = tensordot(a, gz, (free_a, list(range(nfa))))
            origin = [ib[ia.index(i)] for i in sorted(ia)] + free_b
            gb = dimshuffle(g, [origin.index(j) for j in range(b.ndim)])
        return [ga, gb]

    def infer_shape(self, node, input_shapes):
        sa, sb = input_shapes
        return [tuple(s for i, s in enumerate(sa) if i not in self.axes_a)
                + tuple(s for i, s in enumerate(sb) if i not in self.axes_b)]


class MatMul(Op):
    """np.matmul of two tensors of at least 2 dims: matrix products over the last two axes,
    broadcasting the leading (batch) axes."""

    def make_node(self, a, b):
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        if a.ndim < 2 or b.ndim < 2:
            raise graph_error(f"MatMul takes inputs of at least 2 dims, got {a} ({a.ndim}-d) "
                              f"and {b} ({b.ndim}-d); use matmul() for vectors")
        _check_contracted("matmul", a, b, [a.ndim - 1], [b.ndim - 2])
        batch = broadcast_static_shapes([a.type.shape[:-2], b.type.shape[:-2]],
                                        [str(a), str(b)])
        shape = batch + (a.type.shape[-2], b.type.shape[-1])
        return Apply(self, [a, b], [TensorType(_out_dtype(a, b), shape)()])

    def perform(self, node, inputs):
        out = self.py_fn(node)(*inputs)
        return (np.asarray(out, dtype=node.outputs[0].type.numpy_dtype),)

    def py_fn(self, node):
        return _named(self, np.matmul)

    def pullback(self, node, inputs, outputs, output_grads):
        (a, b), (gz,) = inputs, output_grads
        ga = reduce_to_shape_of(matmul(gz, _transpose(b)), a) if _differentiable(a) else None
        gb = reduce_to_shape_of(matmul(_transpose(a), gz), b) if _differentiable(b) else None
        return [ga, gb]

    def infer_shape(self, node, input_shapes):
        sa, sb = input_shapes
        (a, b), out = node.inputs, node.outputs[0]
        nb = out.ndim - 2
        pa = (None,) * (nb - (a.ndim - 2)) + tuple(sa[:-2])
        pb = (None,) * (nb - (b.ndim - 2)) + tuple(sb[:-2])
        ta = (1,) * (nb - (a.ndim - 2)) + a.type.shape[:-2]
        tb = (1,) * (nb - (b.ndim - 2)) + b.type.shape[:-2]
        batch = []
        for k in range(nb):
            if out.type.shape[k] is not None:
                batch.append(out.type.shape[k])
                continue
            cands = [p[k] for p, t in ((pa, ta), (pb, tb)) if t[k] != 1]
            dim = cands[0]
            for c in cands[1:]:
                both_int = isinstance(dim, int) and isinstance(c, int)
                dim = max(dim, c) if both_int else tm.maximum(dim, c)
            batch.append(dim)
        return [tuple(batch) + (sa[-2], sb[-1])]


def dot(a, b) -> TensorVariable:
    """np.dot: a product for 0-d operands, the inner product of vectors, matrix products, and
    for N-d operands the sum over a's last axis and b's second-to-last (last when b is 1-d)."""
    a, b = as_tensor_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return tm.mul(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return Dot()(a, b)
    jb = 0 if b.ndim == 1 else b.ndim - 2
    _check_contracted("dot", a, b, [a.ndim - 1], [jb])
    return TensorDot([a.ndim - 1], [jb])(a, b)


def _tensordot_axes(a, b, axes) -> tuple[list[int], list[int]]:
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if not 0 <= n <= min(a.ndim, b.ndim):
            raise graph_error(f"tensordot: axes={n} needs both inputs to have at least {n} "
                              f"dims, got {a} ({a.ndim}-d) and {b} ({b.ndim}-d)")
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    try:
        axes_a, axes_b = axes
    except (TypeError, ValueError):
        raise graph_error(f"tensordot: axes must be an int or a pair of axis lists, got "
                          f"{axes!r}") from None
    axes_a = [axes_a] if isinstance(axes_a, (int, np.integer)) else list(axes_a)
    axes_b = [axes_b] if isinstance(axes_b, (int, np.integer)) else list(axes_b)
    if len(axes_a) != len(axes_b):
        raise graph_error(f"tensordot: axes {axes_a} of {a} and {axes_b} of {b} have different "
                          "lengths")
    out = []
    for x, ax in ((a, axes_a), (b, axes_b)):
        for i in ax:
            if not -x.ndim <= i < x.ndim:
                raise graph_error(f"tensordot: axis {i} is out of range for {x}, which has "
                                  f"{x.ndim} dimensions")
        norm = [int(i) % x.ndim for i in ax]
        if len(set(norm)) != len(norm):
            raise graph_error(f"tensordot: axes {ax} repeat an axis of {x}")
        out.append(norm)
    return out[0], out[1]


def tensordot(a, b, axes=2) -> TensorVariable:
    """np.tensordot: contract the last `axes` axes of a with the first of b, or the paired
    axes (axes_a, axes_b)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    axes_a, axes_b = _tensordot_axes(a, b, axes)
    _check_contracted("tensordot", a, b, axes_a, axes_b)
    if (len(axes_a) == 1 and 1 <= a.ndim <= 2 and 1 <= b.ndim <= 2
            and axes_a[0] == a.ndim - 1 and axes_b[0] == 0):
        return Dot()(a, b)
    return TensorDot(axes_a, axes_b)(a, b)


def matmul(a, b) -> TensorVariable:
    """np.matmul (the @ operator): 1-d operands are promoted to a row / column and the added
    axis removed again; batch axes broadcast."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        raise graph_error(f"matmul: operands must have at least 1 dim, got {a} ({a.ndim}-d) "
                          f"and {b} ({b.ndim}-d); use mul or dot for scalars")
    _check_contracted("matmul", a, b, [a.ndim - 1], [max(b.ndim - 2, 0)])
    if a.ndim <= 2 and b.ndim <= 2:
        return Dot()(a, b)
    a2 = dimshuffle(a, ["x", 0]) if a.ndim == 1 else a
    b2 = dimshuffle(b, [0, "x"]) if b.ndim == 1 else b
    out = MatMul()(a2, b2)
    if b.ndim == 1:
        out = dimshuffle(out, list(range(out.ndim - 1)))
    if a.ndim == 1:
        out = dimshuffle(out, list(range(out.ndim - 2)) + [out.ndim - 1])
    return out


def outer(a, b) -> TensorVariable:
    """np.outer: operands are flattened (a 0-d one is a length-1 vector); the result has shape
    (a.size, b.size)."""
    from theanine.tensor.shape_ops import flatten

    a, b = as_tensor_pair(a, b)
    a, b = (flatten(x) if x.ndim > 1 else x for x in (a, b))
    col = dimshuffle(a, [0, "x"] if a.ndim == 1 else ["x", "x"])
    row = dimshuffle(b, ["x", 0] if b.ndim == 1 else ["x", "x"])
    return tm.mul(col, row)


def batched_dot(a, b) -> TensorVariable:
    """Theano's batched_dot: dot(a[i], b[i]) for each i of the shared first axis. Shapes
    (B,n,m)x(B,m,k)->(B,n,k), (B,n,m)x(B,m)->(B,n), (B,m)x(B,m,k)->(B,k), (B,n)x(B,n)->(B,)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise graph_error(f"batched_dot takes 2-d or 3-d inputs, got {a} ({a.ndim}-d) and {b} "
                          f"({b.ndim}-d)")
    na, nb = a.type.shape[0], b.type.shape[0]
    if na is not None and nb is not None and na != nb:
        raise graph_error(f"batched_dot: {a} has shape {format_shape(a.type.shape)}, {b} has shape "
                          f"{format_shape(b.type.shape)}: batch sizes {na} and {nb} differ")
    _check_contracted("batched_dot", a, b, [a.ndim - 1], [1])
    a3 = dimshuffle(a, [0, "x", 1]) if a.ndim == 2 else a
    b3 = dimshuffle(b, [0, 1, "x"]) if b.ndim == 2 else b
    out = MatMul()(a3, b3)
    keep = [0] + ([1] if a.ndim == 3 else []) + ([2] if b.ndim == 3 else [])
    return dimshuffle(out, keep)


__all__ = ["dot", "matmul", "tensordot", "outer", "batched_dot"]
