"""What the C backend's loops have room for, and the checks that keep programs inside it.

runtime.h describes a kernel's loop space in fixed-size arrays: MAX_DIMS axes and MAX_OPERANDS
arrays (outputs and inputs). Fusion stops growing a kernel at MAX_OPERANDS, and a graph with a
value of higher rank than MAX_DIMS is refused when it is compiled. The generated program then
checks each value it is called with (boundary.h), so values a caller passed unconverted
(`trust_input=True`) raise a TypeError instead of being read as something they are not.
"""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Variable, format_trace, located
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.type import TensorType

MAX_DIMS = 64  # NumPy 2's most axes of an array (NPY_MAXDIMS)
MAX_OPERANDS = 64  # arrays one fused kernel reads and writes


def c_defines() -> str:
    """The limits as the C macros runtime.h sizes its arrays with."""
    return f"#define TH_MAXDIMS {MAX_DIMS}\n#define TH_MAXOPS {MAX_OPERANDS}\n"


def check_ranks(fgraph: FunctionGraph) -> None:
    """Raise ValueError naming the first value of `fgraph` with more than MAX_DIMS axes."""
    seen = set()
    for v in [*fgraph.inputs, *(o for n in fgraph.nodes for o in (*n.inputs, *n.outputs))]:
        if v in seen:
            continue
        seen.add(v)
        if v.ndim > MAX_DIMS:
            raise located(ValueError(
                f"backend 'c' handles arrays of at most {MAX_DIMS} dimensions, but "
                f"{_describe(v)} has {v.ndim}. It was built at:\n{format_trace(v.trace)}"))


def _describe(v: Variable) -> str:
    if v.owner is None:
        return f"input {v.name!r}" if v.name else "an input"
    return f"the value {v} computed by {v.owner.op}"


class BadValue(TypeError):
    """Raised by the generated program with the position of a value it cannot read."""


def bad_value_error(fgraph: FunctionGraph, k: int, value: object) -> TypeError:
    """The error for input `k` of `fgraph` being `value`, which the program refused."""
    v = fgraph.inputs[k]
    label = f"input {k}" + (f" ({v.name!r})" if v.name else "")
    if isinstance(value, np.ndarray):
        order = "" if value.dtype.isnative else " in non-native byte order"
        got = f"an array of dtype {value.dtype}{order} with {value.ndim} dimension(s)"
    else:
        got = f"a {type(value).__name__}"
    error = TypeError(f"{label} must be a NumPy array of dtype {v.dtype} in native byte "
                      f"order with {v.ndim} dimension(s), got {got}. Inputs are passed unconverted "
                      f"when the function was compiled with trust_input=True; leave it off to "
                      f"have them converted and checked.\nThe input was built at:\n"
                      f"{format_trace(v.trace)}")
    return located(error)


def input_checks(fgraph: FunctionGraph, npy_types: dict[str, str]) -> list[str]:
    """C lines (inside th_run) that check every value the program is called with."""
    n = len(fgraph.inputs)
    # -1: a value that is not an array (a theanine.sparse matrix), passed as it is
    types = ", ".join(npy_types[v.dtype] if isinstance(v.type, TensorType) else "-1"
                      for v in fgraph.inputs) or "0"
    ndims = ", ".join(str(v.ndim) for v in fgraph.inputs) or "0"
    return [f"    {{ static const int types[] = {{{types}}}, ndims[] = {{{ndims}}};",
            f"      if (th_check_values(inputs, {n}, types, ndims, PyTuple_GET_ITEM(state, 3)) "
            "< 0) return NULL; }"]


class BadResult(TypeError):
    """Raised by the generated program with (library call, output, value) when an op's
    implementation returned a value that is not of its output's declared dtype and rank."""


def bad_result_error(node, out: int, value: object) -> TypeError:
    """The error for output `out` of `node` being `value`, not of its declared type."""
    v = node.outputs[out]
    got = (f"an array of dtype {value.dtype} with {value.ndim} dimension(s)"
           if isinstance(value, np.ndarray) else f"a {type(value).__name__}")
    error = TypeError(f"{node.op} returned {got} for output {out}, which the graph declares "
                      f"as {v.type} (dtype {v.dtype}, {v.ndim} dimension(s)); backend 'c' "
                      f"reads it as declared, so the op's perform must return that. The node "
                      f"was built at:\n{format_trace(node.trace)}")
    return located(error)
