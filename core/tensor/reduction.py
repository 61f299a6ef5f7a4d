"""Reductions over axes: sum, prod, max, min, all, any (one `Reduce` op), argmax/argmin (one
`ArgReduce` op), and mean, var, std, logsumexp built as graphs of those and elementwise ops.

The ops always drop the reduced axes; `keepdims=True` re-inserts them with a DimShuffle, so a
gradient only ever sees the reduced shape. Result dtypes follow NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor import math as tm
from theanine.tensor.basic import as_tensor_variable, weak_constant
from theanine.tensor.elemwise import dimshuffle
from theanine.tensor.type import DISCRETE_DTYPES, TensorType, normalize_dtype
from theanine.tensor.variable import TensorVariable

Axis = int | Sequence[int] | None

_UFUNCS = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum,
           "all": np.logical_and, "any": np.logical_or}


def normalize_axes(x: TensorVariable, axis: Axis, fname: str) -> tuple[int, ...]:
    """`axis` (None, an int or a sequence, negatives allowed) as a sorted tuple of axes of x;
    a bad or repeated axis raises a GraphError naming x, its ndim and the axis."""
    if axis is None:
        return tuple(range(x.ndim))
    many = isinstance(axis, (tuple, list))
    axes = list(axis) if many else [axis]
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise graph_error(f"{fname}: axis must be None, an int or a tuple of ints, got "
                              f"{axis!r}")
        if not -x.ndim <= a < x.ndim:
            raise graph_error(f"{fname}: axis {axis!r} is out of range for {x}, which has "
                              f"{x.ndim} dimensions (type {x.type})")
        out.append(int(a) % x.ndim)
    if len(set(out)) != len(out):
        raise graph_error(f"{fname}: axis {axis!r} repeats an axis of {x} ({x.ndim} dims)")
    return tuple(sorted(out))


def expand_reduced(g: TensorVariable, axes: tuple[int, ...], ndim: int) -> TensorVariable:
    """Re-insert the reduced `axes` (length 1) into `g`, giving it `ndim` dimensions."""
    pattern, k = [], 0
    for i in range(ndim):
        if i in axes:
            pattern.append("x")
        else:
            pattern.append(k)
            k += 1
    return dimshuffle(g, pattern)


def _keep(out: TensorVariable, axes: tuple[int, ...], ndim: int, keepdims: bool):
    return expand_reduced(out, axes, ndim) if keepdims else out


class Reduce(Op):
    """Reduce x over `axes` (sorted, non-negative) with `kind` in sum, prod, max, min, all, any;
    `dtype` is the output (and accumulation) dtype."""

    __props__ = ("kind", "axes", "dtype")

    def __init__(self, kind: str, axes: tuple[int, ...], dtype: str):
        if kind not in _UFUNCS:
            raise ValueError(f"Reduce: unknown kind {kind!r}; expected one of {list(_UFUNCS)}")
        self.kind = kind
        self.axes = tuple(axes)
        self.dtype = dtype

    def __str__(self):
        return f"{self.kind.capitalize()}{{axes={self.axes}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        shape = tuple(s for i, s in enumerate(x.type.shape) if i not in self.axes)
        return Apply(self, [x], [TensorType(self.dtype, shape)()])

    def perform(self, node, inputs):
        return (np.asarray(self.py_fn(node)(inputs[0]), dtype=self.dtype),)

    def py_fn(self, node):
        reduce, axes = _UFUNCS[self.kind].reduce, self.axes
        if self.kind in ("sum", "prod"):
            dtype = np.dtype(self.dtype)
            return lambda x: reduce(x, axis=axes, dtype=dtype)
        if self.kind in ("all", "any"):
            return lambda x: reduce(x, axis=axes)

        def reduce_nonempty(x):
            try:
                return reduce(x, axis=axes)
            except ValueError:
                raise ValueError(f"{self}: cannot take the {self.kind} over an empty axis of an "
                                 f"input with shape {np.shape(x)}") from None

        return reduce_nonempty

    def pullback(self, node, inputs, outputs, output_grads):
        (x,), (z,), (gz,) = inputs, outputs, output_grads
        if self.kind in ("all", "any") or x.dtype in DISCRETE_DTYPES:
            return [None]
        g = expand_reduced(gz, self.axes, x.ndim)
        if self.kind == "sum":
            return [tm.second(x, g)]
        zx = expand_reduced(z, self.axes, x.ndim)
        if self.kind in ("max", "min"):
            # every position equal to the extreme gets the gradient (ties all receive it)
            return [tm.switch(tm.eq(x, zx), g, 0)]
        return [_prod_grad(x, g, self.axes)]

    def infer_shape(self, node, input_shapes):
        return [tuple(s for i, s in enumerate(input_shapes[0]) if i not in self.axes)]


def _prod_grad(x, g, axes):
    """d prod / dx, exact with zeros: with no zero in a slice it is prod/x; with exactly one, only
    the zero's position gets the product of the others; with more, everything is 0."""
    is_zero = tm.eq(x, 0)
    x_safe = tm.switch(is_zero, 1, x)
    nz_prod = expand_reduced(prod(x_safe, axes), axes, x.ndim)
    n_zero = expand_reduced(sum(is_zero, axes), axes, x.ndim)
    no_zero = g * nz_prod / x_safe
    one_zero = tm.switch(tm.and_(is_zero, tm.eq(n_zero, 1)), g * nz_prod, 0)
    return tm.switch(tm.eq(n_zero, 0), no_zero, one_zero)


