"""Conformance cases for random draws (theanine.tensor.random, theanine.random_streams).

Three kinds of check, all with fixed seeds or drawn generator states, on every backend:
- registered cases (`random_uniform`, `random_normal`, `dropout`, `FlatIndex`): draws taking
  the generator state as an input, fused with elementwise work around them (broadcast and
  transposed draws, 0-d and empty draws, symbolic sizes), held to the reference by `test_case`
  like any op; they put the random ops in the coverage matrix;
- `IDENTITY`: a backend's draws equal `theanine.tensor.philox`'s bits, computed here directly
  (exactly for uniform draws, to the rounding of log/sqrt/cos for normal ones), for sizes that
  are no multiple of four, empty, and large enough to be split across threads;
- `DISTRIBUTIONS`: the samples of RandomStream's uniform, normal and binomial (n = 1, a
  dropout mask, and larger n) have the distribution's mean and variance (within bounds from
  the sample size) and pass a Kolmogorov-Smirnov test.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from theanine.testing.cases import FLOAT, Arg, Case, free, register, sized
from theanine.testing.strategies import Domain

STATE = Arg((2,), "uint64", Domain(0, 2**64 - 1), "state")  # any key, any counter
UNIT = Domain(0, 1)


def _T():
    import theanine.tensor as T

    return T


def _rnd():
    from theanine.tensor import random

    return random


# -- registered cases: draws fused into elementwise graphs, held to the reference ------------------
def _draw_outputs(kind: str):
    """Outputs of a case around `kind` draws: the draw itself, an (n, 1) draw broadcast against
    x, a transposed draw plus x, a 0-d draw times p, an empty draw, `lo + (hi - lo) * draw`;
    for uniform draws also the dropout `x * cast(draw < p)` and its int8 mask."""
    def build(x, p, lo, hi, state):
        T, dt = _T(), x.dtype
        make = getattr(_rnd(), "uniform01" if kind == "uniform" else "standard_normal")
        whole = make(state, x.shape, dt)
        column = make(state, (x.shape[0], 1), dt)
        transposed = make(state, (x.shape[1], x.shape[0]), dt)
        outs = [whole, column * x, transposed.T + x, make(state, (), dt) * p,
                make(state, (0, 3), dt), lo + (hi - lo) * whole]
        if kind == "uniform":
            outs += [x * T.cast(T.lt(whole, p), dt), T.cast(T.lt(whole, p), "int8")]
        return outs

    return build


_DRAW_ARGS = (free(2, domain=Domain(-3, 3), name="x"), free(0, domain=UNIT, name="p"),
              free(0, domain=Domain(-3, 3), name="lo"),
              free(0, domain=Domain(-3, 3), name="hi"), STATE)
_DRAW_SHAPES = sized(2, lambda n, m: [(n, m), (), (), (), (2,)])
for _kind in ("uniform", "normal"):
    register(Case(f"random_{_kind}", _draw_outputs(_kind), _DRAW_ARGS, FLOAT,
                  shapes=_DRAW_SHAPES, extended=False,
                  notes=f"random_{_kind}_<dtype> fused with the work around it; the state is "
                        "an input, so hypothesis draws keys and counters"))


def _flat_index(x):
    index = _rnd().FlatIndex((None, None))(_rnd().as_size(x.shape))
    return [index, x + _T().cast(index, x.dtype)]


register(Case("FlatIndex", _flat_index, (free(2, name="x"),), ("int64",), extended=False,
              notes="the flat C-order index a draw reads (uint64)"))


# -- draws that are not uniform or normal (theanine.tensor.random_ops) -------------------------
def _ops():
    from theanine.tensor import random_ops

    return random_ops


def _binomial(x, n, p, state):
    """Binomial(n, p) counts of x's shape (p per column, n a scalar), and x scaled by them."""
    counts = _ops().binomial_counts(state, x.shape, n, p)
    return [counts, x * _T().cast(counts, x.dtype)]


register(Case("random_binomial", _binomial,
              (free(2, name="x"), free(0, "int64", Domain(0, 40), "n"),
               free(1, domain=UNIT, name="p"), STATE), ("float32",),
              shapes=sized(2, lambda r, c: [(r, c), (), (c,), (2,)]), extended=False,
              notes="the inverse-CDF walk of one float64 uniform per element, fused"))


