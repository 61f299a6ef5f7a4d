"""Batch normalization (Theano 1.0's `theano.tensor.nnet.bn`): training and inference forms, and
the older `batch_normalization`.

Each is a graph of elementwise ops and reductions, so it fuses into the kernels around it on
every backend and its gradients (to the inputs, gamma and beta, through the batch statistics)
come from those ops' own."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.broadcasting import addbroadcast
from theanine.tensor.math import cast, sqrt
from theanine.tensor.reduction import mean as mean_
from theanine.tensor.reduction import var as var_
from theanine.tensor.variable import TensorVariable


def batch_normalization(inputs, gamma, beta, mean, std, mode: str = "low_mem"
                        ) -> TensorVariable:
    """(inputs - mean) * (gamma / std) + beta, elementwise with broadcasting; `mode`
    ('low_mem' or 'high_mem') is accepted for Theano's sake and changes nothing here."""
    if mode not in ("low_mem", "high_mem"):
        raise graph_error(f"batch_normalization: mode must be 'low_mem' or 'high_mem', got "
                          f"{mode!r}")
    inputs, gamma, beta, mean, std = (as_tensor_variable(v)
                                      for v in (inputs, gamma, beta, mean, std))
    return (inputs - mean) * (gamma / std) + beta


def _axes(axes, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(normalized axes, the other axes) for 'per-activation', 'spatial' or a tuple."""
    if axes == "per-activation":
        axes = (0,)
    elif axes == "spatial":
        axes = (0,) + tuple(range(2, ndim))
    elif isinstance(axes, (tuple, list, np.ndarray)) and all(
            isinstance(a, (int, np.integer)) and -ndim <= a < ndim for a in axes):
        axes = tuple(sorted({int(a) % ndim for a in axes}))
    else:
        raise graph_error(f"batch normalization: axes must be 'per-activation', 'spatial' or a "
                          f"tuple of axes of the {ndim}-d input, got {axes!r}")
    return axes, tuple(a for a in range(ndim) if a not in axes)


def _check_epsilon(epsilon: float) -> None:
    if not epsilon >= 1e-5:
        raise graph_error(f"batch normalization: epsilon must be at least 1e-5, got {epsilon!r}")


def _params(values: dict, ndim: int, axes: tuple, kept: tuple) -> tuple[list, int]:
    """The parameters (gamma, beta, running statistics) broadcast against the input: each has
    either the input's rank or one axis per non-normalized axis."""
    out, params_ndim = [], None
    for name, v in values.items():
        v = as_tensor_variable(v)
        if v.ndim not in (ndim, len(kept)):
            raise graph_error(f"batch normalization: {name} must have {len(kept)} dims (one per "
                              f"non-normalized axis) or {ndim} (the input's), got {v} with "
                              f"{v.ndim} dims")
        if params_ndim is not None and v.ndim != params_ndim:
            raise graph_error(f"batch normalization: {name} has {v.ndim} dims but the other "
                              f"parameters have {params_ndim}")
        params_ndim = v.ndim
        if v.ndim == ndim:
            out.append(addbroadcast(v, *axes))
        else:
            pattern = ["x"] * ndim
            for i, a in enumerate(kept):
                pattern[a] = i
            out.append(v.dimshuffle(*pattern))
    return out, params_ndim


def batch_normalization_train(inputs, gamma, beta, axes="per-activation", epsilon=1e-4,
                              running_average_factor=0.1, running_mean=None, running_var=None
                              ) -> tuple:
    """Normalize `inputs` by their mean and variance over `axes`, then scale by gamma and shift
    by beta. Returns (out, mean, invstd), plus the updated running mean and (unbiased) variance
    when `running_mean` and `running_var` are given, as Theano 1.0 does."""
    inputs = as_tensor_variable(inputs)
    ndim = inputs.ndim
    axes, kept = _axes(axes, ndim)
    _check_epsilon(epsilon)
    if (running_mean is None) != (running_var is None):
        raise graph_error("batch_normalization_train: give both running_mean and running_var, "
                          "or neither")
    values = {"gamma": gamma, "beta": beta}
    if running_mean is not None:
        values.update(running_mean=running_mean, running_var=running_var)
    params, params_ndim = _params(values, ndim, axes, kept)
    gamma, beta = params[:2]
    mean = mean_(inputs, axis=axes, keepdims=True)
    var = var_(inputs, axis=axes, keepdims=True)
    invstd = 1 / sqrt(var + np.asarray(epsilon, inputs.dtype))
    out = (inputs - mean) * gamma * invstd + beta
    results = [out, mean, invstd]
    if running_mean is not None:
        rm, rv = params[2:]
        factor = np.asarray(running_average_factor, inputs.dtype)
        m = cast(inputs.size // mean.size, inputs.dtype)
        results.append(rm * (1 - factor) + mean * factor)
        results.append(rv * (1 - factor) + (m / (m - 1)) * var * factor)
    if params_ndim != ndim:  # statistics come back with the parameters' axes
        results[1:] = [r.dimshuffle(*kept) for r in results[1:]]
    return tuple(results)


def batch_normalization_test(inputs, gamma, beta, mean, var, axes="per-activation",
                             epsilon=1e-4) -> TensorVariable:
    """Normalize `inputs` by given statistics (mean, var): (inputs - mean) * gamma /
    sqrt(var + epsilon) + beta, as Theano 1.0's inference form."""
    inputs = as_tensor_variable(inputs)
    axes, kept = _axes(axes, inputs.ndim)
    _check_epsilon(epsilon)
    (gamma, beta, mean, var), _ = _params(
        {"gamma": gamma, "beta": beta, "mean": mean, "var": var}, inputs.ndim, axes, kept)
    return (inputs - mean) * gamma / sqrt(var + np.asarray(epsilon, inputs.dtype)) + beta


__all__ = ["batch_normalization", "batch_normalization_train", "batch_normalization_test"]
