"""Workload (5): cold and warm compile time of workload (4)'s training function, each in a new
process. Cold = a fresh, empty $THEANINE_CACHE_DIR; warm = a new process on that filled cache.
Targets: cold under 1.5 s, warm under 0.1 s (the time of theanine.function(...) only).

The probes share a Python bytecode cache (PYTHONPYCACHEPREFIX, filled by one untimed import
first), as an installed package has its .pyc files: without it, an environment with
PYTHONDONTWRITEBYTECODE=1 would recompile every module in every probe, and the backends that
function() imports on first use would count as compile time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Target, fmt_time

PROBE = Path(__file__).resolve().parent / "compile_probe.py"
DTYPE = "float64"


def _env(cache_dir: Path, pycache: Path) -> dict[str, str]:
    env = dict(os.environ, THEANINE_CACHE_DIR=str(cache_dir), PYTHONPYCACHEPREFIX=str(pycache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _probe(cache_dir: Path, pycache: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, str(PROBE), DTYPE], env=_env(cache_dir, pycache),
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"compile probe failed (exit {done.returncode}):\n{done.stderr}")
    times = json.loads(done.stdout.strip().splitlines()[-1])
    times["process"] = wall
    return times


def _prime_bytecode(root: Path, pycache: Path) -> None:
    """Import everything the probe imports once, untimed, to fill the bytecode cache."""
    code = ("import theanine, mlp_bench; from theanine.backend import backends; "
            "[b.available() for b in backends().values()]")
    subprocess.run([sys.executable, "-c", code], env=_env(root / "prime", pycache),
                   cwd=PROBE.parent, check=True, capture_output=True)


def compile_times(rounds: int) -> dict[str, dict[str, float]]:
    """Best (by compile time) of `rounds` cold probes, each on its own new cache directory, and
    of `rounds` warm probes on the last of those directories."""
    cold, warm = [], []
    root = Path(tempfile.mkdtemp(prefix="theanine-bench-cache-"))
    pycache = root / "pycache"
    try:
        _prime_bytecode(root, pycache)
        for i in range(rounds):
            cold.append(_probe(root / f"cold{i}", pycache))
        for _ in range(rounds):
            warm.append(_probe(root / f"cold{rounds - 1}", pycache))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"cold": min(cold, key=lambda t: t["compile"]),
            "warm": min(warm, key=lambda t: t["compile"])}


def print_times(times: dict[str, dict[str, float]]) -> None:
    """One line per kind: theanine.function time, then the other phases and the process time."""
    print(f"\n== (5) compile time of (4) ({DTYPE}), new process each (best of the rounds)")
    print(f"{'':<6}{'function()':>12}{'import':>10}{'build':>10}{'1st call':>10}"
          f"{'process':>10}")
    for kind, t in times.items():
        print(f"{kind:<6}{fmt_time(t['compile']):>12}{fmt_time(t['import']):>10}"
              f"{fmt_time(t['build']):>10}{fmt_time(t['first_call']):>10}"
              f"{fmt_time(t['process']):>10}")


def targets(times: dict[str, dict[str, float]]) -> list[Target]:
    """Cold compile under 1.5 s, warm under 0.1 s."""
    cold, warm = times["cold"]["compile"], times["warm"]["compile"]
    return [Target("(5) cold compile < 1.5 s", cold < 1.5, fmt_time(cold)),
            Target("(5) warm compile < 0.1 s", warm < 0.1, fmt_time(warm))]
