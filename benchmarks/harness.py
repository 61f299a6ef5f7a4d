"""Timing, result rows, the comparison table and the PASS/MISS target list shared by the C-backend
benchmark modules.

A row holds the best per-call time of theanine-c and of each competitor measured in the same run;
the table prints each competitor's time with its ratio to theanine-c (competitor / theanine, so a
ratio above 1 means theanine-c is faster).
"""

from __future__ import annotations

import math
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

THEANINE = "theanine-c"
COLUMNS = ("numpy", "reference", "ref-plain", "numexpr", "pt-default", "pt-c", "c-loop", "jax",
           "torch", "c-no-mask", "c-unfused")


@dataclass
class Settings:
    """How long each timing runs: rounds of about `round_time` seconds (one call when a call is
    longer), as many as fit in `budget` seconds per timed call but at least `min_rounds`."""

    round_time: float = 0.002
    budget: float = 0.4
    min_rounds: int = 5
    max_rounds: int = 400


@dataclass
class Row:
    """Best seconds per call of theanine-c (`theanine`) and of each competitor that ran."""

    group: str
    name: str
    theanine: float
    others: dict[str, float] = field(default_factory=dict)

    def speedup(self, column: str) -> float | None:
        """How many times faster theanine-c is than `column` (None when it did not run)."""
        t = self.others.get(column)
        return None if t is None else t / self.theanine

    def fastest(self, columns) -> tuple[str, float] | None:
        """The fastest of `columns` that ran, as (name, seconds)."""
        ran = [(c, self.others[c]) for c in columns if c in self.others]
        return min(ran, key=lambda ct: ct[1]) if ran else None


@dataclass
class Target:
    """One target from the issue and whether this run met it."""

    name: str
    passed: bool
    detail: str


def best_times(calls: dict[str, Callable[[], object]], settings: Settings) -> dict[str, float]:
    """Best per-call seconds of each call over many short rounds, after a warm-up call.

    The calls take turns round by round, so each sees the same load from other processes, and
    the minimum over short rounds keeps a round in which a thread was descheduled (frequent on
    a busy 2-core machine with OpenMP) from setting the figure."""
    numbers = {}
    for col, fn in calls.items():
        fn()
        once = min(timeit.repeat(fn, number=1, repeat=3))
        numbers[col] = max(1, math.ceil(settings.round_time / max(once, 1e-9)))
    best = dict.fromkeys(calls, math.inf)
    deadline = time.perf_counter() + settings.budget * len(calls)
    rounds = 0
    while rounds < settings.max_rounds and (rounds < settings.min_rounds
                                            or time.perf_counter() < deadline):
        for col, fn in calls.items():
            t = timeit.timeit(fn, number=numbers[col]) / numbers[col]
            best[col] = min(best[col], t)
        rounds += 1
    return best


def check(name: str, got, want, rtol: float, atol: float = 0.0) -> None:
    """Fail loudly (AssertionError naming the workload and implementation) on a wrong result."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol,
                               err_msg=f"{name}: result differs from NumPy")


def compare(group: str, name: str, calls: dict[str, Callable[[], object]], want,
            settings: Settings, rtol: float, atol: float = 0.0) -> Row:
    """Check every call's result against `want` (skipped when None), then time each: a Row.
    `calls` maps a column (THEANINE or one of COLUMNS) to a no-argument callable."""
    if want is not None:
        for col, fn in calls.items():
            check(f"{name} [{col}]", fn(), want, rtol, atol)
    times = best_times(calls, settings)
    return Row(group, name, times.pop(THEANINE), times)


def tolerance(dtype: str) -> float:
    """Relative tolerance for comparing a result of `dtype` with NumPy's."""
    return 2e-4 if dtype == "float32" else 1e-9


def fmt_time(seconds: float) -> str:
    """Seconds as a short string in us / ms / s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.2f}s"


def print_table(rows: list[Row]) -> None:
    """Print the rows grouped by workload: theanine-c's time, then each competitor's time and
    its speed ratio (competitor time / theanine-c time; above 1 = theanine-c faster)."""
    columns = [c for c in COLUMNS if any(c in r.others for r in rows)]
    width = max(len(r.name) for r in rows) + 2
    print("\ncells: best time per call; xR = competitor time / theanine-c time "
          "(R > 1: theanine-c is faster)")
    head = f"{'workload':<{width}}{THEANINE:>11}" + "".join(f"{c:>19}" for c in columns)
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            print(f"\n== {group}")
            print(head)
        cells = []
        for c in columns:
            t = r.others.get(c)
            cells.append(f"{'-':>19}" if t is None
                         else f"{fmt_time(t):>11} x{t / r.theanine:>6.2f}")
        print(f"{r.name:<{width}}{fmt_time(r.theanine):>11}" + "".join(cells))


def print_targets(targets: list[Target]) -> None:
    """Print each target as PASS/MISS with the numbers behind it, then a count."""
    print("\n== targets")
    for t in targets:
        print(f"{'PASS' if t.passed else 'MISS'}  {t.name:<58} {t.detail}")
    n = sum(t.passed for t in targets)
    print(f"{n}/{len(targets)} targets met")
