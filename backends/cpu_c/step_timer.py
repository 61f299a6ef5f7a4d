"""The C program's step timer, for profiled functions (theanine.compile.profiling).

A profiled program is a different program: th_run times each of its steps (a kernel or an
entry's call) with clock_gettime(CLOCK_MONOTONIC) and adds the seconds and a run into two
arrays that `state[5]` holds, which the profile reads when it is printed. An unprofiled
program has none of this code. Only step numbers are spliced into the source.
"""

from __future__ import annotations

import numpy as np

STEP_TIMER_C = """#include <time.h>
static double th_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static void th_step_timed(PyObject *state, int k, double t0)
{
    PyObject *p = PyTuple_GET_ITEM(state, 5);
    ((double *)PyArray_DATA((PyArrayObject *)PyTuple_GET_ITEM(p, 0)))[k] += th_now() - t0;
    ((int64_t *)PyArray_DATA((PyArrayObject *)PyTuple_GET_ITEM(p, 1)))[k] += 1;
}"""

TIMER_NAME = "C clock_gettime(CLOCK_MONOTONIC) around each step"


def time_step(lines: list[str], start: int, k: int) -> None:
    """Wrap the lines of step `k` (lines[start:]) in a block timing them. (A step that fails
    jumps out of the block; it is not counted.)"""
    lines.insert(start, "    { double th_t0 = th_now();")
    lines.append(f"    th_step_timed(state, {k}, th_t0); }}")


def timer_arrays(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The (seconds, runs) arrays th_step_timed adds into, one element per step."""
    return np.zeros(max(n_steps, 1)), np.zeros(max(n_steps, 1), dtype=np.int64)
