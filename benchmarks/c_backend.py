"""Benchmarks of the C backend against NumPy, numexpr, PyTensor and a hand-written OpenMP loop,
as times and ratios measured in the same run, with the issue's targets marked PASS or MISS.

    python benchmarks/c_backend.py [--quick] [--threads N] [--only 1,2,3,4,5]

Workloads: (1) a**2+b**2+2*a*b, (2) exp(2*x*y+y) with a broadcast row, (3) sums over every
axis set of a cube (contiguous and transposed) and a row softmax, (4) a 784-500-10 MLP training
step, (5) cold and warm compile time of (4) in new processes. Every result is checked against
NumPy before it is timed. Ratios are competitor time / theanine-c time (above 1: theanine-c is
faster). OpenMP and OpenBLAS use every core (OMP_NUM_THREADS is removed from the environment);
numexpr runs 2 threads. --threads N pins all of them to N threads instead (useful on a busy
machine, where 2-thread timings are dominated by descheduled threads). --quick uses small sizes
for a smoke run; its PASS/MISS lines are indicative only.
"""

from __future__ import annotations

import threads  # isort: skip (sets OpenMP's threads before anything loads it)
import argparse
import os
import sys
import time

import compile_bench
import elemwise_bench
import mlp_bench
import numpy as np
import reduce_bench
import rivals
from harness import Row, Settings, Target, print_table, print_targets

import theanine
from theanine.cache import cache_root

FULL = {"poly": [1_000, 100_000, 1_000_000, 10_000_000],
        "exp": [(200, 500), (4096, 4096)], "cube": 256, "softmax": 4096, "compile_rounds": 2}
QUICK = {"poly": [1_000, 100_000], "exp": [(200, 500)], "cube": 64, "softmax": 512,
         "compile_rounds": 1}


def _progress(message: str) -> None:
    sys.stdout.flush()
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(sizes: dict, settings: Settings, only: set[str]) -> tuple[list[Row], list[Target]]:
    """Run the selected workloads; return the table rows and the targets."""
    rows: list[Row] = []
    targets: list[Target] = []
    if "1" in only:
        _progress("(1) a**2+b**2+2*a*b")
        poly = elemwise_bench.polynomial(sizes["poly"], settings)
        rows += poly
        targets += elemwise_bench.targets(poly)
    if "2" in only:
        _progress("(2) exp(2*x*y+y)")
        rows += elemwise_bench.exp_broadcast(sizes["exp"], settings)
    if "3" in only:
        _progress("(3) sums over axes, softmax")
        reduced = reduce_bench.axis_sums(sizes["cube"], settings)
        reduced.append(reduce_bench.softmax_rows(sizes["softmax"], settings))
        rows += reduced
        targets += reduce_bench.targets(reduced)
    if "4" in only:
        _progress("(4) MLP training step")
        mlp = [mlp_bench.training_step(dtype, settings) for dtype in ("float32", "float64")]
        rows += mlp
        targets += mlp_bench.targets(mlp)
    return rows, targets


def main(argv=None) -> None:
    """Parse the options, run the workloads, print the table, compile times and targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short timings")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS and numexpr threads (default: unset, all cores)")
    parser.add_argument("--only", default="1,2,3,4,5",
                        help="comma-separated workload numbers to run (default: all)")
    args = parser.parse_args(argv)
    threads.pin(args.threads, __file__, argv)
    if args.threads is not None:
        rivals.NUMEXPR_THREADS = args.threads
    only = set(args.only.split(","))
    sizes = QUICK if args.quick else FULL
    settings = Settings(budget=0.1, min_rounds=3) if args.quick else Settings()
    started = time.perf_counter()

    print(f"theanine {theanine.__version__} backend c | numpy {np.__version__} | "
          f"{os.cpu_count()} cores | cache {cache_root()}")
    print(f"{threads.describe(args.threads)}; numexpr {rivals.NUMEXPR_THREADS} threads; "
          f"best of interleaved ~{settings.round_time * 1e3:g}ms rounds (>= "
          f"{settings.min_rounds}, ~{settings.budget}s per column) after a warm-up"
          + (" | QUICK: small sizes, targets indicative only" if args.quick else ""))
    rivals.numexpr_module()
    rivals.pytensor_module()

    rows, targets = run(sizes, settings, only)
    times = None
    if "5" in only:
        _progress("(5) cold and warm compile in new processes")
        times = compile_bench.compile_times(sizes["compile_rounds"])
        targets += compile_bench.targets(times)

    if rows:
        print_table(rows)
    if times is not None:
        compile_bench.print_times(times)
    if "4" in only:
        print("\n== where the MLP step runs (f._run.steps)")
        for dtype in ("float32", "float64"):
            print(mlp_bench.step_summary(dtype))
    if targets:
        print_targets(targets)
    rivals.print_notes(started)


if __name__ == "__main__":
    main()
