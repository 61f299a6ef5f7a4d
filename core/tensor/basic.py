"""Turning Python and NumPy values into graph variables, and the variable constructors
(`scalar`, `dmatrix`, `tensor3`, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.config import config
from theanine.graph.basic import Variable, graph_error
from theanine.tensor.type import DTYPE_NAMES, TensorType, normalize_dtype
from theanine.tensor.variable import TensorConstant, TensorVariable

_PY_SCALARS = (bool, int, float, complex)


def constant(value, dtype=None, name: str | None = None) -> TensorConstant:
    """A constant node holding `value`; its static shape is the value's shape."""
    arr = np.asarray(value, dtype=None if dtype is None else normalize_dtype(dtype))
    if dtype is None and isinstance(value, float) and not isinstance(value, np.floating):
        arr = arr.astype(config.floatX)
    if arr.dtype == object:
        raise TypeError(f"Cannot make a constant from {type(value).__name__}: {value!r}")
    arr = np.require(arr, requirements="C")
    arr.setflags(write=False)
    return TensorConstant(TensorType(arr.dtype, arr.shape), arr, name=name)


def weak_constant(value, like: TensorVariable, widen: bool = False) -> TensorConstant:
    """A Python scalar combined with a tensor takes the tensor's dtype where its value fits
    (NumPy 2's rule): `x_float32 * 2` stays float32, `x_int8 + 1.5` becomes float64.

    A Python int outside the tensor's integer range is an error (as in NumPy), unless `widen`:
    then it gets the smallest dtype holding both, which is how NumPy 2 evaluates comparisons
    and true division with such ints (`x_uint8 > -1`, `x_int8 / 300`)."""
    dtype = np.result_type(like.type.numpy_dtype, value)
    if isinstance(value, bool) or np.dtype(dtype).kind not in "biu":
        return constant(np.asarray(value, dtype=dtype))
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        if not widen:
            raise graph_error(f"The Python int {value} does not fit in {like}'s dtype {dtype}")
        dtype = np.result_type(dtype, np.min_scalar_type(value))
    return constant(np.asarray(value, dtype=dtype))


def as_tensor_variable(x, name: str | None = None, ndim: int | None = None) -> TensorVariable:
    """Return `x` as a TensorVariable: variables pass through, data becomes a constant."""
    if isinstance(x, TensorVariable):
        v = x
    elif isinstance(x, Variable):
        raise TypeError(f"Expected a tensor variable, got {x} of type {x.type}")
    elif isinstance(x, (list, tuple)) and any(isinstance(e, Variable) for e in x):
        from theanine.tensor.join import stack

        v = stack([as_tensor_variable(e) for e in x])
    else:
        try:
            v = constant(x, name=name)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Cannot convert {type(x).__name__} {x!r} to a tensor: {e}") from None
    if ndim is not None and v.ndim != ndim:
        raise graph_error(f"Expected a {ndim}-d tensor, got {v} with {v.ndim} dimensions")
    return v


def as_tensor_pair(a, b, widen: bool = False) -> tuple[TensorVariable, TensorVariable]:
    """Convert two operands, giving a Python scalar the dtype of the other (tensor) operand
    (`widen`: see weak_constant)."""
    if isinstance(a, _PY_SCALARS) and isinstance(b, TensorVariable):
        return weak_constant(a, b, widen), b
    if isinstance(b, _PY_SCALARS) and isinstance(a, TensorVariable):
        return a, weak_constant(b, a, widen)
    return as_tensor_variable(a), as_tensor_variable(b)


def tensor(dtype="floatX", shape: Sequence[int | None] | None = None, name: str | None = None,
           broadcastable: Sequence[bool] | None = None) -> TensorVariable:
    """A symbolic tensor input; give `shape` (ints or None) or Theano's `broadcastable`."""
    if shape is None and broadcastable is None:
        raise TypeError("tensor() needs shape= (or broadcastable=) to fix the number of dims")
    if isinstance(dtype, str) and name is None and dtype not in DTYPE_NAMES:
        raise TypeError(f"tensor(): first argument is the dtype, got {dtype!r}; pass name= for the "
                        "name")
    return TensorType(dtype, shape or (), broadcastable=broadcastable)(name)


_PREFIX = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64",
           "c": "complex64", "z": "complex128"}


def _constructor(ndim: int, pattern: tuple[int | None, ...] | None, prefix: str | None,
                 kind: str):
    def make(name: str | None = None, dtype=None, shape=None) -> TensorVariable:
        dt = _PREFIX[prefix] if prefix else (dtype if dtype is not None else "floatX")
        if shape is None:
            shape = pattern if pattern is not None else (None,) * ndim
        if len(shape) != ndim:
            raise ValueError(f"{kind}() has {ndim} dims; shape={shape} has {len(shape)}")
        return TensorType(dt, shape)(name)

    make.__name__ = (prefix or "") + kind
    make.__doc__ = f"A symbolic {ndim}-d {kind} of dtype {_PREFIX.get(prefix, 'floatX')}."
    return make


_KINDS = {"scalar": (0, None), "vector": (1, None), "matrix": (2, None), "row": (2, (1, None)),
          "col": (2, (None, 1)), "tensor3": (3, None), "tensor4": (4, None),
          "tensor5": (5, None)}

for _kind, (_nd, _pat) in _KINDS.items():
    globals()[_kind] = _constructor(_nd, _pat, None, _kind)  # floatX, read at each call
    for _p in _PREFIX:  # as Theano: the type itself, so `T.dscalar('x').type is T.dscalar`
        globals()[_p + _kind] = TensorType(_PREFIX[_p], _pat or (None,) * _nd)



def _plural(single, name: str):
    def make(*names) -> TensorVariable | list[TensorVariable]:
        """Several inputs at once, as Theano's: T.dscalars('x', 'y') names each; T.dscalars(3)
        makes three unnamed; one string names one per character (T.dscalars('xy')), and a
        single name gives the variable itself, not a list."""
        if names and isinstance(names[0], int) and not isinstance(names[0], bool):
            return [single() for _ in range(names[0])]
        if len(names) == 1:
            names = names[0]
        if len(names) == 1:
            return single(names if isinstance(names, str) else names[0])
        return [single(n) for n in names]

    make.__name__ = name
    return make


for _kind in _KINDS:
    for _p in (None, *_PREFIX):
        _name = (_p or "") + _kind
        _many = _name[:-2] + "ices" if _kind == "matrix" else _name + "s"
        globals()[_many] = _plural(globals()[_name], _many)

_PLURALS = [(p or "") + ("matrices" if k == "matrix" else k + "s")
            for k in _KINDS for p in (None, *_PREFIX)]

__all__ = ["as_tensor_variable", "constant", "tensor"] + [
    (p or "") + k for k in _KINDS for p in (None, *_PREFIX)
] + _PLURALS
