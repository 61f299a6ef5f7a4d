"""DebugMode: run every node through the NumPy reference and check what it produces.

Checks, on every call: each node's output has the declared dtype, rank and static shape and
contains no NaN/Inf (config.debug_check_nan); the backend's outputs equal the reference's; the
rewritten graph's outputs equal the un-rewritten graph's, except where the un-rewritten graph
overflows to NaN/Inf and the rewritten one (stabilized) is finite. Each failure names the node
and the user's source line that built it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from theanine.compile.mode import Mode
from theanine.config import config
from theanine.graph.basic import Apply, Constant, format_trace, located
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.type import TensorType


class DebugMode(Mode):
    """Theano's DebugMode class: the 'DebugMode' mode (every node checked against the
    reference). Theano's check_* options are accepted; theanine always runs every check."""

    def __init__(self, optimizer="default", check_c_code: bool = True,
                 check_py_code: bool = True, check_isfinite: bool = True,
                 check_preallocated_output=(), require_matching_strides: int = 0,
                 linker: str | None = None):
        super().__init__(debug=True, name="DebugMode", optimizer=optimizer, linker=linker)


class DebugModeError(FloatingPointError):
    """A check of DebugMode failed; the message names the node and the user's line."""


def _node_error(node: Apply, what: str) -> DebugModeError:
    inputs = ", ".join(str(v) for v in node.inputs)
    return located(DebugModeError(f"DebugMode: {what} in the output of {node.op}({inputs}).\n"
                                  f"The node was built at:\n{format_trace(node.trace)}"))


def _check_output(node: Apply, j: int, value) -> None:
    t = node.outputs[j].type
    if not isinstance(t, TensorType):  # (a sparse matrix: its type's filter must keep it)
        try:
            kept = t.filter(value, name="the value") is value
        except TypeError as e:
            raise _node_error(node, str(e)) from None
        if not kept:
            raise _node_error(node, f"a value of dtype {value.dtype} where the type is {t}")
        return
    if not isinstance(value, np.ndarray):
        raise _node_error(node, f"a {type(value).__name__} instead of an ndarray")
    if value.dtype != t.numpy_dtype or value.ndim != t.ndim or not t.shape_matches(value.shape):
        raise _node_error(node, f"a value of dtype {value.dtype} and shape {value.shape} where "
                                f"the type is {t}")
    if config.debug_check_nan and value.dtype.kind in "fc":
        if np.isnan(value).any():
            raise _node_error(node, "NaN")
        if np.isinf(value).any():
            raise _node_error(node, "Inf")


def _evaluate(fgraph: FunctionGraph, values, check: bool) -> list:
    env = dict(zip(fgraph.inputs, values))
    for node in fgraph.nodes:
        args = [v.data if isinstance(v, Constant) else env[v] for v in node.inputs]
        outs = node.op.perform(node, args)
        for j, (o, val) in enumerate(zip(node.outputs, outs)):
            if check:
                _check_output(node, j, val)
            env[o] = val
    return [v.data if isinstance(v, Constant) else env[v] for v in fgraph.outputs]


def _tolerance(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind not in "fc":
        return 0.0, 0.0
    if dtype.itemsize <= 2:
        return 1e-2, 1e-2
    if dtype in (np.float32, np.complex64):
        return 1e-4, 1e-5
    return config.debug_rtol, 1e-8


def _compare(a, b, what: str, index: int, fgraph: FunctionGraph,
             stabilized_ok: bool = False) -> None:
    """Raise unless `a` equals `b` within the dtype's tolerance. With `stabilized_ok`, places
    where `b` (the un-rewritten graph) is NaN/Inf and `a` is finite are accepted: a stabilizing
    rewrite (log(sigmoid(x)) -> -softplus(-x)) computes what the naive formula overflows on."""
    a, b = (np.asarray(v.toarray() if hasattr(v, "tocsr") else v) for v in (a, b))  # (sparse)
    rtol, atol = _tolerance(b.dtype)
    if stabilized_ok and a.shape == b.shape and b.dtype.kind in "fc":
        rescued = ~np.isfinite(b) & np.isfinite(a)
        if rescued.any():
            a, b = a[~rescued], b[~rescued]
    if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
        out = fgraph.outputs[index]
        where = format_trace(out.owner.trace) if out.owner is not None else "  (an input)"
        raise located(DebugModeError(f"DebugMode: output {index} differs between {what}:\n"
                                     f"{a!r}\nvs\n{b!r}\nThe output was built at:\n{where}"))


def _host(value):
    return value if isinstance(value, np.ndarray) or not hasattr(value, "get") else value.get()


def debug_executor(fgraph: FunctionGraph, original: FunctionGraph, run: Callable) -> Callable:
    """Wrap a backend executor with the DebugMode checks."""

    def checked(*values):
        host_values = [_host(v) for v in values]  # device backends pass device arrays
        reference = _evaluate(fgraph, host_values, check=True)
        produced = run(*values)
        for k, (a, b) in enumerate(zip(map(_host, produced), reference)):
            _compare(a, b, "the backend and the NumPy reference", k, fgraph)
        with np.errstate(all="ignore"):  # the overflows stabilization removed are not news
            unrewritten = _evaluate(original, host_values, check=False)
        for k, (a, b) in enumerate(zip(reference, unrewritten)):
            _compare(a, b, "the rewritten and the original graph", k, fgraph,
                     stabilized_ok=True)
        return produced

    return checked
