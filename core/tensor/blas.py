"""Gemm: beta*z + alpha*dot(x, y) as one op, so a backend makes one BLAS call (no separate
scaling and addition passes). The `specialize` pass forms it from the patterns gradient
descent produces: `w - lr * dot(a, b)`, `m * v + c * dot(a, b)`, `z + dot(a, b)`."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.linalg import Dot
from theanine.tensor.type import FLOAT_DTYPES, TensorType


class Gemm(Op):
    """gemm(z, x, y) = beta * z + alpha * dot(x, y) for 2-d float x, y, z (z and the product
    broadcast like NumPy); alpha and beta are Python floats (part of the op)."""

    __props__ = ("alpha", "beta")

    def __init__(self, alpha: float, beta: float):
        self.alpha = float(alpha)
        self.beta = float(beta)

    def make_node(self, z, x, y):
        z, x, y = (as_tensor_variable(v) for v in (z, x, y))
        if x.ndim != 2 or y.ndim != 2 or z.ndim != 2:
            raise graph_error(f"gemm needs 2-d operands, got {z}, {x}, {y}")
        dtype = z.dtype
        if dtype not in FLOAT_DTYPES or x.dtype != dtype or y.dtype != dtype:
            raise graph_error(f"gemm needs one float dtype, got {z.dtype}, {x.dtype}, {y.dtype}")
        shape = (x.type.shape[0], y.type.shape[1])
        return Apply(self, [z, x, y], [TensorType(dtype, shape)()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)

    def py_fn(self, node):
        alpha, beta = self.alpha, self.beta
        dtype = node.outputs[0].type.numpy_dtype

        def gemm(z, x, y):
            out = np.dot(x, y)
            if alpha != 1:
                out *= dtype.type(alpha)
            if beta == 0:
                return out
            scaled = z if beta == 1 else dtype.type(beta) * z
            if np.shape(z) == out.shape:
                out += scaled
                return out
            return out + scaled  # z broadcasts against the product

        return gemm

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.linalg import dot

        z, x, y = inputs
        (gz,) = output_grads
        ga = gz * self.alpha
        return [gz * self.beta, dot(ga, y.T), dot(x.T, ga)]

    def infer_shape(self, node, input_shapes):
        from theanine.tensor.math import eq, switch

        zs, xs, ys = input_shapes
        # NumPy broadcasting of z against the (x rows, y cols) product
        return [tuple(b if isinstance(a, int) and a == 1 else switch(eq(a, 1), b, a)
                      for a, b in zip((xs[0], ys[1]), zs))]


def _scalar_constant(v) -> float | None:
    from theanine.rewrite.basic import constant_data

    data = constant_data(v)
    if data is None or data.size != 1:
        return None
    return float(data.reshape(()))


def _scaled_dot(v, clients) -> tuple[float, Apply] | None:
    """(alpha, dot node) if v is dot(x, y) or c * dot(x, y) with a 2-d float Dot used only
    here."""
    from theanine.rewrite.basic import elemwise_owner

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
    from theanine.rewrite.basic import elemwise_owner

    mul = elemwise_owner(v, "mul")
    if mul is not None:
        for k in (0, 1):
            c = _scalar_constant(mul.inputs[k])
            if c is not None:
                return c, mul.inputs[1 - k]
    return 1.0, v


def local_gemm(fgraph, node):
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
