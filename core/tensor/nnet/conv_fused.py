"""conv2d with its bias and activation as one op (`Conv2dBiasAct`): act(conv2d(x, w) + b) with b
one value per filter and act identity, relu, tanh or sigmoid.

Users never build it: the `conv_epilogue` rewrite (theanine.rewrite.conv) makes it from the
three ops on backends that declare the tag (C), which apply the bias and the activation to each
image's output block while it is still in cache instead of in a second pass over memory."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.nnet.conv_ops import (
    Conv2dGradInputs,
    Conv2dGradWeights,
    ConvGeometry,
    _as_4d,
    _cast_like,
    _ConvOp,
    conv2d_forward,
)
from theanine.tensor.scalar_ops import _upcast
from theanine.tensor.type import TensorType

ACTIVATIONS = {
    "identity": lambda v: v,
    "relu": lambda v: np.maximum(v, 0, out=v),
    "tanh": lambda v: np.tanh(v, out=v),
    "sigmoid": lambda v: np.divide(1, 1 + np.exp(-v, out=v), out=v),
}


class Conv2dBiasAct(_ConvOp):
    """act(conv2d(x, w) + b[None, :, None, None]) for filters' biases b."""

    __props__ = ("geometry", "activation")

    def __init__(self, geometry: ConvGeometry, activation: str = "identity"):
        if activation not in ACTIVATIONS:
            raise graph_error(f"Conv2dBiasAct: activation must be one of {sorted(ACTIVATIONS)}, "
                              f"got {activation!r}")
        super().__init__(geometry)
        self.activation = activation

    def __str__(self):
        return f"Conv2dBiasAct{{{self.activation}, {self.geometry.describe()}}}"

    def make_node(self, x, w, b):
        from theanine.tensor.nnet.conv_ops import conv_output_shape

        x, w = _as_4d(x, self.fname, "input"), _as_4d(w, self.fname, "filters")
        b = as_tensor_variable(b)
        if b.ndim != 1:
            raise graph_error(f"{self.fname}: the bias must be a vector (one value per filter), "
                              f"got {b} with {b.ndim} dims")
        self._static_checks(x.type.shape, w.type.shape)
        shape = conv_output_shape(self.geometry, x.type.shape, w.type.shape)
        dtype = str(_upcast(x.dtype, w.dtype, b.dtype))
        return Apply(self, [x, w, b], [TensorType(dtype, shape)()])

    def py_fn(self, node):
        g, dtype, act = self.geometry, node.outputs[0].type.numpy_dtype, self.activation

        def conv_bias_act(x, w, b):
            b = np.asarray(b)
            if b.shape != (np.shape(w)[0],):
                raise ValueError(f"conv2d: the bias has shape {b.shape}, but there are "
                                 f"{np.shape(w)[0]} filters")
            out = conv2d_forward(x, w, g, dtype)
            out += b.astype(dtype)[None, :, None, None]
            return ACTIVATIONS[act](out)

        return conv_bias_act

    def _shape_entries(self, node, input_shapes):
        xs, ws = input_shapes[:2]
        return (xs[0], ws[0]) + tuple(self.geometry.out_len(a, xs[2 + a], ws[2 + a])
                                      for a in (0, 1))

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.reduction import sum as sum_

        x, w, b = inputs
        out, (g,) = outputs[0], output_grads
        if self.activation == "relu":
            g = g * (out > 0)
        elif self.activation == "tanh":
            g = g * (1 - out * out)
        elif self.activation == "sigmoid":
            g = g * out * (1 - out)
        gx = Conv2dGradInputs(self.geometry)(w, g, x.shape[2], x.shape[3])
        gw = Conv2dGradWeights(self.geometry)(x, g, w.shape[2], w.shape[3])
        return [_cast_like(gx, x), _cast_like(gw, w), _cast_like(sum_(g, axis=(0, 2, 3)), b)]


__all__ = ["Conv2dBiasAct", "ACTIVATIONS"]
