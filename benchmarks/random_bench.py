"""Random draws on the C backend against NumPy's default Generator (and JAX and PyTorch on the
CPU where installed), and a fused dropout against the same graph without the mask, as times and
ratios from one run, with the issue's targets marked PASS or MISS.

    python benchmarks/random_bench.py [--n 10000000] [--side 4096] [--threads N] [--quick]

Workloads: (1) n float32 uniform and normal numbers from a RandomStream (`srng.uniform((n,))`,
`srng.normal((n,))`; the state advances every call) against `rng.random(n, dtype=np.float32)`
and `rng.standard_normal(n, dtype=np.float32)` of `np.random.default_rng()`,
`jax.random.uniform/normal` and `torch.rand/randn`; (2) dropout
`x * srng.binomial(size=x.shape, p=p, dtype='float32')` on a side x side float32 matrix, with
p the Python float 0.5 (drawn in floatX) and np.float32(0.5) (drawn in float32), against
`x * np.float32(0.5)` compiled the same way (column c-no-mask: the same one-pass elementwise
graph, one read and one write of x, without the draw and the comparison) and NumPy's
`x * (rng.random(x.shape, dtype=np.float32) < 0.5)`. theanine's numbers are checked against
Philox's (theanine.tensor.philox) before they are timed, the rivals' for their mean.
Ratios are competitor time / theanine-c time (above 1: theanine-c is faster).
"""

from __future__ import annotations

import threads  # isort: skip (sets OpenMP's threads before anything loads it)
import argparse
import os
import time

import numpy as np
import rivals
from harness import THEANINE, Row, Settings, Target, compare, fmt_time, print_table, print_targets

import theanine as th
import theanine.tensor as T
from theanine.graph.traversal import toposort
from theanine.random_streams import RandomStream
from theanine.tensor import philox

SEED = 1234
DRAWS = "(1) float32 draws"
DROPOUT = "(2) dropout x * binomial(p), float32"
ENDS = 1000  # elements checked against Philox at each end of a result


def _draw_op(outputs) -> tuple[str, str]:
    """(kind, dtype) of the one random draw in the graph of `outputs`."""
    names = {n.op.scalar_op.name for n in toposort(list(outputs))
             if getattr(n.op, "scalar_op", None) is not None
             and n.op.scalar_op.name.startswith("random_")}
    (name,) = names
    _, kind, dtype = name.split("_")
    return kind, dtype


