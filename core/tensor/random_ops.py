"""Random draws beyond uniform and normal: binomial counts (an elementwise scalar op), and the
draws that are not elementwise (permutations, multinomial counts, choices), as Ops whose
perform reads Philox words, so every backend gives the same numbers.

The Ops take the generator state (a uint64 vector [key, counter], theanine.tensor.random) and
read word stream (key, counter) by element index, as the elementwise draws do. `CheckParam`
checks a parameter known only at run time (a probability, a count, a row of probabilities)
and raises a ValueError naming it.
"""

from __future__ import annotations

import math

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor import philox
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.elemwise import Elemwise
from theanine.tensor.random import FlatIndex, as_size, check_size, check_state, static_shape
from theanine.tensor.scalar_ops import SCALAR_OPS
from theanine.tensor.shape_ops import const_int
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorVariable

_lgamma = np.frompyfunc(math.lgamma, 1, 1)
TAIL_SDS = 10.0  # binomial: mass farther than this many sds from the mean is below 2**-53


def binomial_from_uniform(u, n, p) -> np.ndarray:
    """Binomial(n, p) counts (int64) from float64 uniforms `u` in [0, 1), by inverting the
    CDF: the smallest k with P(X <= k) > u, summed upward from k0 = max(0, floor(mu - 10 sd))
    (below it the mass is under 2**-53) and stopped at kmax = min(n, floor(mu + 10 sd) + 10).
    p <= 0 or n <= 0 give 0, p >= 1 gives n. The reference the compiled kernels mirror."""
    u, n, p = np.broadcast_arrays(np.asarray(u, np.float64), np.asarray(n, np.int64),
                                  np.asarray(p, np.float64))
    out = np.where(p >= 1.0, np.maximum(n, 0), 0).astype(np.int64)
    live = (p > 0.0) & (p < 1.0) & (n > 0)
    if not live.any():
        return out
    uu, nf, pp = u[live], n[live].astype(np.float64), p[live]
    q = 1.0 - pp
    mu = nf * pp
    sd = np.sqrt(mu * q)
    k = np.maximum(0.0, np.floor(mu - TAIL_SDS * sd))
    kmax = np.minimum(nf, np.floor(mu + TAIL_SDS * sd) + 10.0)
    logpmf = (_lgamma(nf + 1.0).astype(np.float64) - _lgamma(k + 1.0).astype(np.float64)
              - _lgamma(nf - k + 1.0).astype(np.float64) + k * np.log(pp)
              + (nf - k) * np.log1p(-pp))
    pmf = np.exp(logpmf)
    cdf = pmf.copy()
    ratio = pp / q
    active = (cdf <= uu) & (k < kmax)
    while active.any():
        a = active
        pmf[a] = pmf[a] * ((nf[a] - k[a]) / (k[a] + 1.0) * ratio[a])
        k[a] = k[a] + 1.0
        cdf[a] = cdf[a] + pmf[a]
        active = a & (cdf <= uu) & (k < kmax)
    out[live] = k.astype(np.int64)
    return out


def binomial_draw(key, ctr, index, n, p) -> np.ndarray:
    """The `random_binomial` scalar op: Binomial(n, p) at element `index` of stream
    (key, ctr), from the float64 uniform of that element (philox.draw)."""
    return binomial_from_uniform(philox.draw("uniform", "float64", key, ctr, index), n, p)


def binomial_counts(state, size, n, p) -> TensorVariable:
    """Binomial(n, p) counts (int64) of shape `size` from generator state `state`: the
    `random_binomial` scalar op over (key, counter, flat index, n, p), elementwise."""
    state = check_state(state)
    size = as_size(size)
    index = FlatIndex(static_shape(size))(size)
    n, p = int_tensor(n, "binomial: n"), _float64(p)
    return Elemwise(SCALAR_OPS["random_binomial"])(state[0], state[1], index, n, p)


def _uniforms(state: np.ndarray, count: int) -> np.ndarray:
    """Float64 uniforms for elements 0 .. count - 1 of the stream of `state`."""
    return philox.draw("uniform", "float64", state[0], state[1], np.arange(count,
                                                                            dtype=np.uint64))


def _sort_keys(state: np.ndarray, count: int) -> np.ndarray:
    """A uint64 of random bits (words 2i and 2i + 1) for elements 0 .. count - 1."""
    w = philox.words(state[0], state[1], np.arange(count, dtype=np.uint64) * np.uint64(2), 2)
    w = w.astype(np.uint64)
    return (w[..., 0] << np.uint64(32)) | w[..., 1]