def _index_draws(x, k, state):
    """Permutations (a constant n, and n from a shape), unweighted choice without replacement,
    from an int64 x whose shape gives the sizes."""
    ops = _ops()
    rows, cols = x.shape[0], x.shape[1]
    return [ops.Permutation()(state, (rows,), 4), ops.Permutation()(state, (), cols),
            ops.Choice(False, False)(state, (rows,), rows + cols),
            ops.CheckParam("count", "k")(k) + x]


register(Case("random_index_draws", _index_draws,
              (free(2, name="x"), free(0, domain=Domain(0, 9), name="k"), STATE), ("int64",),
              shapes=sized(2, lambda r, c: [(r, c), (), (2,)]), extended=False,
              notes="Permutation, Choice (unweighted, without replacement), CheckParam"))


def _weighted_draws(w, n, state):
    """Multinomial counts of n trials over rows of w normalized, and weighted choices of each
    row's columns with and without replacement, from positive weights w."""
    T, ops = _T(), _ops()
    pvals = ops.CheckParam("pvals", "pvals")(w / T.sum(w, axis=-1, keepdims=True))
    cols = w.shape[1]
    return [ops.Multinomial()(state, (w.shape[0],), n, pvals),
            ops.Choice(True, True)(state, (3,), w), ops.Choice(False, True)(state, (cols,), w),
            ops.CheckParam("probability", "p")(pvals)]


register(Case("random_weighted_draws", _weighted_draws,
              (free(2, domain=Domain(0.1, 4), name="w"), free(0, "int64", Domain(0, 50), "n"),
               STATE), ("float64",), grad=False,
              shapes=sized(2, lambda r, c: [(r, c), (), (2,)], min_side=1), extended=False,
              notes="Multinomial, Choice (weighted, with and without replacement), CheckParam"))


# -- identity: a backend's draws are theanine.tensor.philox's ----------------------------------
# rows split across threads (starting mid-block), one long row (its transposed draw one long
# column); then small, empty and single-element sizes
IDENTITY_SHAPES = ((317, 331), (1, 100_003), (3, 5), (0, 4), (1, 1))
ODD_SIZE = (7,)
# normal draws: |backend - philox| <= tol * (1 + |value|) (log, sqrt and cos round differently)
NORMAL_TOL = {"float32": 2e-6, "float64": 1e-13}
IDENTITY_STATES = ((0x0123456789ABCDEF, 0), (2**64 - 1, 2**64 - 2))
IDENTITY = ("uniform", "normal")


def identity_graph(dtype: str) -> tuple[list, dict[str, list]]:
    """(inputs [x, state], {kind: outputs}) of the identity check of `dtype` draws, per kind:
    the draw of x's shape, (n, 1) draw * x, transposed (m, n) draw + x, a draw of ODD_SIZE, an
    empty draw; for uniform draws also the dropout x * cast(draw < 0.5)."""
    from theanine.tensor.type import TensorType

    T = _T()
    x = TensorType(dtype, (None, None))("x")
    state = TensorType("uint64", (2,))("state")
    outs = {}
    for kind in IDENTITY:
        make = getattr(_rnd(), "uniform01" if kind == "uniform" else "standard_normal")
        whole = make(state, x.shape, dtype)
        outs[kind] = [whole, make(state, (x.shape[0], 1), dtype) * x,
                      make(state, (x.shape[1], x.shape[0]), dtype).T + x,
                      make(state, ODD_SIZE, dtype), make(state, (0, 3), dtype)]
        if kind == "uniform":
            outs[kind].append(x * T.cast(T.lt(whole, np.asarray(0.5, dtype)), dtype))
    return [x, state], outs


def identity_expected(kind: str, dtype: str, x: np.ndarray, state: np.ndarray) -> list:
    """What `identity_graph`'s outputs of `kind` must be, computed from philox directly."""
    def ref(*shape):
        return _philox(kind, dtype, int(state[0]), int(state[1]), math.prod(shape)).reshape(shape)

    n, m = x.shape
    out = [ref(n, m), ref(n, 1) * x, ref(m, n).T + x, ref(*ODD_SIZE), ref(0, 3)]
    if kind == "uniform":
        out.append(x * (ref(n, m) < np.asarray(0.5, dtype)).astype(dtype))
    return out


@functools.cache
def _philox(kind: str, dtype: str, key: int, ctr: int, n: int) -> np.ndarray:
    """Elements 0 .. n - 1 of a draw (read-only; every backend's check reuses them)."""
    from theanine.tensor import philox

    out = philox.draw(kind, dtype, key, ctr, np.arange(n, dtype=np.uint64))
    out.flags.writeable = False
    return out


