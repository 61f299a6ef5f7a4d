"""Side-by-side timings of compiled theanine functions against plain NumPy, as ratios measured
in the same run.

    python benchmarks/run.py [--backend NAME] [--quick]

Workloads: the seed MLP's training step (2-4-1 sigmoid network with momentum, 1000 points),
`a**2 + b**2 + 2*a*b` at 1e3..1e7 float64 elements, and the per-call overhead on tiny inputs.
A ratio above 1 means theanine is slower than NumPy.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

import theanine as th
import theanine.tensor as T
from theanine.backend import get_backend


def best_time(fn, min_time: float = 0.2, repeat: int = 5) -> float:
    """Best per-call seconds over `repeat` rounds of at least `min_time` each."""
    number = 1
    while timeit.timeit(fn, number=number) < min_time / 10:
        number *= 4
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def polynomial(backend: str, sizes) -> list[tuple]:
    a, b = T.dvector("a"), T.dvector("b")
    f = th.function([a, b], a ** 2 + b ** 2 + 2 * a * b, backend=backend)
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        av, bv = rng.normal(size=n), rng.normal(size=n)
        np.testing.assert_allclose(f(av, bv), av ** 2 + bv ** 2 + 2 * av * bv, atol=1e-9)
        t_th = best_time(lambda av=av, bv=bv: f(av, bv))
        t_np = best_time(lambda av=av, bv=bv: av ** 2 + bv ** 2 + 2 * av * bv)
        rows.append((f"a**2+b**2+2ab  n={n:.0e}", t_th, t_np))
    return rows


def mlp_step(backend: str) -> tuple:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 1000))
    y = (rng.random(1000) > 0.5).astype(float)
    W1, b1, W2, b2 = rng.normal(size=(4, 2)), np.ones((4, 1)), rng.normal(size=(1, 4)), \
        np.ones((1, 1))
    params = [th.shared(v.copy(), broadcastable=(False, v.shape[1] == 1)) for v in
              (W1, b1, W2, b2)]
    vel = [th.shared(np.zeros_like(p.get_value()), broadcastable=p.broadcastable)
           for p in params]
    x, t = T.dmatrix("x"), T.dvector("t")
    h = T.nnet.sigmoid(T.dot(params[0], x) + params[1])
    out = T.nnet.sigmoid(T.dot(params[2], h) + params[3])
    cost = T.sum((out - t) ** 2)
    updates = []
    for p, v in zip(params, vel):
        updates.append((p, p - 0.01 * v))
        updates.append((v, 0.9 * v + 0.1 * T.grad(cost, p)))
    train = th.function([x, t], cost, updates=updates, backend=backend)

    state = [W1.copy(), b1.copy(), W2.copy(), b2.copy()]
    vstate = [np.zeros_like(s) for s in state]

    def numpy_step():
        w1, c1, w2, c2 = state
        z1 = w1 @ X + c1
        h1 = 1 / (1 + np.exp(-z1))
        z2 = w2 @ h1 + c2
        o = 1 / (1 + np.exp(-z2))
        c = np.sum((o - y) ** 2)
        d2 = 2 * (o - y) * o * (1 - o)
        g_w2, g_c2 = d2 @ h1.T, d2.sum(axis=1, keepdims=True)
        d1 = (w2.T @ d2) * h1 * (1 - h1)
        g_w1, g_c1 = d1 @ X.T, d1.sum(axis=1, keepdims=True)
        for i, g in enumerate((g_w1, g_c1, g_w2, g_c2)):
            state[i] = state[i] - 0.01 * vstate[i]
            vstate[i] = 0.9 * vstate[i] + 0.1 * g
        return c

    c_np, c_th = numpy_step(), train(X, y)
    np.testing.assert_allclose(c_th, c_np, rtol=1e-10)
    return ("seed MLP training step", best_time(lambda: train(X, y)), best_time(numpy_step))


def tiny_call_overhead(backend: str) -> tuple:
    a, b = T.dvector("a"), T.dvector("b")
    f = th.function([a, b], a ** 2 + b ** 2 + 2 * a * b, backend=backend)
    av, bv = np.ones(3), np.ones(3)
    return ("per-call, 3 elements", best_time(lambda: f(av, bv)),
            best_time(lambda: av ** 2 + bv ** 2 + 2 * av * bv))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend name or device (default: "
                                                        "config.device)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args(argv)
    backend = get_backend(args.backend).name
    sizes = [1000, 100_000] if args.quick else [1000, 100_000, 1_000_000, 10_000_000]
    rows = [tiny_call_overhead(backend), mlp_step(backend)] + polynomial(backend, sizes)
    print(f"backend: {backend}")
    print(f"{'workload':<32}{'theanine':>12}{'numpy':>12}{'ratio':>8}")
    for name, t_th, t_np in rows:
        print(f"{name:<32}{t_th * 1e6:>10.1f}us{t_np * 1e6:>10.1f}us{t_th / t_np:>8.2f}")


if __name__ == "__main__":
    main()
