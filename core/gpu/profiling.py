"""Timing a GPU program's steps for the profiler (theanine.compile.profiling).

A profiled GpuProgram runs each thunk (a kernel step, or a library step that may launch
several kernels and transfers) between two timestamps taken the best way its runtime allows:
- OpenCL, on a queue created with PROFILING_ENABLE (the OpenCL runtime makes one when
  config.profile is on as it starts): a marker before and after the step; the step's time is
  the device's end-of-marker timestamps' difference;
- CUDA: a pycuda Event recorded before and after the step, on the stream launches use;
- otherwise (an OpenCL queue without profiling): the host clock around the step after a
  synchronize on each side, so queued work is counted where it was launched.
Device events are read only when the profile is (`StepTable.settle`) or when too many wait,
so a profiled call does not wait for the device at each step.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from theanine.compile.profiling import StepTable, step_entries

MAX_PENDING = 4096  # device measurements kept before they are read


class _HostTimer:
    name = "host clock (perf_counter) after a synchronize on each side"

    def __init__(self, rt, times: list, counts: list):
        self.rt = rt
        self.times = times
        self.counts = counts

    def wrap(self, k: int, thunk: Callable) -> Callable:
        sync, times, counts = self.rt.synchronize, self.times, self.counts

        def timed(H, D):
            sync()
            t0 = perf_counter()
            thunk(H, D)
            sync()
            times[k] += perf_counter() - t0
            counts[k] += 1

        return timed

    def settle(self) -> None:
        """Nothing pends: host times are added at once."""


class _EventTimer:
    """Marks before and after each step; `elapsed(start, end)` reads two finished marks."""

    def __init__(self, mark: Callable, elapsed: Callable, name: str, times: list,
                 counts: list):
        self.mark = mark
        self.elapsed = elapsed
        self.name = name
        self.pending: list = []
        self.times = times
        self.counts = counts

    def wrap(self, k: int, thunk: Callable) -> Callable:
        mark, pending, counts = self.mark, self.pending, self.counts

        def timed(H, D):
            start = mark()
            thunk(H, D)
            pending.append((k, start, mark()))
            counts[k] += 1
            if len(pending) > MAX_PENDING:
                self.settle()

        return timed

    def settle(self) -> None:
        pending, self.pending[:] = list(self.pending), []
        for k, start, end in pending:
            self.times[k] += self.elapsed(start, end)


def step_timer(rt, times: list, counts: list):
    """The best timer `rt` offers (see the module's docstring), adding into `times` and
    `counts`."""
    cl = getattr(rt, "cl", None)
    queue = getattr(rt, "queue", None)
    if cl is not None and queue is not None:
        if queue.properties & cl.command_queue_properties.PROFILING_ENABLE:
            def opencl_elapsed(start, end) -> float:
                end.wait()
                return 1e-9 * (end.profile.end - start.profile.end)

            return _EventTimer(lambda: cl.enqueue_marker(queue), opencl_elapsed,
                               "OpenCL event timestamps (markers around each step)", times,
                               counts)
        return _HostTimer(rt, times, counts)
    cuda = getattr(rt, "cuda", None)
    if cuda is not None:
        def cuda_mark():
            rt.activate()
            return cuda.Event().record()

        def cuda_elapsed(start, end) -> float:
            end.synchronize()
            return 1e-3 * end.time_since(start)

        return _EventTimer(cuda_mark, cuda_elapsed, "CUDA events around each step", times,
                           counts)
    return _HostTimer(rt, times, counts)


def profile_program(program, profile, backend_name: str) -> None:
    """Time each of `program`'s thunks into a StepTable added to `profile`."""
    n = len(program.thunks)
    times, counts = [0.0] * n, [0] * n
    timer = step_timer(program.rt, times, counts)
    program.thunks = [timer.wrap(k, t) for k, t in enumerate(program.thunks)]
    profile.add_table(StepTable(backend_name, step_entries(program.steps), times, counts,
                                timer.name, timer.settle))
