"""Random streams with Theano's interface over counter-based draws (theanine.tensor.random).

Each draw a stream makes gets its own generator state, a shared uint64 vector [key, counter]
whose `default_update` advances the counter, so every `function()` that reads the draw moves
it on by itself (unless it says `no_default_updates`). The key of draw number i is derived from
the stream's seed and i (`philox.seed_key`), so `seed(s)` makes every draw start over, and two
streams with the same seed give the same numbers on every backend.
"""

from __future__ import annotations

import numpy as np

from theanine.compile.shared import SharedVariable
from theanine.config import config
from theanine.graph.basic import graph_error
from theanine.graph.pickling import picklable_tag
from theanine.tensor import philox
from theanine.tensor import random as rnd
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import cast, floor, lt, minimum
from theanine.tensor.random_ops import (
    Choice,
    Multinomial,
    Permutation,
    binomial_counts,
    check_param,
    int_tensor,
)
from theanine.tensor.shape_ops import const_int, specify_shape
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorVariable

DEFAULT_SEED = 12345


class PhiloxState(np.ndarray):
    """A draw's state [key, counter] as `get_value` hands it out, with the methods Theano's
    tutorial calls on a state (those of NumPy's RandomState): `seed`, `get_state`,
    `set_state`, which change the array in place."""

    def seed(self, seed: int) -> None:
        """Start this draw over from `seed` (its key from the seed, the counter at 0)."""
        self[...] = _state_value(_check_seed(seed), 0)

    def get_state(self) -> np.ndarray:
        """A copy of [key, counter], as a plain array."""
        return np.array(self, dtype=np.uint64)

    def set_state(self, state) -> None:
        """Set [key, counter] from `state` (as `get_state` returned it)."""
        self[...] = np.asarray(state, dtype=np.uint64)


class RandomStateVariable(SharedVariable):
    """A draw's generator state: a shared uint64 vector [key, counter] whose `get_value`
    returns it as a PhiloxState."""

    def __init__(self, value, name: str | None = None, strict: bool = False,
                 allow_downcast: bool | None = None, type: TensorType | None = None):
        value = np.array(value, dtype=np.uint64)
        super().__init__(type or TensorType("uint64", (2,)), value, name=name, strict=strict,
                         allow_downcast=allow_downcast)

    def get_value(self, borrow: bool = False, return_internal_type: bool = False):
        value = super().get_value(borrow, return_internal_type)
        return value.view(PhiloxState) if isinstance(value, np.ndarray) else value

    def set_value(self, value, borrow: bool = False) -> None:
        super().set_value(np.asarray(value) if isinstance(value, np.ndarray) else value, borrow)

    def __reduce__(self):
        """Rebuilt from its plain value, with its default_update."""
        state = {"trace": self.trace, "tag": picklable_tag(self.tag),
                 "default_update": self.default_update}
        return (RandomStateVariable, (np.asarray(self.get_value()), self.name, self.strict,
                                      self.allow_downcast, self.type), state)


