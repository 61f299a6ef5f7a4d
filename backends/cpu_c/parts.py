"""Split th_run's body into functions of a bounded size.

gcc's optimizer takes time that grows faster than linearly with the size of one function
(alias walking over its memory accesses), so a graph of a thousand steps rendered as one
function took minutes to compile. The steps are grouped into functions of about PART_LINES
lines each, which th_run calls in order: compile time then grows linearly with the graph.
"""

from __future__ import annotations

PART_LINES = 400  # lines of C per function, about 30 kernel steps


def split_into_parts(lines: list[str], cuts: list[int],
                     prefix: str = "") -> tuple[list[str], list[str]]:
    """Group `lines` (statements of th_run working on its array `v` and its `state`, jumping
    to `fail` on an error) into functions named with `prefix`, cutting only at the indices in
    `cuts` (boundaries between steps), passing on `dst` (where a loop body's outputs are
    wanted; NULL in th_run). Returns the functions' source and the lines that call
    them from th_run."""
    bounds = [0]
    for c in cuts:
        if c - bounds[-1] >= PART_LINES:
            bounds.append(c)
    if bounds[-1] != len(lines):
        bounds.append(len(lines))
    functions, calls = [], []
    for j, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        functions += [f"static __attribute__((noinline)) int th_{prefix}part{j}(PyObject **v, "
                      "PyObject *state, PyObject **dst)", "{",
                      "    PyObject *consts = PyTuple_GET_ITEM(state, 0);",
                      "    PyObject *fns = PyTuple_GET_ITEM(state, 1);",
                      "    PyObject *work = PyTuple_GET_ITEM(state, 2);",
                      "    (void)consts; (void)fns; (void)work; (void)dst;", *lines[lo:hi],
                      "    return 0;", "fail:", "    return -1;", "}"]
        calls.append(f"    if (th_{prefix}part{j}(v, state, dst) < 0) goto fail;")
    return functions, calls
