"""NumPy array functions Theano programs call (Theano's `T.eye`, `T.tril`, `T.tile`,
`T.extra_ops.cumsum`, ...), built from theanine's ops, so every backend runs them and they have
gradients: masks from aranges, tiling by broadcast and reshape, and the running sums and
products as scans (`theanine.scan_module`), one step per element of the axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.config import config
from theanine.graph.basic import graph_error
from theanine.tensor.allocation import alloc, arange, broadcast_to, zeros
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.elemwise import dimshuffle
from theanine.tensor.join import concatenate
from theanine.tensor.math import cast, eq, ge, minimum, switch
from theanine.tensor.shape_ops import flatten, normalize_axis, reshape
from theanine.tensor.subtensor import set_subtensor
from theanine.tensor.variable import TensorVariable


def _mask(n, m, k, test) -> TensorVariable:
    """test(column - row, k) over an n x m grid, as a boolean matrix."""
    m = n if m is None else m
    rows = dimshuffle(arange(n), (0, "x"))
    cols = dimshuffle(arange(m), ("x", 0))
    return test(cols - rows, k)


def eye(n, m=None, k: int = 0, dtype=None) -> TensorVariable:
    """An n x m matrix of ones on diagonal `k`, zeros elsewhere (np.eye); n, m may be symbolic."""
    return cast(_mask(n, m, k, eq), dtype or config.floatX)


def identity_like(x) -> TensorVariable:
    """The identity matrix of x's shape and dtype."""
    x = as_tensor_variable(x)
    return eye(x.shape[0], x.shape[1], dtype=x.dtype)


def tri(n, m=None, k: int = 0, dtype=None) -> TensorVariable:
    """Ones at and below diagonal `k` (np.tri)."""
    return cast(_mask(n, m, k, lambda d, kk: ge(kk, d)), dtype or config.floatX)


def tril(x, k: int = 0) -> TensorVariable:
    """x with the entries above diagonal `k` of its last two axes zeroed (np.tril)."""
    x = as_tensor_variable(x)
    keep = _mask(x.shape[-2], x.shape[-1], k, lambda d, kk: ge(kk, d))
    return switch(keep, x, as_tensor_variable(np.zeros((), x.dtype)))


def triu(x, k: int = 0) -> TensorVariable:
    """x with the entries below diagonal `k` of its last two axes zeroed (np.triu)."""
    x = as_tensor_variable(x)
    drop = _mask(x.shape[-2], x.shape[-1], k - 1, lambda d, kk: ge(kk, d))
    return switch(drop, as_tensor_variable(np.zeros((), x.dtype)), x)


def diag(v, k: int = 0) -> TensorVariable:
    """np.diag: a vector's square matrix with it on diagonal `k`, or a matrix's diagonal `k`."""
    v = as_tensor_variable(v)
    k = int(k)
    if v.ndim == 1:
        n = v.shape[0]
        i = arange(n)
        rows, cols = (i, i + k) if k >= 0 else (i - k, i)
        size = n + abs(k)
        return set_subtensor(zeros((size, size), dtype=v.dtype)[rows, cols], v)
    if v.ndim == 2:
        r, c = v.shape[0], v.shape[1]
        length = minimum(r, c - k) if k >= 0 else minimum(r + k, c)
        i = arange(length)
        return v[i, i + k] if k >= 0 else v[i - k, i]
    raise graph_error(f"diag: expected a vector or a matrix, got {v} with {v.ndim} dims")


def tile(x, reps: Sequence[int]) -> TensorVariable:
    """x repeated `reps[i]` times along each axis (np.tile), as broadcast then reshape."""
    x = as_tensor_variable(x)
    reps = [int(r) for r in (reps if isinstance(reps, (list, tuple)) else [reps])]
    if any(r < 0 for r in reps):
        raise graph_error(f"tile: repetitions must be >= 0, got {reps}")
    nd = max(x.ndim, len(reps))
    x = dimshuffle(x, ["x"] * (nd - x.ndim) + list(range(x.ndim)))
    reps = [1] * (nd - len(reps)) + reps
    pattern, big, out = [], [], []
    for i, r in enumerate(reps):
        pattern += ["x", i]
        big += [r, x.shape[i]]
        out.append(x.shape[i] * r)
    return reshape(broadcast_to(dimshuffle(x, pattern), big), out)


def repeat(x, repeats: int, axis: int | None = None) -> TensorVariable:
    """Each element of x `repeats` times along `axis` (flattened when None), as np.repeat with
    a single count."""
    x = as_tensor_variable(x)
    if not isinstance(repeats, (int, np.integer)) or repeats < 0:
        raise graph_error(f"repeat: `repeats` must be one int >= 0 (per-element counts are not "
                          f"supported), got {repeats!r}")
    if axis is None:
        x, axis = flatten(x), 0
    axis = normalize_axis(axis, x.ndim, "repeat", x)
    pattern = list(range(axis + 1)) + ["x"] + list(range(axis + 1, x.ndim))
    big = [x.shape[i] for i in range(axis + 1)] + [int(repeats)] + [
        x.shape[i] for i in range(axis + 1, x.ndim)]
    out = [x.shape[i] * int(repeats) if i == axis else x.shape[i] for i in range(x.ndim)]
    return reshape(broadcast_to(dimshuffle(x, pattern), big), out)


def roll(x, shift, axis: int | None = None) -> TensorVariable:
    """x shifted circularly by `shift` (an int or int scalar) along `axis` (np.roll; over the
    flattened array when None)."""
    x = as_tensor_variable(x)
    if axis is None:
        return reshape(roll(flatten(x), shift, 0), x.shape)
    axis = normalize_axis(axis, x.ndim, "roll", x)
    n = x.shape[axis]
    cut = n - as_tensor_variable(shift) % n
    head = [slice(None)] * axis
    return concatenate([x[tuple(head + [slice(cut, None)])],
                        x[tuple(head + [slice(None, cut)])]], axis=axis)


def _running(x, axis, step, name: str) -> TensorVariable:
    """Running reduction of x along `axis` by a scan whose state is the partial result."""
    from theanine.scan_module import scan

    x = as_tensor_variable(x)
    dtype = str(getattr(np, name)(np.zeros(1, x.dtype)).dtype)
    x = cast(x, dtype)
    if axis is None:
        x, axis = flatten(x), 0
    axis = normalize_axis(axis, x.ndim, name, x)
    order = [axis] + [i for i in range(x.ndim) if i != axis]
    xt = dimshuffle(x, order)
    start = alloc(as_tensor_variable(np.array(0 if name == "cumsum" else 1, dtype)),
                  *[xt.shape[i] for i in range(1, xt.ndim)])
    out, _ = scan(step, sequences=xt, outputs_info=start, name=name)
    return dimshuffle(out, [order.index(i) for i in range(x.ndim)])


def cumsum(x, axis: int | None = None) -> TensorVariable:
    """Running sum along `axis` (np.cumsum; over the flattened array when None)."""
    return _running(x, axis, lambda xi, acc: acc + xi, "cumsum")


def cumprod(x, axis: int | None = None) -> TensorVariable:
    """Running product along `axis` (np.cumprod; over the flattened array when None)."""
    return _running(x, axis, lambda xi, acc: acc * xi, "cumprod")


__all__ = ["cumprod", "cumsum", "diag", "eye", "identity_like", "repeat", "roll", "tile",
           "tri", "tril", "triu"]