class RandomStream:
    """A factory of symbolic random draws (uniform, normal, binomial, ...), seeded once.

    `state_updates` lists (state, update) for every draw made, as Theano's streams do;
    `updates()` returns it.
    """

    def __init__(self, seed: int | None = None):
        self.default_seed = DEFAULT_SEED if seed is None else _check_seed(seed)
        self.state_updates: list[tuple[SharedVariable, TensorVariable]] = []

    # -- states --------------------------------------------------------------------------------
    def _new_state(self) -> SharedVariable:
        """A fresh generator state for the next draw, with its default update."""
        i = len(self.state_updates)
        state = RandomStateVariable(_state_value(self.default_seed, i), name=f"rng_state_{i}")
        state.default_update = rnd.next_state(state)
        self.state_updates.append((state, state.default_update))
        return state

    def seed(self, seed: int | None = None) -> None:
        """Start every draw made so far over from `seed` (default: the stream's own seed, as
        Theano's streams do; draws made later still derive from the stream's seed)."""
        seed = self.default_seed if seed is None else _check_seed(seed)
        for i, (state, _) in enumerate(self.state_updates):
            state.set_value(_state_value(seed, i))

    def _drawn(self, out: TensorVariable) -> TensorVariable:
        """`out`, the draw just made, with Theano's attributes: `rng` (its state) and
        `update` (the state's (variable, advance) pair)."""
        out.update = self.state_updates[-1]
        out.rng = out.update[0]
        return out

    def updates(self) -> list[tuple[SharedVariable, TensorVariable]]:
        """The (state, update) pairs of every draw made so far."""
        return list(self.state_updates)

    # -- draws ---------------------------------------------------------------------------------
    def uniform(self, size=None, low=0.0, high=1.0, ndim: int | None = None,
                dtype: str | None = None) -> TensorVariable:
        """Uniform numbers in [low, high) of shape `size` (default: the broadcast shape of
        low and high)."""
        dtype = _float_dtype(dtype, "uniform", low, high)
        unit = _is(low, 0) and _is(high, 1)
        low, high = _float_param(low, dtype), _float_param(high, dtype)
        size = _size(size, ndim, "uniform", low, high)
        u = _narrow(rnd.uniform01(self._new_state(), size, _draw_dtype(dtype)), dtype)
        return self._drawn(u if unit else low + (high - low) * u)

    def normal(self, size=None, avg=0.0, std=1.0, ndim: int | None = None,
               dtype: str | None = None) -> TensorVariable:
        """Normal numbers of mean `avg` and standard deviation `std`."""
        dtype = _float_dtype(dtype, "normal", avg, std)
        standard = _is(avg, 0) and _is(std, 1)
        avg, std = _float_param(avg, dtype), _float_param(std, dtype)
        size = _size(size, ndim, "normal", avg, std)
        z = _narrow(rnd.standard_normal(self._new_state(), size, _draw_dtype(dtype)), dtype)
        return self._drawn(z if standard else avg + std * z)

    def binomial(self, size=None, n=1, p=0.5, ndim: int | None = None,
                 dtype: str = "int64") -> TensorVariable:
        """The number of successes in `n` trials of probability `p` (n=1: Bernoulli, a
        dropout mask; larger n: `random_binomial`, the inverse CDF of one float64 uniform)."""
        p = check_param(_float_param(p), "probability", "binomial: p")
        n = check_param(int_tensor(n, "binomial: n"), "count", "binomial: n")
        size = _size(size, ndim, "binomial", p, n)
        if getattr(n, "data", None) is not None and int(np.max(n.data, initial=1)) == 1 \
                and int(np.min(n.data, initial=1)) == 1:
            u = rnd.uniform01(self._new_state(), size, _draw_dtype(p.dtype))
            return self._drawn(cast(lt(u, p), dtype))
        return self._drawn(_narrow(binomial_counts(self._new_state(), size, n, p), dtype))

    def random_integers(self, size=None, low=0, high=1, ndim: int | None = None,
                        dtype: str = "int64") -> TensorVariable:
        """Integers between `low` and `high`, both included: low + floor(u * (high - low + 1))
        of one float64 uniform u."""
        low = int_tensor(low, "random_integers: low")
        high = int_tensor(high, "random_integers: high")
        lo, hi = getattr(low, "data", None), getattr(high, "data", None)
        if lo is not None and hi is not None and np.any(np.asarray(lo) > np.asarray(hi)):
            raise graph_error(f"random_integers: low must not exceed high, got low={lo} and "
                              f"high={hi}")
        size = _size(size, ndim, "random_integers", low, high)
        span = check_param(high - low, "count", "random_integers: high - low")
        return self._drawn(_narrow(_integers(self._new_state(), size, low, high, span), dtype))

    def choice(self, size=None, a=2, replace: bool = True, p=None, ndim: int | None = None,
               dtype: str = "int64") -> TensorVariable:
        """Samples of `a` (a vector, or an int meaning range(a)), with or without replacement,
        uniform or with the probabilities `p`; a scalar when size is None."""
        size = _size(() if size is None else size, ndim, "choice")
        a = as_tensor_variable(a)
        if a.ndim > 1:
            raise graph_error(f"choice: a must be an int or a vector, got {a} of type {a.type}")
        n_items = a.shape[0] if a.ndim == 1 else check_param(int_tensor(a, "choice: a"),
                                                              "count", "choice: a")
        if p is None and replace:
            picked = _integers(self._new_state(), size, 0, n_items - 1)
        else:
            if p is not None:
                p = as_tensor_variable(p)
                if p.ndim != 1:
                    raise graph_error(f"choice: p must be a vector, got {p} of type {p.type}")
                known = const_int(n_items)
                if known is not None and p.type.shape[0] not in (None, known):
                    raise graph_error(f"choice: p must have one probability per item of a: "
                                      f"a has {known} items, p has {p.type.shape[0]}")
                if known is None or p.type.shape[0] is None:  # checked at run time
                    p = specify_shape(p, (n_items,))
                picked = self._choice_rows(size, p, replace, "int64")
            else:
                picked = Choice(replace, False)(self._new_state(), size, n_items)
        return self._drawn(_narrow(a[picked] if a.ndim == 1 else picked, dtype))

    def _choice_rows(self, size, p, replace: bool, dtype: str) -> TensorVariable:
        """Indices into the last axis of the probabilities `p`, shape p.shape[:-1] + size
        (one set of samples per row of p)."""
        p = check_param(_float_param(p, "float64"), "pvals", "choice: p")
        return _narrow(Choice(replace, True)(self._new_state(), size, p), dtype)

    def permutation(self, size=None, n=1, ndim: int | None = None,
                    dtype: str = "int64") -> TensorVariable:
        """Permutations of 0 .. n-1, one per element of `size`: shape size + (n,)."""
        size = _size(() if size is None else size, ndim, "permutation")
        n = check_param(int_tensor(n, "permutation: n"), "count", "permutation: n")
        return self._drawn(_narrow(Permutation()(self._new_state(), size, n), dtype))

    def multinomial(self, size=None, n=1, pvals=(0.5, 0.5), ndim: int | None = None,
                    dtype: str = "int64") -> TensorVariable:
        """Counts of `n` trials over the categories of the last axis of `pvals`: shape
        size + (L,), size defaulting to the broadcast shape of n and pvals' rows."""
        pvals = check_param(_float_param(pvals, "float64"), "pvals", "multinomial: pvals")
        n = check_param(int_tensor(n, "multinomial: n"), "count", "multinomial: n")
        if pvals.ndim < 1:
            raise graph_error(f"multinomial: pvals must have at least one dimension, got "
                              f"{pvals} of type {pvals.type}")
        first = pvals[(slice(None),) * (pvals.ndim - 1) + (0,)]
        size = _size(size, ndim, "multinomial", n, first)
        return self._drawn(_narrow(Multinomial()(self._new_state(), size, n, pvals), dtype))


