"""Shape queries and shape-changing ops: shape, reshape, flatten, transpose, squeeze,
expand_dims and specify_shape, plus the shape-entry helpers the other shape modules share.

A shape entry (what `shape_tuple` returns and `infer_shape` works with) is a Python int where the
length is known when the graph is built, else an int64 scalar TensorVariable. Ops keep known
entries in `__props__` (so static shapes follow) and take the symbolic ones as extra inputs.
"""

from __future__ import annotations

import math as _pymath
import operator
from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable, constant
from theanine.tensor.elemwise import dimshuffle
from theanine.tensor.type import (
    DISCRETE_DTYPES,
    INT_DTYPES,
    TensorType,
    format_shape,
    normalize_dtype,
)
from theanine.tensor.variable import TensorConstant, TensorVariable

Entry = int | TensorVariable


# -- shape entries: ints where known, int scalars where not --------------------------------------
class Shape(Op):
    """shape(x): the run-time shape of x as an int64 vector of static length x.ndim."""

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [TensorType("int64", (x.ndim,))()])

    def perform(self, node, inputs):
        return (np.array(np.shape(inputs[0]), dtype=np.int64),)

    def py_fn(self, node):
        return lambda x: np.array(np.shape(x), dtype=np.int64)

    def pullback(self, node, inputs, outputs, output_grads):
        return [None]

    def connection_pattern(self, node) -> list[list[bool]]:
        """A shape does not depend on x's values: for grad(), x is disconnected through it."""
        return [[False]]

    def infer_shape(self, node, input_shapes):
        return [(node.inputs[0].ndim,)]


class ShapeI(Op):
    """The length of axis `i` of x, as an int64 scalar (the entries of inferred shapes)."""

    __props__ = ("i",)

    def __init__(self, i: int):
        self.i = int(i)

    def make_node(self, x):
        x = as_tensor_variable(x)
        if not 0 <= self.i < x.ndim:
            raise graph_error(f"shape_i: axis {self.i} is out of range for {x} with {x.ndim} dims")
        return Apply(self, [x], [TensorType("int64", ())()])

    def perform(self, node, inputs):
        return (np.array(np.shape(inputs[0])[self.i], dtype=np.int64),)

    def py_fn(self, node):
        i = self.i
        return lambda x: np.int64(np.shape(x)[i])

    def pullback(self, node, inputs, outputs, output_grads):
        return [None]

    def connection_pattern(self, node) -> list[list[bool]]:
        """The length does not depend on x's values: for grad(), x is disconnected here."""
        return [[False]]

    def infer_shape(self, node, input_shapes):
        return [()]


def shape(x) -> TensorVariable:
    """The shape of x as a symbolic int64 vector (what `x.shape` returns)."""
    return Shape()(as_tensor_variable(x))


def shape_tuple(x) -> tuple:
    """One entry per axis of x: the static length where known, else ShapeI(i)(x)."""
    x = as_tensor_variable(x)
    return tuple(s if s is not None else ShapeI(i)(x) for i, s in enumerate(x.type.shape))


def ndim(x) -> int:
    """The number of dimensions of x (a Python int: it is always known)."""
    return as_tensor_variable(x).ndim


def size(x) -> TensorVariable:
    """The number of elements of x as an int64 scalar (a constant when statically known)."""
    return entry_variable(entry_prod(shape_tuple(x)))


