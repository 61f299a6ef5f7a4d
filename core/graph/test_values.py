"""Test values (Theano's `config.compute_test_value`): with it on, every node computes its
outputs' `tag.test_value` from its inputs' as the graph is built, so a shape error surfaces at
the line that builds the bad node instead of when the function runs.

Inputs' values come from `tag.test_value`, a constant's data or a shared variable's value.
An input without one is an error ('raise', 'pdb'), a warning ('warn') or skipped ('ignore').
"""

from __future__ import annotations

import warnings

import numpy as np

from theanine.graph.basic import Apply, Constant, SharedValue, Variable, format_trace, located

_MISSING = object()


class TestValueError(ValueError):
    """An input of a new node has no test value and config.compute_test_value is 'raise'."""

    __test__ = False  # (not a pytest test class despite the name)


def test_value(v: Variable):
    """v's test value: its tag's, a constant's data or a shared variable's value; _MISSING if
    it has none."""
    if "test_value" in v.tag:
        value = v.tag["test_value"]
        dtype = getattr(v.type, "numpy_dtype", None)
        return np.asarray(value, dtype=dtype) if dtype is not None else value
    if isinstance(v, Constant):
        return v.data
    if isinstance(v, SharedValue) and hasattr(v, "get_value"):
        return v.get_value(borrow=True)
    return _MISSING


def compute_test_values(node: Apply, mode: str) -> None:
    """Set the test values of `node`'s outputs by running its reference implementation on its
    inputs' test values; `mode` says what a missing input value does."""
    values = [test_value(v) for v in node.inputs]
    for k, value in enumerate(values):
        if value is _MISSING:
            message = (f"Cannot compute the test value of {node.op}: input {k} ({node.inputs[k]}) "
                       f"has no test value (set its tag.test_value, or "
                       f"config.compute_test_value = 'off').\nThe node was built at:\n"
                       f"{format_trace(node.trace)}")
            if mode in ("raise", "pdb"):
                raise located(TestValueError(message))
            if mode == "warn":
                warnings.warn(message, stacklevel=4)
            return
    try:
        outputs = node.op.perform(node, values)
    except Exception as e:  # the user's error, located at the line that built the node
        e.args = (f"{e}\nComputing the test value of {node.op} failed (config."
                  f"compute_test_value); the node was built at:\n{format_trace(node.trace)}",
                  *e.args[1:])
        raise located(e) from None
    for out, value in zip(node.outputs, outputs):
        out.tag["test_value"] = value


__all__ = ["TestValueError", "compute_test_values", "test_value"]