def _philox_ends(kind: str, dtype: str, state: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """(positions, Philox's values there): the first and last ENDS elements of a draw."""
    idx = np.r_[0:min(ENDS, size), max(size - ENDS, 0):size].astype(np.uint64)
    return idx.astype(np.intp), philox.draw(kind, dtype, state[0], state[1], idx)


def _check_mean(name: str, values: np.ndarray, mean: float, std: float) -> None:
    """Fail loudly when a rival's sample mean is more than 6 standard errors off."""
    got = float(np.mean(values, dtype=np.float64))
    if abs(got - mean) > 6 * std / np.sqrt(values.size):
        raise AssertionError(f"{name}: sample mean {got}, expected {mean}")


def _rival_draws(kind: str, n: int) -> dict:
    """The rivals' calls drawing n float32 `kind` numbers, {column: callable}."""
    rng = np.random.default_rng(SEED)
    calls = {"numpy": (lambda: rng.random(n, dtype=np.float32)) if kind == "uniform" else
             (lambda: rng.standard_normal(n, dtype=np.float32))}
    jax = rivals.jax_module()
    if jax is not None:
        import jax.numpy as jnp

        fn = jax.jit(lambda k: (jax.random.uniform if kind == "uniform" else jax.random.normal)(
            k, (n,), dtype=jnp.float32))
        key = jax.random.PRNGKey(SEED)
        calls["jax"] = lambda: fn(key).block_until_ready()
    torch = rivals.torch_module()
    if torch is not None:
        make = torch.rand if kind == "uniform" else torch.randn
        calls["torch"] = lambda: make(n, dtype=torch.float32)
    return calls


def draws(n: int, settings: Settings) -> list[Row]:
    """Time n float32 uniform and normal draws on C and by each rival."""
    rows = []
    srng = RandomStream(SEED)
    for kind in ("uniform", "normal"):
        v = srng.uniform((n,), dtype="float32") if kind == "uniform" else \
            srng.normal((n,), dtype="float32")
        state = srng.state_updates[-1][0]
        f = th.function([], v, backend="c", trust_input=True)
        before = state.get_value()
        out = f()
        idx, want = _philox_ends(kind, "float32", before, n)
        if kind == "uniform":
            np.testing.assert_array_equal(out[idx], want, err_msg="theanine-c uniform vs Philox")
        else:
            np.testing.assert_allclose(out[idx], want, rtol=1e-5, atol=1e-5,
                                       err_msg="theanine-c normal vs Philox")
        calls = {THEANINE: f, **_rival_draws(kind, n)}
        for col, call in calls.items():
            _check_mean(f"{kind} [{col}]", np.asarray(call()), 0.5 if kind == "uniform" else 0,
                        0.29 if kind == "uniform" else 1)
        rows.append(compare(DRAWS, f"{kind} n={n:.0e}", calls, None, settings, rtol=0))
    return rows


def dropout(side: int, settings: Settings) -> list[Row]:
    """Time the fused dropout (p a Python float, then a float32) against x * 0.5 and NumPy."""
    rng = np.random.default_rng(SEED)
    xv = (rng.random((side, side), dtype=np.float32) + np.float32(0.5))
    x = T.tensor("float32", shape=(None, None), name="x")
    no_mask = th.function([x], x * np.float32(0.5), backend="c", trust_input=True)
    rows = []
    for p in (0.5, np.float32(0.5)):
        srng = RandomStream(SEED)
        y = x * srng.binomial(size=x.shape, p=p, dtype="float32")
        kind, dtype = _draw_op([y])
        state = srng.state_updates[-1][0]
        f = th.function([x], y, backend="c", trust_input=True)
        before = state.get_value()
        out = f(xv)
        idx, u = _philox_ends(kind, dtype, before, xv.size)
        np.testing.assert_array_equal(out.reshape(-1)[idx],
                                      np.where(u < p, xv.reshape(-1)[idx], 0),
                                      err_msg="theanine-c dropout vs Philox")
        kept = np.count_nonzero(out) / out.size
        if abs(kept - 0.5) > 0.002:
            raise AssertionError(f"dropout keeps {kept:.4f} of x, not 0.5")
        calls = {THEANINE: lambda f=f: f(xv), "c-no-mask": lambda: no_mask(xv),
                 "numpy": lambda: xv * (rng.random(xv.shape, dtype=np.float32) < 0.5)}
        name = f"p={type(p).__name__} 0.5 ({dtype} draws) {side}x{side}"
        rows.append(compare(DROPOUT, name, calls, None, settings, rtol=0))
    return rows


def targets(rows: list[Row]) -> list[Target]:
    """The issue's targets: draws at least 2x NumPy's Generator; dropout at least 80% of the
    speed of the graph without the mask."""
    out = []
    for r in rows:
        if r.group == DRAWS:
            s = r.speedup("numpy")
            out.append(Target(f"{r.name}: >= 2x NumPy's Generator", s >= 2,
                              f"{s:.2f}x ({fmt_time(r.others['numpy'])} vs "
                              f"{fmt_time(r.theanine)})"))
        else:
            s = r.speedup("c-no-mask")
            out.append(Target(f"dropout {r.name}: >= 80% of x * 0.5's speed", s >= 0.8,
                              f"{s * 100:.0f}% ({fmt_time(r.others['c-no-mask'])} without "
                              f"the mask)"))
    return out


def main(argv=None) -> None:
    """Parse the options, run both workloads, print the table, the targets and the notes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="draws per call (1)")
    parser.add_argument("--side", type=int, default=4096, help="dropout matrix side (2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS (default: unset, all cores)")
    parser.add_argument("--quick", action="store_true", help="n=1e5, side 512, short timings")
    args = parser.parse_args(argv)
    threads.pin(args.threads, __file__, argv)
    n, side = (100_000, 512) if args.quick else (args.n, args.side)
    settings = Settings(budget=0.1, min_rounds=3) if args.quick else Settings()
    started = time.perf_counter()
    print(f"theanine {th.__version__} backend c | numpy {np.__version__} | {os.cpu_count()} "
          f"cores | floatX {th.config.floatX}")
    print(f"{threads.describe(args.threads)}; best of interleaved rounds (>= "
          f"{settings.min_rounds}, ~{settings.budget}s per column) after a warm-up"
          + (" | QUICK: small sizes, targets indicative only" if args.quick else ""))
    rows = draws(n, settings) + dropout(side, settings)
    print_table(rows)
    print_targets(targets(rows))
    rivals.print_notes(started)


if __name__ == "__main__":
    main()