def identity_inputs(dtype: str, shape: tuple[int, int], k: int) -> tuple[np.ndarray, ...]:
    """x of `shape` with values in [-1, 1) (C, Fortran or reversed layout by k) and a state."""
    x = np.random.default_rng(k).uniform(-1, 1, shape).astype(dtype)
    x = (x, np.asfortranarray(x), x[::-1, ::-1].copy()[::-1, ::-1])[k % 3]
    state = np.array(IDENTITY_STATES[k % len(IDENTITY_STATES)], dtype=np.uint64)
    return x, state


def identity_problem(kind: str, dtype: str, expected: np.ndarray,
                     actual: np.ndarray) -> str | None:
    """Why `actual` is not philox's `expected` (None when it is): uniform draws must agree to the
    bit, normal ones within NORMAL_TOL of 1 + |expected|."""
    actual = np.asarray(actual)
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return (f"expected {expected.dtype}{list(expected.shape)}, got "
                f"{actual.dtype}{list(actual.shape)}")
    if kind == "uniform":
        bad = expected != actual
    else:
        with np.errstate(all="ignore"):
            err = np.abs(expected.astype(np.float64) - actual)
        bad = ~(err <= NORMAL_TOL[dtype] * (1 + np.abs(expected.astype(np.float64))))
    if not bad.any():
        return None
    at = np.unravel_index(int(np.argmax(bad.reshape(-1))), expected.shape)
    how = "bit for bit" if kind == "uniform" else f"within {NORMAL_TOL[dtype]} * (1 + |value|)"
    return (f"{int(bad.sum())} of {expected.size} elements differ from philox (must agree "
            f"{how}); first at {tuple(int(i) for i in at)}: expected {expected[at]!r}, got "
            f"{actual[at]!r}")



# -- distributions: moments and a Kolmogorov-Smirnov test ----------------------------------------
SAMPLE_SIZE = 60_001  # above the C backend's threshold for threads
SEED = 20_141_126
Z = 5.0          # moments: allowed deviation in standard errors
KS_ALPHA = 1e-3  # the KS test's significance level


@dataclass(frozen=True)
class Distribution:
    """A RandomStream draw (`make(srng, size, dtype, *params)`) with, per parameter set, its
    mean, variance and kurtosis (`moments`) and its cdf and left-limit cdf (`cdf(*params)`:
    a pair of functions of a float64 array)."""

    params: tuple[tuple[float, ...], ...]
    make: Callable
    moments: Callable[..., tuple[float, float, float]]
    cdf: Callable
    bounds: Callable[..., tuple[float, float]] | None = None


def _uniform_cdf(lo, hi):
    f = lambda v: np.clip((v - lo) / (hi - lo), 0.0, 1.0)  # noqa: E731
    return f, f


_ERF = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(avg, std):
    f = lambda v: 0.5 * (1 + _ERF((v - avg) / (std * math.sqrt(2))).astype(np.float64))  # noqa
    return f, f


def _binomial_cdf(n, p):
    """Binomial(n, p)'s cdf and its left limits (a step at each of 0 .. n)."""
    n = int(n)
    cum = np.cumsum([math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)])

    def at(k):  # P(X <= k) for integer-valued float arrays k
        return np.where(k < 0, 0.0, cum[np.clip(k, 0, n).astype(np.int64)])

    return lambda v: at(np.floor(v)), lambda v: at(np.ceil(v) - 1)


def _binomial_moments(n, p):
    q = n * p * (1 - p)
    return n * p, q, 3 + (1 - 6 * p * (1 - p)) / q


DISTRIBUTIONS = {
    "uniform": Distribution(
        ((0.0, 1.0), (-3.0, 2.0), (1000.0, 1001.0)),
        lambda srng, size, dt, lo, hi: srng.uniform(size, lo, hi, dtype=dt),
        lambda lo, hi: ((lo + hi) / 2, (hi - lo) ** 2 / 12, 1.8), _uniform_cdf,
        bounds=lambda lo, hi: (lo, hi)),
    "normal": Distribution(
        ((0.0, 1.0), (2.5, 0.5), (-10.0, 3.0)),
        lambda srng, size, dt, avg, std: srng.normal(size, avg, std, dtype=dt),
        lambda avg, std: (avg, std ** 2, 3.0), _normal_cdf),
    "binomial": Distribution(
        ((1, 0.1), (1, 0.5), (1, 0.9), (10, 0.3), (1000, 0.01)),
        lambda srng, size, dt, n, p: srng.binomial(size, n, np.asarray(p, dt), dtype=dt),
        _binomial_moments, _binomial_cdf, bounds=lambda n, p: (0.0, float(n))),
}


