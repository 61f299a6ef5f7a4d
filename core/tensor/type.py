"""TensorType: dtype plus static shape (an int where known, None where not)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.config import config
from theanine.tensor.convert import lossy_values, not_numbers

DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
)
FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
DISCRETE_DTYPES = ("bool",) + INT_DTYPES
# every spelling `tensor(dtype, ...)` accepts: the canonical names, floatX and NumPy's aliases
DTYPE_NAMES = frozenset((*DTYPES, "floatX", "float", "int", "double", "single", "half"))


def normalize_dtype(dtype) -> str:
    """'floatX' -> config.floatX; numpy dtypes and aliases -> a canonical name from DTYPES."""
    if dtype == "floatX":
        return config.floatX
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"Unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}") from None
    if name not in DTYPES:
        raise TypeError(f"Unsupported dtype {name!r}; expected one of {', '.join(DTYPES)}")
    return name


_PATTERN_NAMES = {(): "scalar", (None,): "vector", (None, None): "matrix", (1, None): "row",
                  (None, 1): "col"}


class TensorType:
    """The type of an n-dimensional array: a dtype and a static shape.

    `shape[i]` is an int when the length of axis i is known when the graph is built, else None.
    `broadcastable[i]` is True exactly when shape[i] == 1 (Theano's broadcastable pattern); a
    tuple of bools given as the shape is read as that pattern, as Theano reads it.
    """

    __slots__ = ("dtype", "shape", "_np_dtype")

    def __init__(self, dtype, shape: Sequence[int | None] = (), broadcastable=None):
        self.dtype = normalize_dtype(dtype)
        if broadcastable is None and len(shape) and all(
                isinstance(s, (bool, np.bool_)) for s in shape):
            broadcastable = shape  # Theano's form: TensorType('float64', (False, True))
        if broadcastable is not None:
            shape = tuple(1 if b else None for b in broadcastable)
        shape = tuple(None if s is None else int(s) for s in shape)
        if any(s is not None and s < 0 for s in shape):
            raise ValueError(f"static shape entries must be >= 0 or None, got {shape}")
        self.shape = shape
        self._np_dtype = np.dtype(self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return tuple(s == 1 for s in self.shape)

    @property
    def numpy_dtype(self) -> np.dtype:
        return self._np_dtype

    def __eq__(self, other) -> bool:
        return (type(other) is TensorType and self.dtype == other.dtype
                and self.shape == other.shape)

    def __hash__(self) -> int:
        return hash((self.dtype, self.shape))

    def __reduce__(self):
        # explicit, so that every pickle protocol (0 and 1 included) handles the slots
        return type(self), (self.dtype, self.shape)

    def __str__(self) -> str:
        """Theano's names for the common patterns (`TensorType(float64, matrix)`), else the
        static shape (`TensorType(float64, shape=(3, ?))`)."""
        name = _PATTERN_NAMES.get(self.shape)
        if name is None and self.ndim >= 3 and all(s is None for s in self.shape):
            name = f"{self.ndim}D"
        return f"TensorType({self.dtype}, {name or 'shape=' + format_shape(self.shape)})"

    __repr__ = __str__

    def __call__(self, name: str | None = None, shape: Sequence[int | None] | None = None):
        """A new symbolic variable of this type (of this dtype and `shape` when given)."""
        from theanine.tensor.variable import TensorVariable

        if shape is not None:
            if len(shape) != self.ndim:
                raise ValueError(f"{self} has {self.ndim} dims; shape={shape} has "
                                 f"{len(shape)}")
            return TensorType(self.dtype, shape)(name)
        return TensorVariable(self, name=name)

    def clone(self, dtype=None, shape=None) -> TensorType:
        return TensorType(self.dtype if dtype is None else dtype,
                          self.shape if shape is None else shape)

    def is_compatible(self, other) -> bool:
        """True if a value of `other` can stand where this type is expected (same dtype and
        ndim, and no static lengths that disagree)."""
        if not isinstance(other, TensorType) or other.dtype != self.dtype:
            return False
        if other.ndim != self.ndim:
            return False
        return all(a is None or b is None or a == b for a, b in zip(self.shape, other.shape))

    def shape_matches(self, shape: tuple[int, ...]) -> bool:
        return all(s is None or s == a for s, a in zip(self.shape, shape))

    def filter(self, value, name: str = "input", allow_downcast: bool = False) -> np.ndarray:
        """Convert a call-time value to an ndarray of this type, or raise naming `name`.

        Accepted without loss: arrays, lists and Python/NumPy scalars whose values convert to this
        dtype exactly (ints into a float input, for example). Lossy conversions need
        `allow_downcast=True`.
        """
        if (type(value) is np.ndarray and value.dtype == self._np_dtype
                and value.ndim == self.ndim and self.shape_matches(value.shape)):
            return value
        try:
            arr = np.asarray(value)
        except Exception as e:
            raise TypeError(f"{name}: expected an array-like of {self}, got "
                            f"{type(value).__name__} ({e})") from None
        kind = not_numbers(arr)
        if kind is not None:
            raise TypeError(f"{name}: expected numbers of dtype {self.dtype}, got "
                            f"{_described(value)} holding {kind} (NumPy dtype {arr.dtype}); "
                            "convert them to numbers yourself")
        if arr.ndim != self.ndim:
            raise TypeError(f"{name}: expected a {self.ndim}-d array ({self}), got a {arr.ndim}-d "
                            f"{type(value).__name__} with shape {arr.shape}")
        if not self.shape_matches(arr.shape):
            raise ValueError(f"{name}: expected shape {format_shape(self.shape)}, got {arr.shape}")
        if arr.dtype != self._np_dtype:
            arr = self._convert(arr, name, allow_downcast, value)
        return arr

    def _convert(self, arr: np.ndarray, name: str, allow_downcast: bool, value) -> np.ndarray:
        if not allow_downcast:
            lost = lossy_values(arr, self._np_dtype)
            if lost is not None:
                raise TypeError(
                    f"{name}: expected dtype {self.dtype}, got {_described(value)} of dtype "
                    f"{arr.dtype} {lost}, which would change when converted to {self.dtype}. "
                    "Cast it yourself, or compile with allow_input_downcast=True.")
        if arr.dtype.kind == "c" and self._np_dtype.kind != "c":
            arr = arr.real  # (a downcast drops the imaginary part, as NumPy's cast does)
        if not allow_downcast:
            return arr.astype(self._np_dtype)  # exact: no warnings to silence
        with np.errstate(all="ignore"):
            return arr.astype(self._np_dtype)


def _described(value) -> str:
    """How a message names what the caller passed: `a list`, `an int`, `an ndarray`."""
    what = type(value).__name__
    return ("an " if what[:1].lower() in "aeiou" or what == "ndarray" else "a ") + what


def format_shape(shape: Sequence) -> str:
    """A static shape as messages show it: `(2, ?)`, `(3,)`; None (unknown) prints as `?`."""
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"