def const_int(v) -> int | None:
    """The value of an integer shape/index entry when it is known at graph-build time."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, TensorConstant) and v.ndim == 0 and v.dtype in INT_DTYPES:
        return int(v.data)
    if isinstance(v, TensorVariable) and v.owner is not None and isinstance(v.owner.op, ShapeI):
        return v.owner.inputs[0].type.shape[v.owner.op.i]
    return None


def as_entry(v, what: str) -> Entry:
    """An int, or an integer 0-d TensorVariable; anything else is a graph error naming `what`."""
    known = const_int(v)
    if known is not None:
        return known
    if isinstance(v, TensorVariable):
        if v.ndim != 0 or v.dtype not in INT_DTYPES:
            raise graph_error(f"{what}: expected an integer scalar, got {v} of type {v.type}")
        return v
    raise graph_error(f"{what}: expected an int or an integer scalar variable, got "
                      f"{type(v).__name__} {v!r}")


def shape_entries(shp, what: str) -> list[Entry]:
    """Entries of a shape given as an int, a sequence, an ndarray or a symbolic int vector."""
    if isinstance(shp, np.ndarray):
        shp = shp.tolist()
    if isinstance(shp, (list, tuple)):
        return [as_entry(e, what) for e in shp]
    if not isinstance(shp, TensorVariable) or shp.ndim == 0:
        return [as_entry(shp, what)]
    if shp.ndim != 1 or shp.dtype not in INT_DTYPES:
        raise graph_error(f"{what}: a shape must be an integer vector, got {shp} of type "
                          f"{shp.type}")
    if isinstance(shp, TensorConstant):
        return [int(v) for v in shp.data]
    if shp.owner is not None and isinstance(shp.owner.op, Shape):
        return list(shape_tuple(shp.owner.inputs[0]))
    if shp.owner is not None and isinstance(shp.owner.op, MakeVector):
        return [as_entry(v, what) for v in shp.owner.inputs]
    if shp.type.shape[0] is None:
        raise graph_error(f"{what}: the length of the shape vector {shp} is not known when the "
                          "graph is built; pass a tuple of scalars (or ndim=)")
    return [shp[i] for i in range(shp.type.shape[0])]


_FOLD = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
         "int_div": operator.floordiv, "maximum": max, "minimum": min}


def entry_op(name: str, a: Entry, b: Entry) -> Entry:
    """Arithmetic on shape entries, folded to a Python int when both are ints."""
    if isinstance(a, int) and isinstance(b, int):
        return _FOLD[name](a, b)
    from theanine.tensor import math

    return getattr(math, name)(a, b)


def entry_prod(entries: Sequence[Entry]) -> Entry:
    """The product of shape entries (1 for none)."""
    out: Entry = 1
    for e in entries:
        out = entry_op("mul", out, e)
    return out


def entry_variable(e: Entry) -> TensorVariable:
    """A shape entry as an int64 scalar variable."""
    if isinstance(e, int):
        return constant(np.int64(e))
    from theanine.tensor.math import cast

    return cast(e, "int64")


def _pattern(entries: Sequence[Entry]) -> tuple[tuple, list]:
    """Split entries into a props pattern (ints, None for symbolic) and the symbolic inputs."""
    pattern = tuple(e if isinstance(e, int) else None for e in entries)
    return pattern, [entry_variable(e) for e in entries if not isinstance(e, int)]


def _fill(pattern: tuple, values) -> tuple:
    """The pattern with None replaced by the run-time values, in order."""
    it = iter(values)
    return tuple(int(next(it)) if p is None else p for p in pattern)


def _symbolic(pattern: tuple, inputs) -> list[Entry]:
    it = iter(inputs)
    return [next(it) if p is None else p for p in pattern]


def normalize_axis(axis, ndim_: int, what: str, x=None) -> int:
    """A non-negative axis, or a graph error naming the tensor and its number of dims."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise graph_error(f"{what}: axis must be an int, got {type(axis).__name__} {axis!r}")
    if not -ndim_ <= axis < ndim_:
        on = f" of {x}" if x is not None else ""
        raise graph_error(f"{what}: axis {axis} is out of range for the {ndim_} dims{on}")
    return int(axis) % ndim_


def _run_error(exc: Exception, message: str) -> Exception:
    return type(exc)(f"{message}: {exc}")


class MakeVector(Op):
    """A vector from scalar inputs (stack of 0-d tensors; the symbolic form of a shape)."""

    __props__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = normalize_dtype(dtype)

    def make_node(self, *scalars):
        scalars = [as_tensor_variable(s) for s in scalars]
        for s in scalars:
            if s.ndim != 0:
                raise graph_error(f"make_vector: expected scalars, got {s} of type {s.type}")
        return Apply(self, scalars, [TensorType(self.dtype, (len(scalars),))()])

    def perform(self, node, inputs):
        return (np.array(inputs, dtype=self.dtype),)

    def py_fn(self, node):
        dtype = np.dtype(self.dtype)
        return lambda *args: np.array(args, dtype=dtype)

    def pullback(self, node, inputs, outputs, output_grads):
        gz = output_grads[0]
        return [None if x.dtype in DISCRETE_DTYPES else gz[i] for i, x in enumerate(inputs)]

    def infer_shape(self, node, input_shapes):
        return [(len(node.inputs),)]


