"""Thread settings of the CPU benchmarks, applied before NumPy, OpenBLAS or OpenMP load: every
core by default (OMP_NUM_THREADS is removed from the environment), or N threads when a script's
--threads N re-runs it with THREADS_VAR set (OpenMP reads OMP_NUM_THREADS once, when it loads).
"""

from __future__ import annotations

import os
import sys

THREADS_VAR = "THEANINE_BENCH_THREADS"  # set by --threads, which re-runs the script with it
OMP_SETTING = os.environ.pop("OMP_NUM_THREADS", None)
if os.environ.get(THREADS_VAR):
    os.environ["OMP_NUM_THREADS"] = os.environ[THREADS_VAR]


def pin(threads: int | None, script: str, argv: list[str] | None) -> None:
    """Re-run `script` with OMP_NUM_THREADS=`threads` unless this process already runs so (or
    threads is None): the process is replaced, so this returns only when nothing is to do."""
    if threads is None or os.environ.get(THREADS_VAR) == str(threads):
        return
    env = dict(os.environ, **{THREADS_VAR: str(threads)})
    args = sys.argv[1:] if argv is None else list(argv)
    os.execve(sys.executable, [sys.executable, os.path.abspath(script), *args], env)


def describe(threads: int | None) -> str:
    """How OpenMP's threads are set in this run, for the benchmark's header."""
    omp = (f"={threads} (--threads)" if threads is not None else
           f"was {OMP_SETTING}, removed (all cores)" if OMP_SETTING is not None
           else "unset (all cores)")
    return f"OMP_NUM_THREADS {omp}; OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}"
