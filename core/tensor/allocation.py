"""Filling ops: alloc, broadcast_to, zeros and ones (Alloc) and arange (ARange)."""

from __future__ import annotations

import math as _pymath
from collections.abc import Sequence

import numpy as np

from theanine.config import config
from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable, constant
from theanine.tensor.elemwise import reduce_to_shape_of
from theanine.tensor.shape_ops import (
    _fill,
    _pattern,
    _run_error,
    _symbolic,
    as_entry,
    shape_entries,
    shape_tuple,
)
from theanine.tensor.type import DISCRETE_DTYPES, TensorType, format_shape, normalize_dtype
from theanine.tensor.variable import TensorConstant, TensorVariable


class Alloc(Op):
    """alloc(value, *shape): a new array of `shape` filled with `value` broadcast to it.

    `pattern` holds the known lengths (None where the length is an extra input)."""

    __props__ = ("pattern",)

    def __init__(self, pattern: Sequence[int | None]):
        self.pattern = tuple(pattern)

    def make_node(self, value, *entries):
        value = as_tensor_variable(value)
        entries = [as_tensor_variable(e) for e in entries]
        n = len(self.pattern)
        if any(p is not None and p < 0 for p in self.pattern):
            raise graph_error(f"alloc: shape entries must be >= 0, got {self.pattern}")
        if value.ndim > n:
            raise self._bad(value)
        out = list(self.pattern)
        for i, v in enumerate(value.type.shape):
            d = n - value.ndim + i
            if v is not None and v != 1:
                if out[d] is not None and out[d] != v:
                    raise self._bad(value)
                out[d] = v
        return Apply(self, [value, *entries], [TensorType(value.dtype, out)()])

    def _bad(self, value):
        target = format_shape(tuple("?" if p is None else p for p in self.pattern))
        return graph_error(f"alloc: cannot broadcast {value} of static shape "
                           f"{format_shape(value.type.shape)} to shape {target}")

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)

    def py_fn(self, node):
        pattern, dtype = self.pattern, node.outputs[0].type.numpy_dtype

        def alloc_(value, *entries):
            shp = _fill(pattern, entries)
            try:
                out = np.empty(shp, dtype=dtype)
                out[...] = value
            except ValueError as e:
                raise _run_error(e, f"alloc of shape {shp} from a value of shape "
                                    f"{np.shape(value)}") from None
            return out

        return alloc_

    def pullback(self, node, inputs, outputs, output_grads):
        value = inputs[0]
        gv = None if value.dtype in DISCRETE_DTYPES else \
            reduce_to_shape_of(output_grads[0], value)
        return [gv] + [None] * (len(inputs) - 1)

    def infer_shape(self, node, input_shapes):
        static = node.outputs[0].type.shape
        entries = _symbolic(self.pattern, node.inputs[1:])
        return [tuple(s if s is not None else e for s, e in zip(static, entries, strict=True))]


def alloc(value, *shape) -> TensorVariable:
    """A new array of `shape` (ints or int scalars) filled with `value` (Theano's alloc)."""
    entries = [as_entry(e, "alloc") for e in shape]
    pattern, sym = _pattern(entries)
    return Alloc(pattern)(as_tensor_variable(value), *sym)


def broadcast_to(x, shape) -> TensorVariable:
    """x broadcast to `shape` (numpy.broadcast_to), as a new array."""
    return alloc(x, *shape_entries(shape, "broadcast_to"))


def zeros(shape, dtype=None) -> TensorVariable:
    """An array of zeros of `shape` (dtype defaults to config.floatX)."""
    dtype = normalize_dtype(dtype or config.floatX)
    return alloc(constant(np.zeros((), dtype=dtype)), *shape_entries(shape, "zeros"))


def ones(shape, dtype=None) -> TensorVariable:
    """An array of ones of `shape` (dtype defaults to config.floatX)."""
    dtype = normalize_dtype(dtype or config.floatX)
    return alloc(constant(np.ones((), dtype=dtype)), *shape_entries(shape, "ones"))


class ARange(Op):
    """arange(start, stop, step) of a fixed dtype, from three scalar inputs."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = normalize_dtype(dtype)

    def make_node(self, start, stop, step):
        args = [as_tensor_variable(a) for a in (start, stop, step)]
        for what, a in zip(("start", "stop", "step"), args, strict=True):
            if a.ndim != 0 or a.dtype == "bool" or a.dtype.startswith("complex"):
                raise graph_error(f"arange: {what} must be a real scalar, got {a} of type "
                                  f"{a.type}")
        length = None
        if all(isinstance(a, TensorConstant) for a in args):
            lo, hi, st = (a.data.item() for a in args)
            if st == 0:
                raise graph_error("arange: step must not be zero")
            length = max(0, _pymath.ceil((hi - lo) / st))
            if all(isinstance(v, int) for v in (lo, hi, st)):
                length = len(range(lo, hi, st))
        return Apply(self, args, [TensorType(self.dtype, (length,))()])

    def perform(self, node, inputs):
        return (np.arange(*inputs, dtype=self.dtype),)

    def py_fn(self, node):
        dtype = np.dtype(self.dtype)
        return lambda start, stop, step: np.arange(start, stop, step, dtype=dtype)

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.math import cast, zeros_like

        start, stop, step = inputs
        if self.dtype in DISCRETE_DTYPES:
            return [None, None, None]
        gz = output_grads[0]
        count = arange(shape_tuple(gz)[0], dtype=self.dtype)
        return [None if start.dtype in DISCRETE_DTYPES else reduce_to_shape_of(gz, start),
                None if stop.dtype in DISCRETE_DTYPES else zeros_like(stop),
                None if step.dtype in DISCRETE_DTYPES else
                reduce_to_shape_of(cast(gz * count, step.dtype), step)]

    def infer_shape(self, node, input_shapes):
        static = node.outputs[0].type.shape[0]
        if static is not None:
            return [(static,)]
        from theanine.tensor.math import cast, ceil, maximum

        start, stop, step = (cast(a, "float64") for a in node.inputs)
        return [(cast(maximum(ceil((stop - start) / step), 0), "int64"),)]


def arange(start, stop=None, step=1, dtype=None) -> TensorVariable:
    """Evenly spaced values in [start, stop) (numpy.arange); bounds may be symbolic scalars."""
    if stop is None:
        start, stop = 0, start
    bounds = (start, stop, step)
    if dtype is None:  # Python numbers are weak: they take the dtype of the symbolic bounds
        strong = [as_tensor_variable(a).type.numpy_dtype for a in bounds
                  if not isinstance(a, (int, float))]
        weak = [a for a in bounds if isinstance(a, (int, float))]
        if strong:
            dtype = np.result_type(*strong, *weak)
        else:
            dtype = "int64" if all(isinstance(a, int) for a in weak) else config.floatX
    dtype = normalize_dtype(dtype)
    return ARange(dtype)(*[constant(np.asarray(a)) if isinstance(a, (int, float))
                           else as_tensor_variable(a) for a in bounds])


__all__ = ["Alloc", "ARange", "alloc", "broadcast_to", "zeros", "ones", "arange"]
