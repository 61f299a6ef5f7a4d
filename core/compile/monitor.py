"""Theano's MonitorMode and NanGuardMode: run a compiled graph node by node through the NumPy
reference, calling the user's functions around each node.

`pre_func(i, node, fn)` runs before node i and `post_func(i, node, fn)` after it; `fn.inputs`
and `fn.outputs` hold one-element lists (Theano's storage cells) with the values. A function
compiled in these modes runs on the reference backend whatever the device, since the hooks
read host arrays. NanGuardMode raises as soon as a node's input or output holds NaN, Inf or a
value above 1e10 in magnitude (each check can be turned off), naming the node and the user's
line that built it."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from theanine.compile.mode import Mode
from theanine.graph.basic import Apply, Constant, format_trace, located
from theanine.graph.fgraph import FunctionGraph

BIG = 1e10  # NanGuardMode's "big value" threshold, as Theano's


class MonitorMode(Mode):
    """A mode calling `pre_func(i, node, fn)` / `post_func(i, node, fn)` around every node."""

    def __init__(self, pre_func: Callable | None = None, post_func: Callable | None = None,
                 optimizer="default", linker: str | None = None, name: str = "MonitorMode"):
        super().__init__(optimizer=optimizer, linker=linker, name=name)
        self.pre_func, self.post_func = pre_func, post_func

    def _derived(self, query, how: str, tags: tuple[str, ...]) -> Mode:
        mode = type(self).__new__(type(self))
        mode.__dict__.update(self.__dict__)
        mode.query = query
        mode.name = f"{self.name}.{how}({', '.join(map(repr, tags))})"
        return mode

    def executor(self, fgraph: FunctionGraph) -> Callable:
        """The graph's run function: the nodes in order, each through its reference, with the
        hooks around it."""
        pre, post = self.pre_func, self.post_func

        def run(*values):
            env = dict(zip(fgraph.inputs, values))
            for i, node in enumerate(fgraph.nodes):
                fn = SimpleNamespace(
                    inputs=[[v.data if isinstance(v, Constant) else env[v]]
                            for v in node.inputs],
                    outputs=[[None] for _ in node.outputs])
                if pre is not None:
                    pre(i, node, fn)
                outs = node.op.perform(node, [cell[0] for cell in fn.inputs])
                for cell, value in zip(fn.outputs, outs):
                    cell[0] = value
                if post is not None:
                    post(i, node, fn)
                env.update(zip(node.outputs, (cell[0] for cell in fn.outputs)))
            return [v.data if isinstance(v, Constant) else env[v] for v in fgraph.outputs]

        return run


class NanGuardError(AssertionError):
    """NanGuardMode found NaN, Inf or a big value; the message names the node and the line."""


class NanGuardMode(MonitorMode):
    """MonitorMode that raises NanGuardError when a node reads or writes NaN (`nan_is_error`),
    Inf (`inf_is_error`) or a magnitude above 1e10 (`big_is_error`)."""

    def __init__(self, nan_is_error: bool = True, inf_is_error: bool = True,
                 big_is_error: bool = True, optimizer="default", linker: str | None = None):
        self.checks = (nan_is_error, inf_is_error, big_is_error)
        super().__init__(self._guard("an input", "inputs"), self._guard("an output", "outputs"),
                         optimizer, linker, name="NanGuardMode")

    def _guard(self, what: str, cells: str) -> Callable:
        def guard(i: int, node: Apply, fn) -> None:
            for k, (cell,) in enumerate(getattr(fn, cells)):
                problem = self._problem(cell)
                if problem is not None:
                    raise located(NanGuardError(
                        f"NanGuardMode: {problem} in {what} ({cells[:-1]} {k}) of node {i}, "
                        f"{node.op}({', '.join(map(str, node.inputs))}).\nThe node was built "
                        f"at:\n{format_trace(node.trace)}"))
        return guard

    def _problem(self, value) -> str | None:
        a = np.asarray(value)
        if a.dtype.kind not in "fc" or a.size == 0:
            return None
        nan, inf, big = self.checks
        if nan and np.isnan(a).any():
            return "NaN"
        if inf and np.isinf(a).any():
            return "Inf"
        if big and (np.abs(a[np.isfinite(a)]) > BIG).any():
            return f"a value above {BIG:g} in magnitude"
        return None




def detect_nan(i: int, node: Apply, fn) -> None:
    """A MonitorMode post_func printing the node, its inputs and outputs when an output holds
    NaN (Theano's theano.compile.monitormode.detect_nan)."""
    from theanine.printing import debugprint

    for output in fn.outputs:
        value = np.asarray(output[0])
        if value.dtype.kind in "fc" and np.isnan(value).any():
            print("*** NaN detected ***")
            debugprint(node)
            print(f"Inputs : {[cell[0] for cell in fn.inputs]}")
            print(f"Outputs: {[cell[0] for cell in fn.outputs]}")
            break


__all__ = ["MonitorMode", "NanGuardMode", "NanGuardError", "detect_nan"]