class ArgReduce(Op):
    """Index of the max (`kind='argmax'`) or min over `axes`, as int64. With several axes the
    index is into those axes flattened in order (C order), as Theano does; the first extreme
    wins ties."""

    __props__ = ("kind", "axes")

    def __init__(self, kind: str, axes: tuple[int, ...]):
        if kind not in ("argmax", "argmin"):
            raise ValueError(f"ArgReduce: kind must be 'argmax' or 'argmin', got {kind!r}")
        self.kind = kind
        self.axes = tuple(axes)

    def __str__(self):
        return f"{self.kind.capitalize()}{{axes={self.axes}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        shape = tuple(s for i, s in enumerate(x.type.shape) if i not in self.axes)
        return Apply(self, [x], [TensorType("int64", shape)()])

    def perform(self, node, inputs):
        return (np.asarray(self.py_fn(node)(inputs[0]), dtype=np.int64),)

    def py_fn(self, node):
        fn, axes, ndim = getattr(np, self.kind), self.axes, node.inputs[0].ndim
        keep = [i for i in range(ndim) if i not in axes]

        def arg_reduce(x):
            x = np.asarray(x)
            try:
                if len(axes) == ndim:
                    return np.int64(fn(x))
                if len(axes) == 1:
                    return fn(x, axis=axes[0])
                moved = x.transpose(keep + list(axes))
                return fn(moved.reshape(moved.shape[:len(keep)] + (-1,)), axis=-1)
            except ValueError:
                raise ValueError(f"{self}: cannot take the {self.kind} over an empty axis of "
                                 f"an input with shape {x.shape}") from None

        return arg_reduce

    def pullback(self, node, inputs, outputs, output_grads):
        return [None]

    def infer_shape(self, node, input_shapes):
        return [tuple(s for i, s in enumerate(input_shapes[0]) if i not in self.axes)]


def _reduce(kind: str, x, axis: Axis, keepdims: bool, dtype=None) -> TensorVariable:
    x = as_tensor_variable(x)
    axes = normalize_axes(x, axis, kind)
    if dtype is not None:
        dtype = normalize_dtype(dtype)
    elif kind in ("all", "any"):
        dtype = "bool"
    elif kind in ("max", "min"):
        dtype = x.dtype
    else:
        dtype = _UFUNCS[kind].reduce(np.zeros(1, x.dtype)).dtype.name
    return _keep(Reduce(kind, axes, dtype)(x), axes, x.ndim, keepdims)


def sum(x, axis: Axis = None, keepdims: bool = False, dtype=None) -> TensorVariable:
    """Sum over `axis` (all axes when None); ints accumulate in int64/uint64 as in NumPy."""
    return _reduce("sum", x, axis, keepdims, dtype)


def prod(x, axis: Axis = None, keepdims: bool = False, dtype=None) -> TensorVariable:
    """Product over `axis`; its gradient is exact when the input holds zeros."""
    return _reduce("prod", x, axis, keepdims, dtype)


