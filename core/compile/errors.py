"""Run-time errors of a compiled function told in the user's terms: the node that failed, its
operands named after the function's inputs they come from ("input 1 ('b')", never `mul.0`),
the shapes of the inputs involved, and the user's line that built the node."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Constant, Variable, format_trace, located
from theanine.graph.traversal import graph_inputs


def input_labels(inputs: Sequence[Variable], n_explicit: int,
                 names: Sequence[str | None]) -> dict[Variable, str]:
    """How messages name each graph input: the function's explicit inputs by position and
    name (`input 0 ('x')`, `input 1`), then its shared variables."""
    labels = {}
    for k, v in enumerate(inputs):
        if k < n_explicit:
            labels[v] = f"input {k}" + (f" ({names[k]!r})" if names[k] else "")
        else:
            labels[v] = "shared variable" + (f" {v.name!r}" if v.name else f" of type {v.type}")
    return labels


def _operand(v: Variable, value, labels: dict[Variable, str]) -> str:
    shape = f"(shape {np.shape(value)}, dtype {np.asarray(value).dtype})"
    if v in labels:
        return f"{labels[v]} {shape}"
    if isinstance(v, Constant):
        return f"a constant {shape}"
    found = set(graph_inputs([v]))
    sources = [label for u, label in labels.items() if u in found]
    origin = f"computed from {' and '.join(sources)}" if sources else "computed from constants"
    return f"a value {origin} {shape}"


def located_error(exc: Exception, node, args: list, labels: dict[Variable, str],
                  values: dict[Variable, object]) -> Exception | None:
    """`exc` re-made with the failing node (its operands named after the inputs they come
    from), the inputs involved with their shapes, and the user's line that built the node;
    None if the exception type cannot be rebuilt from a message. The result is marked
    `located`, so an enclosing function raises it as it is."""
    operands = ", ".join(_operand(v, a, labels) for v, a in zip(node.inputs, args))
    sources = set(graph_inputs(node.inputs))
    involved = [u for u in labels if u in sources]
    lines = [f"{exc}", f"Apply node that caused the error: {node.op}({operands})"]
    if involved:
        lines.append("Inputs involved: " + ", ".join(
            f"{labels[u]} with shape {np.shape(values[u])}" for u in involved))
    lines.append(f"The node was built at:\n{format_trace(node.trace)}")
    new = _remade(exc, "\n".join(lines))
    return located(new) if new is not None else None


def unlocated_error(exc: Exception, labels: dict[Variable, str],
                    values: dict[Variable, object]) -> Exception | None:
    """`exc` (raised by a backend where the reference does not fail) with the shapes of the
    call's inputs appended, so even a backend's own message says what it was given."""
    given = ", ".join(f"{label} with shape {np.shape(values[v])}" for v, label in labels.items())
    if not given:
        return None
    return _remade(exc, f"{exc}\nThe call's inputs: {given}")


def _remade(exc: Exception, msg: str) -> Exception | None:
    try:
        new = type(exc)(msg)
    except Exception:
        return None
    return new if str(new) == msg else None
