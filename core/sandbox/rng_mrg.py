"""Theano's `theano.sandbox.rng_mrg.MRG_RandomStreams`, so that ported programs (the
DeepLearningTutorials' dA, SdA, rbm, DBN ...) import it unchanged.

The draws are theanine's counter-based Philox ones (theanine.random_streams), not MRG31k3p:
the same seed gives other numbers than Theano, the same numbers on every backend. MRG's
keyword arguments are accepted: `nstreams` (a counter-based generator needs no stream count)
and `target`; `normal(truncate=True)` and `truncated_normal` truncate at two standard
deviations; `multinomial` and `choice` take a matrix of probabilities, one distribution a row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import graph_error
from theanine.random_streams import RandomStream
from theanine.tensor import philox
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import abs as abs_
from theanine.tensor.math import clip, le, switch
from theanine.tensor.variable import TensorVariable

__all__ = ["MRG_RandomStreams"]

TRUNCATE_AT = 2.0  # standard deviations, as Theano
TRUNCATED_STD = 0.87962566103423978  # the std of a standard normal truncated to [-2, 2]
TRUNCATE_TRIES = 6  # draws tried before the last is clipped (P(all outside) ~ 1e-8)
_MRG_KWARGS = ("target",)


class MRG_RandomStreams(RandomStream):  # noqa: N801 (Theano's name)
    """Theano 1.0's MRG_RandomStreams(seed=12345) over counter-based draws. `seed` may be an
    int or, as in Theano, a sequence of six ints."""

    def __init__(self, seed: int | Sequence[int] = 12345):
        super().__init__(_fold_seed(seed))

    def seed(self, seed: int | Sequence[int] | None = None) -> None:
        """Start every draw over from `seed` (default: the stream's seed)."""
        super().seed(None if seed is None else _fold_seed(seed))

    def uniform(self, size, low=0.0, high=1.0, ndim: int | None = None,
                dtype: str | None = None, nstreams=None, **kwargs) -> TensorVariable:
        """Uniform numbers in [low, high) of shape `size`."""
        _check_kwargs("uniform", kwargs)
        return super().uniform(size, low, high, ndim, dtype)

    def binomial(self, size=None, n=1, p=0.5, ndim: int | None = None, dtype: str = "int64",
                 nstreams=None, **kwargs) -> TensorVariable:
        """Successes in `n` trials of probability `p`."""
        _check_kwargs("binomial", kwargs)
        return super().binomial(size, n, p, ndim, dtype)

    def normal(self, size, avg=0.0, std=1.0, ndim: int | None = None,
               dtype: str | None = None, nstreams=None, truncate: bool = False,
               **kwargs) -> TensorVariable:
        """Normal numbers of mean `avg` and standard deviation `std`; with `truncate`, only
        values within two standard deviations (the first of several draws that is)."""
        _check_kwargs("normal", kwargs)
        if not truncate:
            return super().normal(size, avg, std, ndim, dtype)
        z = super().normal(size, 0.0, 1.0, ndim, dtype)
        for _ in range(TRUNCATE_TRIES - 1):
            other = super().normal(size, 0.0, 1.0, ndim, dtype)
            z = switch(le(abs_(z), TRUNCATE_AT), z, other)
        z = clip(z, -TRUNCATE_AT, TRUNCATE_AT)
        out = as_tensor_variable(avg).astype(z.dtype) + as_tensor_variable(std).astype(z.dtype) * z
        return self._drawn(out)

    def truncated_normal(self, size, avg=0.0, std=1.0, ndim: int | None = None,
                         dtype: str | None = None, nstreams=None, **kwargs) -> TensorVariable:
        """Normal numbers truncated to two standard deviations, scaled so that their standard
        deviation is `std`."""
        return self.normal(size, avg, as_tensor_variable(std) / TRUNCATED_STD, ndim, dtype,
                           nstreams, truncate=True, **kwargs)

    def multinomial(self, size=None, n=1, pvals=None, ndim: int | None = None,
                    dtype: str = "int64", nstreams=None, **kwargs) -> TensorVariable:
        """Counts of `n` trials over the columns of each row of the matrix `pvals`: the
        shape of pvals (MRG's form: size and ndim are not used)."""
        _check_kwargs("multinomial", kwargs)
        pvals = _prob_matrix(pvals, "multinomial", "pvals", size, ndim)
        return super().multinomial(pvals.shape[:1], n, pvals, None, dtype)

    def choice(self, size=1, a=None, replace: bool = True, p=None, ndim: int | None = None,
               dtype: str = "int64", nstreams=None, **kwargs) -> TensorVariable:
        """`size` column indices of each row of the probability matrix `p`, without
        replacement (Theano's only form) or with it: shape (rows of p, size)."""
        _check_kwargs("choice", kwargs)
        if a is not None:
            raise graph_error("MRG_RandomStreams.choice: a must be None (the samples are "
                              "column indices of p)")
        p = _prob_matrix(p, "choice", "p", None, ndim)
        return self._drawn(self._choice_rows(size, p, replace, dtype))

    def multinomial_wo_replacement(self, size=None, n=1, pvals=None, ndim: int | None = None,
                                   dtype: str = "int64", nstreams=None,
                                   **kwargs) -> TensorVariable:
        """Theano's older name of `choice(size=n, p=pvals, replace=False)`."""
        if size is not None:
            raise graph_error("MRG_RandomStreams.multinomial_wo_replacement: size must be None")
        return self.choice(n, None, False, pvals, ndim, dtype, nstreams, **kwargs)


def _fold_seed(seed) -> int:
    """An int seed, or a sequence of ints (MRG's six-int state) folded into one."""
    if isinstance(seed, (list, tuple, np.ndarray)):
        folded = 0
        for v in np.asarray(seed).reshape(-1):
            folded = philox.seed_key(folded, int(v))
        return folded
    return seed


def _check_kwargs(what: str, kwargs: dict) -> None:
    unknown = sorted(k for k in kwargs if k not in _MRG_KWARGS)
    if unknown:
        raise TypeError(f"MRG_RandomStreams.{what}() got unexpected keyword arguments "
                        f"{unknown}")


def _prob_matrix(p, what: str, name: str, size, ndim) -> TensorVariable:
    if p is None:
        raise TypeError(f"MRG_RandomStreams.{what}: {name} must be given")
    if size is not None or ndim is not None:
        raise graph_error(f"MRG_RandomStreams.{what}: size and ndim are not used (the shape "
                          f"comes from {name}); got size={size!r}, ndim={ndim!r}")
    p = as_tensor_variable(p)
    if p.ndim != 2:
        raise graph_error(f"MRG_RandomStreams.{what}: {name} must be a matrix (one "
                          f"distribution a row), got {p} of type {p.type}")
    return p
