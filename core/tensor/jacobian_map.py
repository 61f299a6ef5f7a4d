"""The op behind `jacobian`: one row of the Jacobian per element of the expression, computed
by looping a gradient graph over the element index.

Its `perform` (the NumPy reference) walks the inner graph node by node; backends run it by
compiling the inner graph for themselves (theanine.compile.jacobian_map), so building a
Jacobian never needs the compiler."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Constant, Op, SharedValue
from theanine.graph.traversal import graph_inputs, toposort
from theanine.tensor.type import TensorType


class JacobianMap(Op):
    """jacobian_map(expression, wrt, *free): d expression[idx] / d wrt for every idx.

    The inner graph maps (element index, *free) to the gradient of that element, run once per
    element. Shared variables stay implicit inputs of the inner graph, read when the outer
    function runs.
    """

    def __init__(self, index, free, inner_grad):
        self.index = index
        self.free = list(free)
        self.inner_grad = inner_grad
        self.compiled: dict = {}  # Backend -> the inner function compiled for it

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __str__(self):
        return "JacobianMap"

    def __getstate__(self):
        # the inner function is compiled again when a loaded op first runs
        return {**self.__dict__, "compiled": {}}

    def make_node(self, expression, wrt, *free):
        g = self.inner_grad
        out = TensorType(g.dtype, expression.type.shape + wrt.type.shape)()
        return Apply(self, [expression, wrt, *free], [out])

    def perform(self, node, inputs):
        expression, wrt, *free = inputs
        given = {self.index, *self.free}
        # the inner graph's other free variables are shared variables: read their values now
        env = {v: v.get_value(borrow=True) for v in graph_inputs([self.inner_grad])
               if v not in given and not isinstance(v, Constant)}
        env.update(zip(self.free, free))
        nodes = toposort([self.inner_grad])

        def element(k: int):
            values = {**env, self.index: np.int64(k)}
            for n in nodes:
                args = [a.data if isinstance(a, Constant) else values[a] for a in n.inputs]
                values.update(zip(n.outputs, n.op.perform(n, args)))
            return values[self.inner_grad]

        return (self.rows(expression, wrt, node, element),)

    @staticmethod
    def rows(expression, wrt, node, element) -> np.ndarray:
        """The Jacobian from `element(k)`, the gradient of element k of the expression."""
        expression, wrt = np.asarray(expression), np.asarray(wrt)
        out = np.empty((expression.size,) + wrt.shape, dtype=node.outputs[0].type.numpy_dtype)
        for k in range(expression.size):
            out[k] = element(k)
        return out.reshape(expression.shape + wrt.shape)

    def pullback(self, node, inputs, outputs, output_grads):
        raise NotImplementedError("the gradient of a jacobian (third derivatives) is not "
                                  "supported; build the second derivative with grad twice")

    def infer_shape(self, node, input_shapes):
        return [tuple(input_shapes[0]) + tuple(input_shapes[1])]


def jacobian_map(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Jacobian of `expression` with respect to `wrt` (shape expression.shape + wrt.shape)."""
    from theanine.gradient import grad
    from theanine.tensor.basic import lscalar

    index = lscalar("jacobian_index")
    flat = expression.flatten() if expression.ndim != 1 else expression
    g = grad(flat[index], wrt, consider_constant=consider_constant,
             disconnected_inputs=disconnected_inputs)
    free = [v for v in graph_inputs([g])
            if v is not index and not isinstance(v, (Constant, SharedValue))]
    return JacobianMap(index, free, g)(expression, wrt, *free)
