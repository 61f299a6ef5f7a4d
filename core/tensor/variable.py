"""TensorVariable: a symbolic array with NumPy-style operators and methods."""

from __future__ import annotations

import importlib

from theanine.graph.basic import Constant, Variable


def _mod(name: str):
    return importlib.import_module(f"theanine.tensor.{name}")


_COMPARISONS = ("lt", "gt", "le", "ge", "eq", "neq")


def _is_comparison(sop) -> bool:
    from theanine.tensor.scalar_ops import is_builtin

    return any(is_builtin(sop, name) for name in _COMPARISONS)


class _TensorOps:
    """Operators and array methods shared by tensor variables, constants and shared variables."""

    __array_priority__ = 1000  # so ndarray <op> variable defers to our reflected operators

    # -- type facts -------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return self.type.broadcastable

    @property
    def static_shape(self) -> tuple:
        return self.type.shape

    # -- arithmetic -------------------------------------------------------------------------
    def __add__(self, other):
        if getattr(other, "handles_tensor_operands", False):
            return NotImplemented  # (a sparse variable: its reflected operator)
        return _mod("math").add(self, other)

    def __radd__(self, other):
        return _mod("math").add(other, self)

    def __sub__(self, other):
        if getattr(other, "handles_tensor_operands", False):
            return NotImplemented  # (a sparse variable: its reflected operator)
        return _mod("math").sub(self, other)

    def __rsub__(self, other):
        return _mod("math").sub(other, self)

    def __mul__(self, other):
        if getattr(other, "handles_tensor_operands", False):
            return NotImplemented  # (a sparse variable: its reflected operator)
        return _mod("math").mul(self, other)

    def __rmul__(self, other):
        return _mod("math").mul(other, self)

    def __truediv__(self, other):
        return _mod("math").true_div(self, other)

    def __rtruediv__(self, other):
        return _mod("math").true_div(other, self)

    def __floordiv__(self, other):
        return _mod("math").int_div(self, other)

    def __rfloordiv__(self, other):
        return _mod("math").int_div(other, self)

    def __mod__(self, other):
        return _mod("math").mod(self, other)

    def __rmod__(self, other):
        return _mod("math").mod(other, self)

    def __pow__(self, other):
        return _mod("math").pow(self, other)

    def __rpow__(self, other):
        return _mod("math").pow(other, self)

    def __neg__(self):
        return _mod("math").neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _mod("math").abs(self)

    def __matmul__(self, other):
        return _mod("linalg").matmul(self, other)

    def __rmatmul__(self, other):
        return _mod("linalg").matmul(other, self)

    # -- comparisons and logic (elementwise, like NumPy) ---------------------------------------
    def __lt__(self, other):
        return _mod("math").lt(self, other)

    def __le__(self, other):
        return _mod("math").le(self, other)

    def __gt__(self, other):
        return _mod("math").gt(self, other)

    def __ge__(self, other):
        return _mod("math").ge(self, other)

    def __and__(self, other):
        return _mod("math").and_(self, other)

    def __rand__(self, other):
        return _mod("math").and_(other, self)

    def __or__(self, other):
        return _mod("math").or_(self, other)

    def __ror__(self, other):
        return _mod("math").or_(other, self)

    def __xor__(self, other):
        return _mod("math").xor(self, other)

    def __rxor__(self, other):
        return _mod("math").xor(other, self)

    def __invert__(self):
        return _mod("math").invert(self)

    # Variables hash by identity (they key dicts such as `givens` and `updates`), so `==` keeps
    # Python's meaning; use `eq`/`neq` for the elementwise comparison, as in Theano.
    __hash__ = Variable.__hash__

    def __bool__(self) -> bool:
        """Theano 1.0's truthiness: a variable is true (so `if not W:` tests for None), except
        the result of a comparison, whose truth would be elementwise and so has none
        (`a < b < c` and `if x > 0:` raise rather than silently test the variable)."""
        owner = getattr(self, "owner", None)
        sop = getattr(getattr(owner, "op", None), "scalar_op", None)
        if sop is not None and _is_comparison(sop):
            raise TypeError(
                f"{self} is a comparison, which has no truth value: use "
                "theanine.tensor.switch(cond, a, b) for elementwise choice, or evaluate it")
        return True

    def __len__(self):
        n = self.type.shape[0] if self.ndim else None
        if n is None:
            raise TypeError(f"len() of {self} is not known when the graph is built; use "
                            f"{self}.shape[0]")
        return n

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- methods ------------------------------------------------------------------------------
    @property
    def T(self):
        return _mod("shape_ops").transpose(self)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _mod("shape_ops").transpose(self, axes or None)

    def dimshuffle(self, *pattern):
        if len(pattern) == 1 and isinstance(pattern[0], (tuple, list)):
            pattern = tuple(pattern[0])
        return _mod("elemwise").dimshuffle(self, pattern)

    def reshape(self, *shape, ndim=None):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return _mod("shape_ops").reshape(self, shape, ndim=ndim)

    def flatten(self, ndim: int = 1):
        return _mod("shape_ops").flatten(self, ndim)

    def squeeze(self, axis=None):
        return _mod("shape_ops").squeeze(self, axis)

    @property
    def shape(self):
        return _mod("shape_ops").shape(self)

    @property
    def size(self):
        return _mod("shape_ops").size(self)

    def __getitem__(self, index):
        return _mod("subtensor").getitem(self, index)

    def dot(self, other):
        return _mod("linalg").dot(self, other)

    def astype(self, dtype):
        return _mod("math").cast(self, dtype)

    def clip(self, lo, hi):
        return _mod("math").clip(self, lo, hi)

    def round(self):
        return _mod("math").round(self)

    def sum(self, axis=None, keepdims=False, dtype=None):
        return _mod("reduction").sum(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def prod(self, axis=None, keepdims=False):
        return _mod("reduction").prod(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, dtype=None):
        return _mod("reduction").mean(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def var(self, axis=None, keepdims=False, ddof=0):
        return _mod("reduction").var(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(self, axis=None, keepdims=False, ddof=0):
        return _mod("reduction").std(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def max(self, axis=None, keepdims=False):
        return _mod("reduction").max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _mod("reduction").min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _mod("reduction").argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _mod("reduction").argmin(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return _mod("reduction").all(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return _mod("reduction").any(self, axis=axis, keepdims=keepdims)

    def norm(self, L=2, axis=None):
        m = _mod("math")
        if L == 1:
            return m.abs(self).sum(axis=axis)
        return m.sqrt(m.sqr(self).sum(axis=axis))


class TensorVariable(_TensorOps, Variable):
    """A symbolic tensor: an input, or the output of an operation."""


class TensorConstant(TensorVariable, Constant):
    """A tensor whose value is fixed in the graph."""

    @property
    def value(self):
        return self.data
