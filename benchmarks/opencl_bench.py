"""OpenCL backend against the C backend and NumPy, same run, as ratios.

`a**2 + b**2 + 2*a*b` (float32) is timed two ways on OpenCL: with a and b in shared variables
and the result stored as an update, so everything stays in device memory (the kernel, what the
issue's target is about), and as a plain call whose inputs and output cross to the host.
Also a full float32 sum and `exp(2*x*y + y)` for a 4096x4096 x and 4096 y.

    python benchmarks/opencl_bench.py [--n 10000000] [--device opencl]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import theanine as th
import theanine.tensor as T


def best(fn, budget: float = 1.0, rounds: int = 5) -> float:
    """Best seconds per call over at least `rounds` calls and about `budget` seconds."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < rounds or time.perf_counter() - start < budget:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) > 200:
            break
    return min(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--device", default="opencl")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    n = args.n
    a_v, b_v = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    x_v = rng.random((4096, 4096), dtype=np.float32)
    y_v = rng.random(4096, dtype=np.float32)
    rows = []

    def poly(a, b):
        return a ** 2 + b ** 2 + 2 * a * b

    def expo(x, y):
        return T.exp(2 * x * y + y)

    cases = [(f"a**2+b**2+2ab f32 n={n:.0e}", poly, [a_v, b_v],
              lambda: a_v ** 2 + b_v ** 2 + 2 * a_v * b_v),
             (f"sum f32 n={n:.0e}", lambda a: a.sum(), [a_v], lambda: a_v.sum()),
             ("exp(2xy+y) f32 4096^2", expo, [x_v, y_v],
              lambda: np.exp(2 * x_v * y_v + y_v))]
    for name, fn, values, numpy_fn in cases:
        shared = [th.shared(v) for v in values]
        expr = fn(*shared)
        ocl_out = th.shared(np.zeros((0,) * expr.ndim, expr.dtype), name="out")
        f_ocl = th.function([], [], updates=[(ocl_out, expr)], backend=args.device)
        syms = [T.tensor(dtype=v.dtype, shape=(None,) * v.ndim) for v in values]
        f_call = th.function(syms, fn(*syms), backend=args.device)
        f_c = th.function(syms, fn(*syms), backend="c")
        np.testing.assert_allclose(f_call(*values), numpy_fn(), rtol=1e-4)
        f_ocl()
        np.testing.assert_allclose(ocl_out.get_value(), numpy_fn(), rtol=1e-4)
        rt = th.backend.get_backend(args.device).runtime()

        def resident_step(f=f_ocl, rt=rt):
            f()
            rt.synchronize()

        rows.append((name, best(resident_step), best(lambda f=f_call, v=values: f(*v)),
                     best(lambda f=f_c, v=values: f(*v)), best(numpy_fn)))
    dev = th.backend.get_backend(args.device).runtime().device_name
    print(f"OpenCL device: {dev}")
    print(f"{'workload':28} {'ocl resident':>13} {'ocl call':>10} {'c':>10} {'numpy':>10} "
          f"{'c/ocl-res':>10}")
    for name, res, call, c, npy in rows:
        print(f"{name:28} {res * 1e3:11.2f}ms {call * 1e3:8.2f}ms {c * 1e3:8.2f}ms "
              f"{npy * 1e3:8.2f}ms {c / res:10.2f}")
    name, res, _, c, _ = rows[0]
    verdict = "PASS" if res <= 1.3 * c else "MISS"
    print(f"target: {name} on OpenCL within 1.3x of the C backend: {res / c:.2f}x -> {verdict}")


if __name__ == "__main__":
    main()
