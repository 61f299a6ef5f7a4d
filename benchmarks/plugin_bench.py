"""The example plugins at work: the clang backend (examples/plugins/theanine-clang) on
`a**2+b**2+2*a*b`, and the erf plugin's gelu written out (rewritten to one fused gelu) on the C
and clang backends, each against the NumPy reference backend and plain NumPy, measured in one
run. Ratios are other / theanine-c (above 1: theanine-c is faster).

    pip install -e examples/plugins/theanine-erf "examples/plugins/theanine-clang[zig]"
    flock /tmp/cpu.lock python benchmarks/plugin_bench.py
"""

from __future__ import annotations

import math
import sys

import numpy as np
from harness import Settings, best_times, fmt_time

import theanine as th
import theanine.tensor as T
from theanine.backend import backends

SIZES = (1_000, 100_000, 1_000_000)


def _row(name: str, times: dict[str, float]) -> str:
    base = times["c"]
    cells = [f"c {fmt_time(base)}"] + [f"{k} {fmt_time(t)} (x{t / base:.2f})"
                                       for k, t in times.items() if k != "c"]
    return f"{name:<34}" + "   ".join(cells)


def polynomial(settings: Settings) -> None:
    for dtype in ("float32", "float64"):
        a, b = (T.tensor(dtype, shape=(None,), name=n) for n in "ab")
        expr = a ** 2 + b ** 2 + 2 * a * b
        fns = {k: th.function([a, b], expr, backend=k, trust_input=True)
               for k in ("c", "clang", "numpy")}
        rng = np.random.default_rng(0)
        for n in SIZES:
            av, bv = (rng.normal(size=n).astype(dtype) for _ in range(2))
            want = av ** 2 + bv ** 2 + 2 * av * bv
            for k, f in fns.items():
                np.testing.assert_allclose(f(av, bv), want, rtol=1e-5, err_msg=k)
            calls = {k: (lambda f=f, av=av, bv=bv: f(av, bv)) for k, f in fns.items()}
            calls["plain numpy"] = lambda av=av, bv=bv: av ** 2 + bv ** 2 + 2 * av * bv
            print(_row(f"a**2+b**2+2*a*b {dtype} N={n:.0e}", best_times(calls, settings)))


def gelu(settings: Settings) -> None:
    for dtype in ("float32", "float64"):
        x = T.tensor(dtype, shape=(None,), name="x")
        written_out = 0.5 * x * (1 + T.erf(x / math.sqrt(2)))
        fns = {k: th.function([x], written_out, backend=k, trust_input=True)
               for k in ("c", "clang", "numpy")}
        rng = np.random.default_rng(1)
        for n in SIZES[:2]:
            xv = rng.normal(size=n).astype(dtype)
            want = fns["numpy"](xv)
            for k, f in fns.items():
                np.testing.assert_allclose(f(xv), want, rtol=1e-5, atol=1e-6, err_msg=k)
            calls = {k: (lambda f=f, xv=xv: f(xv)) for k, f in fns.items()}
            print(_row(f"gelu written out {dtype} N={n:.0e}", best_times(calls, settings)))


def main() -> int:
    if "clang" not in backends() or not hasattr(T, "gelu"):
        print("install the example plugins first (see this file's docstring)", file=sys.stderr)
        return 1
    ok, why = backends()["clang"].available()
    if not ok:
        print(f"the clang backend is not available: {why}", file=sys.stderr)
        return 1
    settings = Settings(budget=0.3)
    print("c: theanine's C backend (OpenMP); clang: the example plugin backend (one thread); "
          "numpy: theanine's reference backend; (xR) = time / c's time")
    polynomial(settings)
    gelu(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
