"""Random streams with Theano's interface over counter-based draws (theanine.tensor.random).

Each draw a stream makes gets its own generator state, a shared uint64 vector [key, counter]
whose `default_update` advances the counter, so every `function()` that reads the draw moves
it on by itself (unless it says `no_default_updates`). The key of draw number i is derived from
the stream's seed and i (`philox.seed_key`), so `seed(s)` makes every draw start over, and two
streams with the same seed give the same numbers on every backend.
"""

from __future__ import annotations

import numpy as np

from theanine.compile.shared import SharedVariable, shared
from theanine.config import config
from theanine.graph.basic import graph_error
from theanine.tensor import philox
from theanine.tensor import random as rnd
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import cast, lt
from theanine.tensor.variable import TensorVariable

DEFAULT_SEED = 12345


class RandomStream:
    """A factory of symbolic random draws (uniform, normal, binomial, ...), seeded once.

    `state_updates` lists (state, update) for every draw made, as Theano's streams do;
    `updates()` returns it. Each draw carries its own pair too: `draw.rng` and `draw.update`.
    """

    def __init__(self, seed: int | None = None):
        self.default_seed = DEFAULT_SEED if seed is None else _check_seed(seed)
        self.state_updates: list[tuple[SharedVariable, TensorVariable]] = []

    # -- states --------------------------------------------------------------------------------
    def _new_state(self) -> SharedVariable:
        """A fresh generator state for the next draw, with its default update."""
        i = len(self.state_updates)
        state = shared(_state_value(self.default_seed, i), name=f"rng_state_{i}")
        state.default_update = rnd.next_state(state)
        self.state_updates.append((state, state.default_update))
        return state

    def seed(self, seed: int | None = None) -> None:
        """Start every draw of this stream over from `seed` (default: the stream's seed)."""
        self.default_seed = self.default_seed if seed is None else _check_seed(seed)
        for i, (state, _) in enumerate(self.state_updates):
            state.set_value(_state_value(self.default_seed, i))

    def updates(self) -> list[tuple[SharedVariable, TensorVariable]]:
        """The (state, update) pairs of every draw made so far."""
        return list(self.state_updates)

    # -- draws ---------------------------------------------------------------------------------
    def uniform(self, size=None, low=0.0, high=1.0, ndim: int | None = None,
                dtype: str | None = None) -> TensorVariable:
        """Uniform numbers in [low, high) of shape `size` (default: the broadcast shape of
        low and high)."""
        dtype = _float_dtype(dtype, "uniform")
        low, high = _param(low, dtype), _param(high, dtype)
        size = _size(size, ndim, "uniform", low, high)
        state = self._new_state()
        u = _narrow(rnd.uniform01(state, size, _draw_dtype(dtype)), dtype)
        return _drawn(low + (high - low) * u, state)

    def normal(self, size=None, avg=0.0, std=1.0, ndim: int | None = None,
               dtype: str | None = None) -> TensorVariable:
        """Normal numbers of mean `avg` and standard deviation `std`."""
        dtype = _float_dtype(dtype, "normal")
        avg, std = _param(avg, dtype), _param(std, dtype)
        size = _size(size, ndim, "normal", avg, std)
        state = self._new_state()
        z = _narrow(rnd.standard_normal(state, size, _draw_dtype(dtype)), dtype)
        return _drawn(avg + std * z, state)

    def binomial(self, size=None, n=1, p=0.5, ndim: int | None = None,
                 dtype: str = "int64") -> TensorVariable:
        """The number of successes in `n` trials of probability `p` (n=1: Bernoulli, a
        dropout mask)."""
        p = as_tensor_variable(p)
        if not p.dtype.startswith("float"):
            p = cast(p, config.floatX)
        size = _size(size, ndim, "binomial", p)
        if not (isinstance(n, int) and n == 1):
            raise NotImplementedError("binomial with n != 1")
        state = self._new_state()
        u = rnd.uniform01(state, size, _draw_dtype(p.dtype))
        return _drawn(cast(lt(u, p), dtype), state)


def _drawn(out: TensorVariable, state: SharedVariable) -> TensorVariable:
    """`out` with Theano's handles on the state it was drawn from: `out.rng` (the shared
    state, read and set with get_value/set_value) and `out.update` (its (state, update) pair)."""
    out.rng = state
    out.update = (state, state.default_update)
    return out


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"random stream: seed must be an int, got {type(seed).__name__} "
                        f"{seed!r}")
    return int(seed)


def _state_value(seed: int, i: int) -> np.ndarray:
    return np.array([philox.seed_key(seed, i), 0], dtype=np.uint64)


def _float_dtype(dtype: str | None, what: str) -> str:
    dtype = config.floatX if dtype is None else str(np.dtype(dtype))
    if dtype not in ("float16", "float32", "float64"):
        raise graph_error(f"{what}: dtype must be a float dtype, got {dtype!r}")
    return dtype


def _draw_dtype(dtype: str) -> str:
    """The dtype a draw is made in: float16 numbers are float32 draws, rounded."""
    return "float64" if dtype == "float64" else "float32"


def _narrow(x: TensorVariable, dtype: str) -> TensorVariable:
    return x if x.dtype == dtype else cast(x, dtype)


def _param(v, dtype: str) -> TensorVariable:
    v = as_tensor_variable(v)
    return v if v.dtype == dtype else cast(v, dtype)


def _size(size, ndim: int | None, what: str, *params: TensorVariable):
    """The draw's shape: `size`, or the broadcast shape of `params` when it is None; checked
    against `ndim` when both are given."""
    if size is None:
        total = params[0]
        for p in params[1:]:
            total = total + p
        if ndim is not None and total.ndim != ndim:
            raise graph_error(f"{what}: ndim={ndim} but the parameters have {total.ndim} "
                              "dimensions and no size was given")
        return total.shape
    if isinstance(size, (int, np.integer)) or (isinstance(size, TensorVariable) and
                                               size.ndim == 0):
        size = (size,)
    n = len(size) if isinstance(size, (list, tuple)) else None
    if ndim is not None and n is not None and n != ndim:
        raise graph_error(f"{what}: size {tuple(size)} has {n} dimensions but ndim={ndim}")
    return size
