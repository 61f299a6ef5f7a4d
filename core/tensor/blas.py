"""Gemm: beta*z + alpha*dot(x, y) as one op, so a backend makes one BLAS call (no separate
scaling and addition passes). The `specialize` pass forms it (theanine.rewrite.specialize) from
the patterns gradient descent produces: `w - lr * dot(a, b)`, `m * v + c * dot(a, b)`,
`z + dot(a, b)`."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable
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