class _RandomOp(Op):
    """Base of the non-elementwise draws: input 0 is the state, input 1 the int64 size
    vector; no gradient flows through a draw."""

    def pullback(self, node, inputs, outputs, output_grads):
        return [None] * len(inputs)

    def _sized(self, state, size, *rest, extra: tuple) -> Apply:
        """The Apply of this op on (state, size, *rest), int64 output of shape size + extra."""
        state = check_state(state)
        size = as_size(size)
        out = TensorType("int64", static_shape(size) + extra)()
        return Apply(self, [state, size, *rest], [out])


class Permutation(_RandomOp):
    """Random permutations of 0 .. n-1, one per element of `size`: output size + (n,). Each
    row orders its n random 64-bit keys (a uniform permutation; ties broken by position)."""

    def make_node(self, state, size, n) -> Apply:
        n = _int_scalar(n, "permutation: n")
        return self._sized(state, size, n, extra=(const_int(n),))

    def perform(self, node, inputs):
        state, size, n = inputs
        shape, n = check_size(size), int(n)
        if n < 0:
            raise ValueError(f"permutation: n must not be negative, got {n}")
        rows = int(np.prod(shape, dtype=np.int64))
        keys = _sort_keys(state, rows * n).reshape(rows, n)
        return (np.argsort(keys, axis=1, kind="stable").astype(np.int64).reshape(shape + (n,)),)

    def infer_shape(self, node, input_shapes):
        size, n = node.inputs[1], node.inputs[2]
        k = len(node.outputs[0].type.shape) - 1
        return [tuple(size[i] for i in range(k)) + (n,)]


class Multinomial(_RandomOp):
    """Counts of `n` trials over the L categories of each row of `pvals`: output size + (L,),
    n broadcast to size and pvals to size + (L,). Category j of a row gets
    Binomial(remaining trials, p_j / remaining mass) from the uniform of element
    row * L + j (the last category takes what remains)."""

    def make_node(self, state, size, n, pvals) -> Apply:
        n = int_tensor(n, "multinomial: n")
        pvals = _float64(pvals)
        if pvals.ndim < 1:
            raise graph_error(f"multinomial: pvals must have at least one dimension, got "
                              f"{pvals} of type {pvals.type}")
        return self._sized(state, size, n, pvals, extra=(pvals.type.shape[-1],))

    def perform(self, node, inputs):
        state, size, n, pvals = inputs
        shape = check_size(size)
        L = pvals.shape[-1]
        try:
            p = np.broadcast_to(pvals, shape + (L,)).reshape(-1, L)
            left = np.broadcast_to(n, shape).reshape(-1).astype(np.int64).copy()
        except ValueError:
            raise ValueError(f"multinomial: n of shape {np.shape(n)} and pvals of shape "
                             f"{pvals.shape} do not broadcast to size {shape} (+ the "
                             f"{L} categories)") from None
        u = _uniforms(state, p.shape[0] * L).reshape(-1, L)
        counts = np.zeros(p.shape, dtype=np.int64)
        mass = np.ones(p.shape[0])
        for j in range(L - 1):
            share = np.clip(np.divide(p[:, j], mass, out=np.zeros_like(mass),
                                      where=mass > 0), 0.0, 1.0)
            counts[:, j] = binomial_from_uniform(u[:, j], left, share)
            left -= counts[:, j]
            mass = mass - p[:, j]
        if L:
            counts[:, L - 1] = np.maximum(left, 0)
        return (counts.reshape(shape + (L,)),)

    def infer_shape(self, node, input_shapes):
        size = node.inputs[1]
        k = len(node.outputs[0].type.shape) - 1
        return [tuple(size[i] for i in range(k)) + (input_shapes[3][-1],)]


