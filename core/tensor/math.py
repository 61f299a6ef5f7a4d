"""Elementwise tensor functions: arithmetic, math, comparisons, logic, selection and casts."""

from __future__ import annotations

from theanine.tensor.basic import as_tensor_pair, as_tensor_variable, weak_constant
from theanine.tensor.elemwise import Elemwise
from theanine.tensor.scalar_ops import SCALAR_OPS, cast_op
from theanine.tensor.type import normalize_dtype
from theanine.tensor.variable import TensorVariable

ELEMWISE: dict[str, Elemwise] = {name: Elemwise(sop) for name, sop in SCALAR_OPS.items()}

_UNARY = ["neg", "abs", "sign", "sqr", "sqrt", "reciprocal", "exp", "exp2", "expm1", "log",
          "log2", "log10", "log1p", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh",
          "cosh", "tanh", "floor", "ceil", "round", "trunc", "sigmoid", "softplus", "logical_not",
          "invert", "isnan", "isinf", "zeros_like", "ones_like", "identity"]
_BINARY = ["add", "sub", "mul", "true_div", "int_div", "mod", "pow", "maximum", "minimum",
           "arctan2", "lt", "gt", "le", "ge", "eq", "neq", "logical_and", "logical_or",
           "logical_xor", "and_", "or_", "xor", "second"]


def _unary(name: str):
    op = ELEMWISE[name]

    def fn(x) -> TensorVariable:
        return op(as_tensor_variable(x))

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}(x), as NumPy defines it."
    return fn


# ops whose result NumPy 2 computes correctly for Python ints outside the tensor's range
_WIDENING = {"lt", "gt", "le", "ge", "eq", "neq", "true_div"}


def _binary(name: str):
    op = ELEMWISE[name]
    widen = name in _WIDENING

    def fn(a, b) -> TensorVariable:
        return op(*as_tensor_pair(a, b, widen))

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}(a, b) with NumPy broadcasting."
    return fn


for _n in _UNARY:
    globals()[_n] = _unary(_n)
for _n in _BINARY:
    globals()[_n] = _binary(_n)


def switch(cond, a, b) -> TensorVariable:
    """Elementwise `a` where `cond` is true, else `b` (NumPy's where)."""
    a, b = as_tensor_pair(a, b)
    return ELEMWISE["switch"](as_tensor_variable(cond), a, b)


def where(cond, a=None, b=None) -> TensorVariable:
    """NumPy's three-argument where (same as switch)."""
    if a is None or b is None:
        raise TypeError("where(cond) with one argument is not supported; use nonzero-free "
                        "formulations or boolean indexing")
    return switch(cond, a, b)


def clip(x, lo, hi) -> TensorVariable:
    """Limit x to [lo, hi] elementwise; Python scalar bounds take x's dtype."""
    x = as_tensor_variable(x)
    lo = weak_constant(lo, x) if isinstance(lo, (int, float)) else as_tensor_variable(lo)
    hi = weak_constant(hi, x) if isinstance(hi, (int, float)) else as_tensor_variable(hi)
    return ELEMWISE["clip"](x, lo, hi)


def cast(x, dtype) -> TensorVariable:
    """Convert x to `dtype` (a no-op when it already has it)."""
    x = as_tensor_variable(x)
    dtype = normalize_dtype(dtype)
    if x.dtype == dtype:
        return x
    return Elemwise(cast_op(dtype))(x)


def zeros_like(x, dtype=None) -> TensorVariable:
    """Zeros with the shape of x (and its dtype unless `dtype` is given)."""
    z = ELEMWISE["zeros_like"](as_tensor_variable(x))
    return z if dtype is None else cast(z, dtype)


def ones_like(x, dtype=None) -> TensorVariable:
    """Ones with the shape of x (and its dtype unless `dtype` is given)."""
    o = ELEMWISE["ones_like"](as_tensor_variable(x))
    return o if dtype is None else cast(o, dtype)


def fill(model, value) -> TensorVariable:
    """`value` broadcast to the shape of `model` (Theano's fill/second)."""
    model = as_tensor_variable(model)
    value = weak_constant(value, model) if isinstance(value, (int, float)) else value
    return second(model, value)  # noqa: F821 (defined by the loop above)


# Theano spellings
abs_ = abs  # noqa: F821
inv = reciprocal  # noqa: F821
div = true_div  # noqa: F821
floor_div = int_div  # noqa: F821
power = pow  # noqa: F821
bitwise_and, bitwise_or, bitwise_xor = and_, or_, xor  # noqa: F821
not_equal, equal, less, greater = neq, eq, lt, gt  # noqa: F821
less_equal, greater_equal = le, ge  # noqa: F821

__all__ = _UNARY + _BINARY + [
    "switch", "where", "clip", "cast", "zeros_like", "ones_like", "fill", "abs_", "inv", "div",
    "floor_div", "power", "bitwise_and", "bitwise_or", "bitwise_xor", "not_equal", "equal",
    "less", "greater", "less_equal", "greater_equal",
]
