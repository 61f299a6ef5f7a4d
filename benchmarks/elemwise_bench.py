"""Workloads (1) `a**2 + b**2 + 2*a*b` on vectors and (2) `exp(2*x*y + y)` with a broadcast
row, in float32 and float64, with their targets."""

from __future__ import annotations

import numpy as np
from harness import THEANINE, Row, Settings, Target, compare, fmt_time, tolerance
from rivals import c_loop, numexpr_module, pytensor_functions, pytensor_module

import theanine as th
import theanine.tensor as T

DTYPES = ("float32", "float64")
POLY = "(1) a**2+b**2+2*a*b"
EXP = "(2) exp(2*x*y+y), float32 and float64"


def _pt_tensor(dtype: str, ndim: int, name: str):
    import pytensor.tensor as pt

    return pt.tensor(name, dtype=dtype, shape=(None,) * ndim)


def polynomial(sizes: list[int], settings: Settings) -> list[Row]:
    """Time a**2 + b**2 + 2*a*b for each dtype and size; the C loop runs at the largest size."""
    rows = []
    ne = numexpr_module()
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        a, b = T.tensor(dtype, shape=(None,), name="a"), T.tensor(dtype, shape=(None,), name="b")
        f = th.function([a, b], a ** 2 + b ** 2 + 2 * a * b, backend="c", trust_input=True)
        pt_fns = {}
        if pytensor_module():
            pa, pb = _pt_tensor(dtype, 1, "a"), _pt_tensor(dtype, 1, "b")
            pt_fns = pytensor_functions([pa, pb], pa ** 2 + pb ** 2 + 2 * pa * pb)
        for n in sizes:
            av, bv = (rng.normal(size=n).astype(dtype) for _ in range(2))
            calls = {THEANINE: lambda f=f, av=av, bv=bv: f(av, bv),
                     "numpy": lambda av=av, bv=bv: av ** 2 + bv ** 2 + 2 * av * bv}
            if ne is not None:
                calls["numexpr"] = lambda av=av, bv=bv: ne.evaluate(
                    "a**2 + b**2 + 2*a*b", local_dict={"a": av, "b": bv})
            for col, g in pt_fns.items():
                calls[col] = lambda g=g, av=av, bv=bv: g(av, bv)
            loop = c_loop(dtype) if n == max(sizes) else None
            if loop is not None:
                calls["c-loop"] = lambda av=av, bv=bv, loop=loop: loop(av, bv)
            want = av.astype(np.float64) ** 2 + bv.astype(np.float64) ** 2 + 2.0 * av * bv
            rows.append(compare(POLY, f"{dtype} n={n:.0e}", calls, want, settings,
                                rtol=tolerance(dtype), atol=tolerance(dtype)))
    return rows


def exp_broadcast(shapes: list[tuple[int, int]], settings: Settings) -> list[Row]:
    """Time exp(2*x*y + y) with x a matrix and y a vector broadcast along its rows."""
    rows = []
    ne = numexpr_module()
    rng = np.random.default_rng(1)
    for dtype in DTYPES:
        x, y = T.tensor(dtype, shape=(None, None), name="x"), T.tensor(dtype, shape=(None,),
                                                                       name="y")
        f = th.function([x, y], T.exp(2 * x * y + y), backend="c", trust_input=True)
        pt_fns = {}
        if pytensor_module():
            import pytensor.tensor as pt

            px, py = _pt_tensor(dtype, 2, "x"), _pt_tensor(dtype, 1, "y")
            pt_fns = pytensor_functions([px, py], pt.exp(2 * px * py + py))
        for shape in shapes:
            xv = rng.uniform(-1, 1, size=shape).astype(dtype)
            yv = rng.uniform(-1, 1, size=shape[1]).astype(dtype)
            calls = {THEANINE: lambda f=f, xv=xv, yv=yv: f(xv, yv),
                     "numpy": lambda xv=xv, yv=yv: np.exp(2 * xv * yv + yv)}
            if ne is not None:
                calls["numexpr"] = lambda xv=xv, yv=yv: ne.evaluate(
                    "exp(2*x*y + y)", local_dict={"x": xv, "y": yv})
            for col, g in pt_fns.items():
                calls[col] = lambda g=g, xv=xv, yv=yv: g(xv, yv)
            want = np.exp(2 * xv.astype(np.float64) * yv + yv)
            rows.append(compare(EXP, f"{dtype} {shape[0]}x{shape[1]}", calls, want, settings,
                                rtol=tolerance(dtype)))
    return rows


def targets(poly_rows: list[Row]) -> list[Target]:
    """Workload (1)'s targets: >= 1.5x the fastest rival at n >= 1e5, >= 85% of the C loop's
    speed where it ran, and faster than NumPy at n = 1e3."""
    out = []
    for r in poly_rows:
        n = int(float(r.name.split("n=")[1]))
        if n >= 100_000:
            best = r.fastest(("numpy", "numexpr", "pt-default", "pt-c"))
            if best is not None:
                col, t = best
                out.append(Target(f"(1) {r.name}: >= 1.5x fastest rival", t / r.theanine >= 1.5,
                                  f"{t / r.theanine:.2f}x vs {col} ({fmt_time(t)})"))
        if "c-loop" in r.others:
            s = r.speedup("c-loop")
            out.append(Target(f"(1) {r.name}: >= 85% of the C loop's speed", s >= 0.85,
                              f"{s * 100:.0f}% ({fmt_time(r.others['c-loop'])} vs "
                              f"{fmt_time(r.theanine)})"))
        if n == 1000:
            s = r.speedup("numpy")
            out.append(Target(f"(1) {r.name}: faster than NumPy", s > 1,
                              f"{s:.2f}x vs numpy"))
    return out