# -- reshape and friends -------------------------------------------------------------------------
class Reshape(Op):
    """x reshaped to `pattern` (ints, -1 at most once, None where the entry is an input)."""

    __props__ = ("pattern",)
    view_of = {0: 0}

    def __init__(self, pattern: Sequence[int | None]):
        self.pattern = tuple(pattern)

    def make_node(self, x, *entries):
        x = as_tensor_variable(x)
        entries = [as_tensor_variable(e) for e in entries]
        known = [p for p in self.pattern if p is not None]
        if known.count(-1) > 1 or any(p < -1 for p in known):
            raise graph_error(f"reshape: invalid target shape {self._fmt()} for {x}: only one "
                              "entry may be -1 and the others must be >= 0")
        out = list(self.pattern)
        xs = x.type.shape
        xsize = _pymath.prod(xs) if None not in xs else None
        if -1 in out:
            j = out.index(-1)
            others = [p for i, p in enumerate(out) if i != j]
            out[j] = None
            if xsize is not None and None not in others:
                rest = _pymath.prod(others)
                if rest and xsize % rest == 0:
                    out[j] = xsize // rest
                elif rest or xsize:
                    raise self._mismatch(x)
        elif xsize is not None and None not in out and _pymath.prod(out) != xsize:
            raise self._mismatch(x)
        return Apply(self, [x, *entries], [TensorType(x.dtype, out)()])

    def _fmt(self) -> str:
        return format_shape(tuple("?" if p is None else p for p in self.pattern))

    def _mismatch(self, x):
        return graph_error(f"reshape: cannot reshape {x} of static shape "
                           f"{format_shape(x.type.shape)} (size {_pymath.prod(x.type.shape)}) "
                           f"into shape {self._fmt()}")

    def perform(self, node, inputs):
        return (np.asarray(self.py_fn(node)(*inputs)),)

    def py_fn(self, node):
        pattern, name = self.pattern, str(node.inputs[0])

        def reshape_(x, *entries):
            shp = _fill(pattern, entries)
            try:
                return np.reshape(x, shp)
            except ValueError as e:
                raise _run_error(e, f"reshape of {name} (shape {np.shape(x)}) to {shp}") from None

        return reshape_

    def pullback(self, node, inputs, outputs, output_grads):
        x = inputs[0]
        gx = None if x.dtype in DISCRETE_DTYPES else reshape(output_grads[0], shape_tuple(x))
        return [gx] + [None] * (len(inputs) - 1)

    def infer_shape(self, node, input_shapes):
        static = node.outputs[0].type.shape
        entries = _symbolic(self.pattern, node.inputs[1:])
        total = entry_prod(input_shapes[0])
        out = []
        for i, e in enumerate(entries):
            if static[i] is not None:
                out.append(static[i])
                continue
            others = entry_op("maximum", entry_prod(entries[:i] + entries[i + 1:]), 1)
            implied = entry_op("int_div", total, others)
            if isinstance(e, int):  # the constant -1
                out.append(implied)
            else:
                from theanine.tensor.math import eq, switch

                out.append(switch(eq(e, -1), implied, e))
        return [tuple(out)]


def reshape(x, shape, ndim: int | None = None) -> TensorVariable:
    """x with a new shape (ints and/or int scalars, or an int vector; one entry may be -1)."""
    x = as_tensor_variable(x)
    if isinstance(shape, TensorVariable) and shape.ndim == 1 and shape.type.shape[0] is None:
        if ndim is None:
            raise graph_error(f"reshape: the length of the shape vector {shape} is not known; "
                              "pass ndim=")
        entries = [shape[i] for i in range(ndim)]
    else:
        entries = shape_entries(shape, "reshape")
    if ndim is not None and len(entries) != ndim:
        raise graph_error(f"reshape: ndim={ndim} but the shape has {len(entries)} entries")
    pattern, sym = _pattern(entries)
    return Reshape(pattern)(x, *sym)


def flatten(x, ndim: int = 1) -> TensorVariable:
    """Keep the first ndim-1 axes of x and flatten the rest into the last (Theano's flatten)."""
    x = as_tensor_variable(x)
    if not 1 <= ndim <= max(x.ndim, 1):
        raise graph_error(f"flatten: ndim must be between 1 and {max(x.ndim, 1)} for {x}, "
                          f"got {ndim}")
    shp = shape_tuple(x)
    return reshape(x, shp[:ndim - 1] + (entry_prod(shp[ndim - 1:]),))


def transpose(x, axes: Sequence[int] | None = None) -> TensorVariable:
    """Permute the axes of x (reverse them by default), as numpy.transpose."""
    x = as_tensor_variable(x)
    if axes is None:
        return dimshuffle(x, tuple(reversed(range(x.ndim))))
    perm = [normalize_axis(a, x.ndim, "transpose", x) for a in axes]
    if sorted(perm) != list(range(x.ndim)):
        raise graph_error(f"transpose: axes {tuple(axes)} are not a permutation of the "
                          f"{x.ndim} axes of {x}")
    return dimshuffle(x, perm)


