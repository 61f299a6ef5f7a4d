"""Joining and cutting tensors: concatenate, join, stack and stacklists (Join, MakeVector) and
split (Split)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable, constant
from theanine.tensor.shape_ops import (
    Entry,
    MakeVector,
    _run_error,
    const_int,
    entry_op,
    entry_variable,
    expand_dims,
    normalize_axis,
    shape_entries,
    shape_tuple,
)
from theanine.tensor.type import DISCRETE_DTYPES, INT_DTYPES, TensorType, format_shape
from theanine.tensor.variable import TensorVariable


class Join(Op):
    """concatenate(tensors, axis): NumPy's concatenate; dtypes upcast as NumPy does."""

    __props__ = ("axis",)

    def __init__(self, axis: int):
        self.axis = int(axis)

    def make_node(self, *tensors):
        tensors = [as_tensor_variable(t) for t in tensors]
        first, ax = tensors[0], self.axis
        out = list(first.type.shape)
        for i, t in enumerate(tensors):
            if t.ndim != first.ndim or t.ndim <= ax:
                raise graph_error(f"concatenate: all inputs need {max(first.ndim, ax + 1)} dims "
                                  f"to join on axis {ax}; input {i} ({t}) has {t.ndim}")
            for d, (o, s) in enumerate(zip(out, t.type.shape, strict=True)):
                if d != ax and o is not None and s is not None and o != s:
                    raise graph_error(
                        f"concatenate on axis {ax}: input {i} ({t}) has static shape "
                        f"{format_shape(t.type.shape)}, but input 0 ({first}) has "
                        f"{format_shape(first.type.shape)}; they differ on axis {d}")
                if d != ax and o is None:
                    out[d] = s
        lengths = [t.type.shape[ax] for t in tensors]
        out[ax] = sum(lengths) if None not in lengths else None
        dtype = np.result_type(*[t.type.numpy_dtype for t in tensors])
        return Apply(self, tensors, [TensorType(dtype, out)()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)

    def py_fn(self, node):
        axis, dtype = self.axis, node.outputs[0].type.numpy_dtype

        def join(*arrays):
            try:
                return np.concatenate(arrays, axis=axis, dtype=dtype, casting="unsafe")
            except ValueError as e:
                shapes = ", ".join(str(np.shape(a)) for a in arrays)
                raise _run_error(e, f"concatenate on axis {axis} of shapes {shapes}") from None

        return join

    def pullback(self, node, inputs, outputs, output_grads):
        sizes = [shape_tuple(t)[self.axis] for t in inputs]
        parts = split(output_grads[0], sizes, len(inputs), self.axis)
        return [None if t.dtype in DISCRETE_DTYPES else g
                for t, g in zip(inputs, parts, strict=True)]

    def infer_shape(self, node, input_shapes):
        out = list(input_shapes[0])
        total: Entry = 0
        for s in input_shapes:
            total = entry_op("add", total, s[self.axis])
        out[self.axis] = total
        static = node.outputs[0].type.shape
        return [tuple(s if s is not None else e for s, e in zip(static, out, strict=True))]


def concatenate(tensors: Sequence, axis: int = 0) -> TensorVariable:
    """Join tensors along an existing axis (numpy.concatenate)."""
    tensors = [as_tensor_variable(t) for t in tensors]
    if not tensors:
        raise graph_error("concatenate: needs at least one tensor")
    if tensors[0].ndim == 0:
        raise graph_error(f"concatenate: 0-d tensors ({tensors[0]}) cannot be concatenated; "
                          "use stack")
    axis = normalize_axis(axis, tensors[0].ndim, "concatenate", tensors[0])
    if len(tensors) == 1:
        return tensors[0]
    return Join(axis)(*tensors)


def join(axis: int, *tensors) -> TensorVariable:
    """Theano's `join(axis, *tensors)`: concatenate(tensors, axis)."""
    return concatenate(list(tensors), axis=axis)


def stack(*tensors, axis: int | None = None) -> TensorVariable:
    """Join tensors of the same shape along a new axis (numpy.stack): `stack(tensors,
    axis=0)`, `stack(tensors, axis)`, or Theano's deprecated `stack(a, b, c)` (axis 0)."""
    if not tensors:
        raise graph_error("stack: needs at least one tensor")
    if isinstance(tensors[0], (list, tuple)):
        if len(tensors) > 2 or (len(tensors) == 2 and axis is not None):
            raise graph_error("stack: give the tensors as one list, then the axis")
        if len(tensors) == 2:
            axis = tensors[1]
        tensors = tensors[0]
    elif axis is None:
        warnings.warn("stack(*tensors) is deprecated, as in Theano: use stack(tensors, "
                      "axis=0)", DeprecationWarning, stacklevel=2)
    axis = 0 if axis is None else axis
    tensors = [as_tensor_variable(t) for t in tensors]
    if not tensors:
        raise graph_error("stack: needs at least one tensor")
    nd = tensors[0].ndim
    axis = normalize_axis(axis, nd + 1, "stack", tensors[0])
    if nd == 0 and all(t.ndim == 0 for t in tensors):
        return MakeVector(np.result_type(*[t.type.numpy_dtype for t in tensors]))(*tensors)
    for i, t in enumerate(tensors):
        if t.ndim != nd:
            raise graph_error(f"stack: all inputs need the same number of dims; input 0 "
                              f"({tensors[0]}) has {nd}, input {i} ({t}) has {t.ndim}")
    return Join(axis)(*[expand_dims(t, axis) for t in tensors])


class Split(Op):
    """split(x, sizes, n_splits, axis): n_splits views of x cut along axis (Theano's Split)."""

    __props__ = ("n_splits", "axis")

    def __init__(self, n_splits: int, axis: int):
        self.n_splits, self.axis = int(n_splits), int(axis)
        self.view_of = {i: 0 for i in range(self.n_splits)}

    def make_node(self, x, sizes):
        x, sizes = as_tensor_variable(x), as_tensor_variable(sizes)
        if not 0 <= self.axis < x.ndim:
            raise graph_error(f"split: axis {self.axis} is out of range for {x} with {x.ndim} "
                              "dims")
        if sizes.ndim != 1 or sizes.dtype not in INT_DTYPES:
            raise graph_error(f"split: sizes must be an integer vector, got {sizes} of type "
                              f"{sizes.type}")
        if sizes.type.shape[0] not in (None, self.n_splits):
            raise graph_error(f"split: n_splits={self.n_splits} but {sizes} has "
                              f"{sizes.type.shape[0]} entries")
        known = [None] * self.n_splits
        if sizes.type.shape[0] is not None:
            known = [const_int(e) for e in shape_entries(sizes, "split")]
        length = x.type.shape[self.axis]
        if None not in known and length is not None and sum(known) != length:
            raise graph_error(f"split: sizes {known} add up to {sum(known)}, but axis "
                              f"{self.axis} of {x} has length {length}")
        if any(k is not None and k < 0 for k in known):
            raise graph_error(f"split: sizes must be >= 0, got {known}")
        outs = []
        for k in known:
            shp = list(x.type.shape)
            shp[self.axis] = k
            outs.append(TensorType(x.dtype, shp)())
        return Apply(self, [x, sizes], outs)

    def perform(self, node, inputs):
        return tuple(self.py_fn(node)(*inputs))

    def py_fn(self, node):
        axis, n, name = self.axis, self.n_splits, str(node.inputs[0])

        def split_(x, sizes):
            sizes = np.asarray(sizes)
            if len(sizes) != n or sizes.sum() != np.shape(x)[axis] or (sizes < 0).any():
                raise ValueError(f"split: cannot cut axis {axis} of {name} (shape "
                                 f"{np.shape(x)}) into {n} pieces of sizes {sizes.tolist()}")
            return tuple(np.split(x, np.cumsum(sizes[:-1]), axis=axis))

        return split_

    def pullback(self, node, inputs, outputs, output_grads):
        x = inputs[0]
        if x.dtype in DISCRETE_DTYPES:
            return [None, None]
        return [concatenate(output_grads, self.axis), None]

    def infer_shape(self, node, input_shapes):
        out = []
        for i, o in enumerate(node.outputs):
            shp = list(input_shapes[0])
            k = o.type.shape[self.axis]
            shp[self.axis] = k if k is not None else node.inputs[1][i]
            out.append(tuple(shp))
        return out


def split(x, splits_sizes, n_splits: int, axis: int = 0) -> list[TensorVariable]:
    """Cut x along `axis` into `n_splits` pieces of the given sizes; returns a list."""
    x = as_tensor_variable(x)
    axis = normalize_axis(axis, x.ndim, "split", x)
    if isinstance(splits_sizes, (list, tuple, np.ndarray)):
        entries = shape_entries(splits_sizes, "split")
        if len(entries) != n_splits:
            raise graph_error(f"split: n_splits={n_splits} but {len(entries)} sizes were given")
        splits_sizes = _int_vector(entries)
    outs = Split(n_splits, axis)(x, splits_sizes)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def _int_vector(entries: Sequence[Entry]) -> TensorVariable:
    if all(isinstance(e, int) for e in entries):
        return constant(np.array(entries, dtype=np.int64))
    return MakeVector("int64")(*[entry_variable(e) for e in entries])


def stacklists(arg) -> TensorVariable:
    """Nested lists of tensors stacked into one tensor, the nesting becoming leading axes
    (Theano's stacklists: [[a, b], [c, d]] of matrices gives shape (2, 2, m, n))."""
    if isinstance(arg, (list, tuple)):
        return stack([stacklists(a) for a in arg])
    return as_tensor_variable(arg)


__all__ = ["Join", "Split", "concatenate", "join", "stack", "stacklists", "split"]
