"""`theanine.printing.Print`, Theano's debugging op: the identity, printing a message and the
value (or attributes of it, such as 'shape') each time the compiled function computes it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Op
from theanine.tensor.basic import as_tensor_variable


class Print(Op):
    """Print(message, attrs=("__str__",))(x) is x; computing it prints `message` and, for each
    attribute name in `attrs`, that attribute of the value (called if it is a method). The
    gradient passes through unchanged. It runs on the host: a graph holding it is not fused
    across it."""

    __props__ = ("message", "attrs")

    def __init__(self, message: str = "", attrs: Sequence[str] = ("__str__",)):
        self.message = str(message)
        self.attrs = tuple(str(a) for a in attrs)

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        x = inputs[0]
        for attr in self.attrs:
            value = getattr(x, attr)
            print(self.message, f"{attr} =", value() if callable(value) else value)
        return (np.array(x, copy=True),)

    def pullback(self, node, inputs, outputs, output_grads):
        return [output_grads[0]]

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0]]


__all__ = ["Print"]
