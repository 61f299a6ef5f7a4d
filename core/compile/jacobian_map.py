"""How a backend runs a JacobianMap: its inner gradient graph compiled for that same backend
(once per backend, kept on the op) and called once per element of the expression."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from theanine.backend import Backend
from theanine.compile.function import function
from theanine.compile.io import In
from theanine.graph.basic import Apply
from theanine.tensor.jacobian_map import JacobianMap


def jacobian_runner(node: Apply, backend: Backend) -> Callable[..., tuple]:
    """A callable taking the node's input values (host arrays) and returning its output, with
    the inner graph compiled for `backend` (the outer function's)."""
    op: JacobianMap = node.op

    def run(expression, wrt, *free):
        fn = op.compiled.get(backend)
        if fn is None:
            # positional only: the user's variables may share names
            inputs = [In(v, name=f"input{k}") for k, v in enumerate([op.index, *op.free])]
            fn = op.compiled[backend] = function(
                inputs, op.inner_grad, on_unused_input="ignore", backend=backend)
        return (op.rows(expression, wrt, node, lambda k: fn(np.int64(k), *free)),)

    return run