def max(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """Maximum over `axis`; the gradient goes to every position equal to the maximum."""
    return _reduce("max", x, axis, keepdims)


def min(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """Minimum over `axis`; the gradient goes to every position equal to the minimum."""
    return _reduce("min", x, axis, keepdims)


def all(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """True where every element over `axis` is nonzero (bool; no gradient)."""
    return _reduce("all", x, axis, keepdims)


def any(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """True where some element over `axis` is nonzero (bool; no gradient)."""
    return _reduce("any", x, axis, keepdims)


def _arg(kind: str, x, axis: Axis, keepdims: bool) -> TensorVariable:
    x = as_tensor_variable(x)
    axes = normalize_axes(x, axis, kind)
    return _keep(ArgReduce(kind, axes)(x), axes, x.ndim, keepdims)


def argmax(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """int64 index of the (first) maximum over `axis`; over all axes, a flat index."""
    return _arg("argmax", x, axis, keepdims)


def argmin(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """int64 index of the (first) minimum over `axis`; over all axes, a flat index."""
    return _arg("argmin", x, axis, keepdims)


def _float_dtypes(dtype: str) -> tuple[str, str]:
    """(compute dtype, result dtype) of mean/var for an input dtype, as NumPy picks them."""
    if dtype in DISCRETE_DTYPES:
        return "float64", "float64"
    if dtype == "float16":
        return "float32", "float16"
    return dtype, dtype


def _divide_by_count(s: TensorVariable, x: TensorVariable, axes: tuple[int, ...],
                     ddof: float = 0) -> TensorVariable:
    """s / (number of elements of x in `axes` - ddof): a constant when the static shape knows
    the lengths, else a product of run-time axis lengths."""
    from theanine.tensor.shape_ops import entry_prod, shape_tuple

    shp = shape_tuple(x)
    count = entry_prod([shp[a] for a in axes])
    if isinstance(count, int):
        return s / weak_constant(count - ddof, s)
    if ddof:
        count = count - ddof
    return s / tm.cast(count, s.dtype)


def mean(x, axis: Axis = None, keepdims: bool = False, dtype=None) -> TensorVariable:
    """Arithmetic mean over `axis`: float64 for integer input, float16 computed in float32;
    `dtype` (Theano's and NumPy's argument) sets the float dtype it is computed and returned in
    (an integer `dtype` gives float64, as Theano's true division of its sum does)."""
    x = as_tensor_variable(x)
    axes = normalize_axes(x, axis, "mean")
    compute, result = _float_dtypes(x.dtype if dtype is None else str(np.dtype(dtype)))
    m = tm.cast(_divide_by_count(sum(x, axes, dtype=compute), x, axes), result)
    return _keep(m, axes, x.ndim, keepdims)


def var(x, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> TensorVariable:
    """Variance over `axis` with `ddof` delta degrees of freedom (NumPy's np.var)."""
    x = as_tensor_variable(x)
    axes = normalize_axes(x, axis, "var")
    compute, result = _float_dtypes(x.dtype)
    xc = tm.cast(x, compute)
    d = xc - expand_reduced(mean(xc, axes), axes, x.ndim)
    sq = tm.sqr(tm.abs(d)) if compute.startswith("complex") else tm.sqr(d)
    v = _divide_by_count(sum(sq, axes), x, axes, ddof)
    result = np.empty(0, result).real.dtype.name
    return _keep(tm.cast(v, result), axes, x.ndim, keepdims)


def std(x, axis: Axis = None, keepdims: bool = False, ddof: float = 0) -> TensorVariable:
    """Standard deviation over `axis`: sqrt(var(x, axis, ddof=ddof))."""
    x = as_tensor_variable(x)
    return tm.sqrt(var(x, normalize_axes(x, axis, "std"), keepdims, ddof))


def logsumexp(x, axis: Axis = None, keepdims: bool = False) -> TensorVariable:
    """log(sum(exp(x))) over `axis`, computed as m + log(sum(exp(x - m))) with m the max, so
    large inputs do not overflow; all -inf slices give -inf."""
    from theanine.gradient import zero_grad

    x = as_tensor_variable(x)
    axes = normalize_axes(x, axis, "logsumexp")
    m = max(x, axes)
    # the shift cancels exactly, so it carries no gradient; an infinite max shifts by 0
    m = zero_grad(tm.switch(tm.isinf(m), 0, m))
    out = tm.log(sum(tm.exp(x - expand_reduced(m, axes, x.ndim)), axes)) + m
    return _keep(out, axes, x.ndim, keepdims)


__all__ = ["sum", "prod", "mean", "var", "std", "max", "min", "argmax", "argmin", "all", "any",
           "logsumexp"]