class Choice(_RandomOp):
    """Indices into L items, with or without replacement, uniform or weighted by the last axis
    of `p` (batch + (L,)): output batch + size. Without replacement a batch row orders its
    items by the keys log(u) / p (largest first: sequential weighted sampling) or, unweighted,
    by random 64-bit keys, and takes the first prod(size); with replacement and p, each
    element inverts p's CDF at its own uniform."""

    __props__ = ("replace", "weighted")

    def __init__(self, replace: bool, weighted: bool):
        self.replace, self.weighted = bool(replace), bool(weighted)

    def make_node(self, state, size, items) -> Apply:
        if self.weighted:
            items = _float64(items)
            if items.ndim < 1:
                raise graph_error(f"choice: p must have at least one dimension, got {items} "
                                  f"of type {items.type}")
            batch = items.type.shape[:-1]
        else:
            items = _int_scalar(items, "choice: a")
            batch = ()
        node = self._sized(state, size, items, extra=())
        out = TensorType("int64", batch + node.outputs[0].type.shape)()
        return Apply(self, node.inputs, [out])

    def perform(self, node, inputs):
        state, size, items = inputs
        shape = check_size(size)
        m = int(np.prod(shape, dtype=np.int64))
        p = np.asarray(items, np.float64) if self.weighted else None
        L = p.shape[-1] if self.weighted else int(items)
        batch = p.shape[:-1] if self.weighted else ()
        rows = int(np.prod(batch, dtype=np.int64))
        if not self.replace:
            limit = (np.count_nonzero(p.reshape(rows, L) > 0, axis=1).min(initial=L)
                     if self.weighted else L)
            if m > limit:
                which = "items with nonzero probability" if self.weighted else "items"
                raise ValueError(f"choice without replacement: cannot take {m} samples from "
                                 f"{limit} {which}")
            if self.weighted:
                u = _uniforms(state, rows * L).reshape(rows, L)
                w = p.reshape(rows, L)
                with np.errstate(divide="ignore", invalid="ignore"):
                    keys = np.where(w > 0, np.log1p(-u) / w, -np.inf)
                order = np.argsort(-keys, axis=1, kind="stable")
            else:
                order = np.argsort(_sort_keys(state, rows * L).reshape(rows, L),
                                   axis=1, kind="stable")
            picked = order[:, :m]
        elif self.weighted:
            cdf = np.cumsum(p.reshape(rows, L), axis=1)
            u = _uniforms(state, rows * m).reshape(rows, m)
            picked = np.stack([np.searchsorted(c, uu * c[-1], side="right")
                               for c, uu in zip(cdf, u)]) if rows else np.zeros((0, m))
            picked = np.minimum(picked, L - 1)
        else:
            raise ValueError("choice with replacement and no p is elementwise: use "
                             "random_integers")
        return (np.asarray(picked, dtype=np.int64).reshape(batch + shape),)

    def infer_shape(self, node, input_shapes):
        size = node.inputs[1]
        k = len(static_shape(size))
        batch = tuple(input_shapes[2][:-1]) if self.weighted else ()
        return [batch + tuple(size[i] for i in range(k))]


class CheckParam(Op):
    """Its input, unchanged, once checked: `rule` "probability" (every value in [0, 1]),
    "count" (every value >= 0) or "pvals" (every row non-negative, summing to 1 within 1e-5);
    a ValueError naming `what` otherwise. For parameters only known at run time."""

    __props__ = ("rule", "what")
    view_of = {0: 0}

    def __init__(self, rule: str, what: str):
        if rule not in _RULES:
            raise ValueError(f"CheckParam: unknown rule {rule!r}")
        self.rule, self.what = rule, what

    def make_node(self, x) -> Apply:
        x = as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        x = inputs[0]
        problem = _RULES[self.rule](np.asarray(x))
        if problem:
            raise ValueError(f"{self.what}: {problem}")
        return (x,)

    def pullback(self, node, inputs, outputs, output_grads):
        return [None]

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0]]


def _probability_problem(x: np.ndarray) -> str:
    bad = ~((x >= 0) & (x <= 1))
    return f"must lie in [0, 1], got {x[bad].reshape(-1)[0].item()!r}" if bad.any() else ""


def _count_problem(x: np.ndarray) -> str:
    return f"must not be negative, got {x[x < 0].reshape(-1)[0].item()!r}" if (x < 0).any() else ""


def _pvals_problem(x: np.ndarray) -> str:
    if x.ndim == 0:
        return "must have at least one dimension"
    if not (x >= 0).all():
        return f"must not be negative, got {x[~(x >= 0)].reshape(-1)[0].item()!r}"
    sums = x.sum(axis=-1)
    bad = np.abs(sums - 1.0) > 1e-5
    if bad.any():
        return f"each row must sum to 1, got a row summing to {sums[bad].reshape(-1)[0].item()!r}"
    return ""


_RULES = {"probability": _probability_problem, "count": _count_problem,
          "pvals": _pvals_problem}


def check_param(x, rule: str, what: str) -> TensorVariable:
    """`x` checked by `rule` (see CheckParam): when the graph is built if it is a constant, so
    the error names the user's line, else by a CheckParam node at run time."""
    x = as_tensor_variable(x)
    data = getattr(x, "data", None)
    if data is not None:
        problem = _RULES[rule](np.asarray(data))
        if problem:
            raise graph_error(f"{what}: {problem}")
        return x
    return CheckParam(rule, what)(x)


def _int_scalar(v, what: str) -> TensorVariable:
    v = int_tensor(v, what)
    if v.ndim != 0:
        raise graph_error(f"{what}: expected an integer scalar, got {v} of type {v.type}")
    return v


def int_tensor(v, what: str) -> TensorVariable:
    """`v` as an int64 tensor; a graph error naming `what` for a non-integer one."""
    v = as_tensor_variable(v)
    if not v.dtype.startswith(("int", "uint")):
        raise graph_error(f"{what}: expected integers, got {v} of type {v.type}")
    return v if v.dtype == "int64" else v.astype("int64")


def _float64(v) -> TensorVariable:
    v = as_tensor_variable(v)
    return v if v.dtype == "float64" else v.astype("float64")