def distribution_samples(backend: str, dtype: str) -> dict[tuple, np.ndarray]:
    """One call of a function drawing SAMPLE_SIZE numbers for every distribution and parameter
    set from a RandomStream seeded with SEED, compiled on `backend`; by (name, params).
    Raises Unsupported when the backend's capabilities exclude the graph."""
    from theanine import function
    from theanine.random_streams import RandomStream
    from theanine.testing.compare import check_supported

    srng = RandomStream(SEED)
    keys = [(name, ps) for name, d in DISTRIBUTIONS.items() for ps in d.params]
    outs = [DISTRIBUTIONS[name].make(srng, (SAMPLE_SIZE,), dtype, *ps) for name, ps in keys]
    check_supported(backend, outs)
    values = function([], outs, backend=backend)()
    return dict(zip(keys, values))


def ks_statistic(sample: np.ndarray, cdf: Callable, cdf_left: Callable) -> float:
    """sup_x |F_n(x) - F(x)| of the sample's empirical cdf F_n and the cdf F (right-continuous,
    with left limits `cdf_left`): at each distinct value, just before and at it."""
    values, counts = np.unique(np.asarray(sample, dtype=np.float64), return_counts=True)
    above = np.cumsum(counts) / counts.sum()
    below = above - counts / counts.sum()
    return float(max(np.abs(above - cdf(values)).max(initial=0),
                     np.abs(below - cdf_left(values)).max(initial=0)))


def ks_critical(n: int, alpha: float = KS_ALPHA) -> float:
    """The KS statistic's critical value at level `alpha` for n samples (Kolmogorov's limit
    distribution, Stephens' correction for finite n)."""
    root = math.sqrt(n)
    return math.sqrt(-0.5 * math.log(alpha / 2)) / (root + 0.12 + 0.11 / root)


def sample_problem(name: str, params: tuple, sample: np.ndarray) -> str | None:
    """Why `sample` does not look drawn from distribution `name` with `params` (None when it
    does): values out of bounds, a mean or variance more than Z standard errors off, or a KS
    statistic above its critical value."""
    d = DISTRIBUTIONS[name]
    x = np.asarray(sample, dtype=np.float64)
    n = x.size
    if not np.isfinite(x).all():
        return f"{int((~np.isfinite(x)).sum())} values are not finite"
    if d.bounds is not None:
        lo, hi = d.bounds(*params)
        if x.min() < lo or x.max() > hi:
            return f"values span [{float(x.min())!r}, {float(x.max())!r}], outside [{lo}, {hi}]"
    mean, var, kurtosis = d.moments(*params)
    # the variance about the true mean has standard error var * sqrt((kurtosis - 1) / n); the
    # sample variance is that less (mean - sample mean)**2, at most Z**2 * var / n when the
    # mean passes (Bernoulli(1/2), of kurtosis 1, has only this term)
    tol_mean = Z * math.sqrt(var / n)
    tol_var = Z * var * math.sqrt((kurtosis - 1) / n) + Z ** 2 * var / n
    if abs(x.mean() - mean) > tol_mean:
        return f"mean {x.mean():.6g}, expected {mean:.6g} +- {tol_mean:.3g}"
    if abs(x.var(ddof=1) - var) > tol_var:
        return f"variance {x.var(ddof=1):.6g}, expected {var:.6g} +- {tol_var:.3g}"
    stat, crit = ks_statistic(x, *d.cdf(*params)), ks_critical(n)
    if stat > crit:
        return f"KS statistic {stat:.5f} above its critical value {crit:.5f} (alpha {KS_ALPHA})"
    return None


__all__ = ["DISTRIBUTIONS", "IDENTITY", "IDENTITY_SHAPES", "NORMAL_TOL", "SAMPLE_SIZE",
           "Distribution", "distribution_samples", "identity_expected", "identity_graph",
           "identity_inputs", "identity_problem", "ks_critical", "ks_statistic",
           "sample_problem"]
