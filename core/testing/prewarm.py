"""Compile the suite's case graphs ahead of the tests in worker processes.

A backend that caches its binaries on disk by content (the C backend does) then uses every core
for the slow part, compiling, and the tests themselves find their binaries in the cache. Warming
is best effort: a graph that fails to compile here is left for its test to report.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence


def default_jobs() -> int:
    """The number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def prewarm(backend: str, items: Sequence[tuple[str, str]], jobs: int) -> int:
    """Compile the graphs of (case name, dtype) `items` for `backend` in `jobs` fresh processes;
    returns how many compiled."""
    if jobs < 2 or not items:
        return 0
    ctx = multiprocessing.get_context("spawn")  # no fork: a device context must not be shared
    with ctx.Pool(min(jobs, len(items))) as pool:
        return sum(pool.imap_unordered(_warm_one, [(backend, n, d) for n, d in items],
                                       chunksize=4))


def _warm_one(task: tuple[str, str, str]) -> int:
    from theanine.testing.cases import all_cases
    from theanine.testing.compare import PreparedComparison

    backend, name, dtype = task
    case = next((c for c in all_cases() if c.name == name), None)
    if case is None:  # a case registered by a module the worker has not imported
        return 0
    try:
        inputs, outputs = case.graph(dtype)
        PreparedComparison(backend, inputs, outputs, grad=case.grad,
                           accumulates=case.accumulates)
    except Exception:
        return 0
    return 1


__all__ = ["default_jobs", "prewarm"]
