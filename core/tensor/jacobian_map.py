"""The op behind `jacobian`: one row of the Jacobian per element of the expression, computed
by looping a compiled gradient graph over the element index."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Constant, Op
from theanine.graph.traversal import graph_inputs
from theanine.tensor.type import TensorType


class JacobianMap(Op):
    """jacobian_map(expression, wrt, *free): d expression[idx] / d wrt for every idx.

    The inner graph maps (element index, *free) to the gradient of that element; it is compiled
    once (for the default device, like any function) and run once per element. Shared variables
    stay implicit inputs of the inner function, read when the outer function runs.
    """

    def __init__(self, index, free, inner_grad):
        self.index = index
        self.free = list(free)
        self.inner_grad = inner_grad
        self._fn = None

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __str__(self):
        return "JacobianMap"

    def __getstate__(self):
        # the inner function is compiled again when a loaded op first runs
        return {**self.__dict__, "_fn": None}

    def make_node(self, expression, wrt, *free):
        g = self.inner_grad
        out = TensorType(g.dtype, expression.type.shape + wrt.type.shape)()
        return Apply(self, [expression, wrt, *free], [out])

    def _compiled(self):
        if self._fn is None:
            from theanine.compile.function import function
            from theanine.compile.io import In

            # positional only: the user's variables may share names
            inputs = [In(v, name=f"input{k}") for k, v in enumerate([self.index, *self.free])]
            self._fn = function(inputs, self.inner_grad, on_unused_input="ignore")
        return self._fn

    def perform(self, node, inputs):
        expression, wrt, *free = inputs
        fn = self._compiled()
        expression, wrt = np.asarray(expression), np.asarray(wrt)
        out = np.empty((expression.size,) + wrt.shape, dtype=node.outputs[0].type.numpy_dtype)
        for k in range(expression.size):
            out[k] = fn(np.int64(k), *free)
        return (out.reshape(expression.shape + wrt.shape),)

    def pullback(self, node, inputs, outputs, output_grads):
        raise NotImplementedError("the gradient of a jacobian (third derivatives) is not "
                                  "supported; build the second derivative with grad twice")

    def infer_shape(self, node, input_shapes):
        return [tuple(input_shapes[0]) + tuple(input_shapes[1])]


def jacobian_map(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Jacobian of `expression` with respect to `wrt` (shape expression.shape + wrt.shape)."""
    from theanine.compile.shared import SharedVariable
    from theanine.gradient import grad
    from theanine.tensor.basic import lscalar

    index = lscalar("jacobian_index")
    flat = expression.flatten() if expression.ndim != 1 else expression
    g = grad(flat[index], wrt, consider_constant=consider_constant,
             disconnected_inputs=disconnected_inputs)
    free = [v for v in graph_inputs([g])
            if v is not index and not isinstance(v, (Constant, SharedVariable))]
    return JacobianMap(index, free, g)(expression, wrt, *free)