def _axes(axis, ndim_: int, what: str, x) -> list[int]:
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    out = [normalize_axis(a, ndim_, what, x) for a in axes]
    if len(set(out)) != len(out):
        raise graph_error(f"{what}: repeated axis in {tuple(axes)}")
    return out


def squeeze(x, axis=None) -> TensorVariable:
    """Drop length-1 axes: all statically-1 axes, or the given ones (checked at run time when
    their length is not known statically)."""
    x = as_tensor_variable(x)
    if axis is None:
        drop = [i for i, s in enumerate(x.type.shape) if s == 1]
    else:
        drop = _axes(axis, x.ndim, "squeeze", x)
        for a in drop:
            if x.type.shape[a] not in (1, None):
                raise graph_error(f"squeeze: axis {a} of {x} has length {x.type.shape[a]} "
                                  f"(static shape {format_shape(x.type.shape)}), not 1")
        if any(x.type.shape[a] is None for a in drop):
            x = specify_shape(x, [1 if i in drop else None for i in range(x.ndim)])
    return dimshuffle(x, [i for i in range(x.ndim) if i not in drop])


def expand_dims(x, axis) -> TensorVariable:
    """Insert length-1 axes at the given positions of the output, as numpy.expand_dims."""
    x = as_tensor_variable(x)
    n_new = 1 if isinstance(axis, (int, np.integer)) else len(axis)
    new = _axes(axis, x.ndim + n_new, "expand_dims", x)
    dims = iter(range(x.ndim))
    return dimshuffle(x, ["x" if i in new else next(dims) for i in range(x.ndim + n_new)])


class SpecifyShape(Op):
    """x, after checking at run time that its shape matches `pattern` (None: any length;
    a symbolic entry is an extra input). Refines the static shape."""

    __props__ = ("pattern",)
    view_of = {0: 0}

    def __init__(self, pattern: Sequence):
        self.pattern = tuple(pattern)

    def make_node(self, x, *entries):
        x = as_tensor_variable(x)
        if len(self.pattern) != x.ndim:
            raise graph_error(f"specify_shape: {x} has {x.ndim} dims, but the shape "
                              f"{format_shape(self.pattern)} has {len(self.pattern)}")
        shp = []
        for s, p in zip(x.type.shape, self.pattern, strict=True):
            if isinstance(p, int) and s is not None and s != p:
                raise graph_error(f"specify_shape: {x} has static shape "
                                  f"{format_shape(x.type.shape)}, which does not match the "
                                  f"specified {self._fmt()}")
            shp.append(p if isinstance(p, int) else s)
        entries = [as_tensor_variable(e) for e in entries]
        return Apply(self, [x, *entries], [TensorType(x.dtype, shp)()])

    def _fmt(self) -> str:
        return format_shape(tuple(p if isinstance(p, int) else "?" for p in self.pattern))

    def perform(self, node, inputs):
        return (np.asarray(self.py_fn(node)(*inputs)),)

    def py_fn(self, node):
        name, pattern = str(node.inputs[0]), self.pattern

        def check(x, *entries):
            it = iter(entries)
            want = tuple(int(next(it)) if p == "?" else p for p in pattern)
            actual = np.shape(x)
            if any(w is not None and a != w for a, w in zip(actual, want, strict=True)):
                expected = format_shape(tuple("?" if w is None else w for w in want))
                raise ValueError(f"specify_shape: {name} has shape {actual}, expected {expected}")
            return x

        return check

    def pullback(self, node, inputs, outputs, output_grads):
        return [output_grads[0]] + [None] * (len(inputs) - 1)

    def infer_shape(self, node, input_shapes):
        it = iter(node.inputs[1:])
        return [tuple(next(it) if p == "?" else p if p is not None else s
                      for p, s in zip(self.pattern, input_shapes[0], strict=True))]


def specify_shape(x, shape) -> TensorVariable:
    """x, checked at run time to have `shape` (ints, None for any, or int scalars)."""
    x = as_tensor_variable(x)
    if isinstance(shape, (list, tuple)):
        entries = [None if e is None else as_entry(e, "specify_shape") for e in shape]
    else:
        entries = shape_entries(shape, "specify_shape")
    pattern = tuple(e if e is None or isinstance(e, int) else "?" for e in entries)
    sym = [entry_variable(e) for e in entries if isinstance(e, TensorVariable)]
    return SpecifyShape(pattern)(x, *sym)


__all__ = ["Shape", "ShapeI", "MakeVector", "Reshape", "SpecifyShape", "shape", "shape_tuple",
           "ndim", "size", "reshape", "flatten", "transpose", "squeeze", "expand_dims",
           "specify_shape"]