def _integers(state, size, low, high, span=None) -> TensorVariable:
    """low + floor(u * (span + 1)) (int64), u a float64 uniform, never above high; `span` is
    high - low (checked by the caller, or computed here)."""
    low, high = as_tensor_variable(low), as_tensor_variable(high)
    span = high - low if span is None else span
    u = rnd.uniform01(state, size, "float64")
    return minimum(low + cast(floor(u * cast(span + 1, "float64")), "int64"), high)


def _float_param(v, dtype: str | None = None) -> TensorVariable:
    """`v` as a float tensor: of `dtype` when given; a Python float in floatX (Theano's
    autocast, so `p=0.5` draws floatX uniforms)."""
    if dtype is None and isinstance(v, float):
        dtype = config.floatX
    v = as_tensor_variable(v)
    if dtype is not None:
        return _narrow(v, dtype)
    return v if v.dtype.startswith("float") else cast(v, config.floatX)


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"random stream: seed must be an int, got {type(seed).__name__} "
                        f"{seed!r}")
    return int(seed)


def _state_value(seed: int, i: int) -> np.ndarray:
    return np.array([philox.seed_key(seed, i), 0], dtype=np.uint64)


def _float_dtype(dtype: str | None, what: str, *params) -> str:
    """`dtype`, or by default floatX upcast with the dtypes of the symbolic `params` (as
    Theano: Python numbers do not widen a draw)."""
    if dtype is None:
        dtypes = [p.dtype for p in params if isinstance(p, TensorVariable)]
        dtype = str(np.result_type(config.floatX, *dtypes))
    dtype = str(np.dtype(dtype))
    if dtype not in ("float16", "float32", "float64"):
        raise graph_error(f"{what}: dtype must be a float dtype, got {dtype!r}")
    return dtype


def _draw_dtype(dtype: str) -> str:
    """The dtype a draw is made in: float16 numbers are float32 draws, rounded."""
    return "float64" if dtype == "float64" else "float32"


def _is(v, number: float) -> bool:
    """True for a Python number equal to `number` (a default left as it is)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == number


def _narrow(x: TensorVariable, dtype: str) -> TensorVariable:
    return x if x.dtype == dtype else cast(x, dtype)


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
    if n is None and ndim is not None and isinstance(size, TensorVariable) and \
            size.ndim == 1 and size.type.shape[0] is None:  # a vector of ndim lengths
        size = specify_shape(size, (ndim,))
    return size
