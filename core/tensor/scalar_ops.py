"""The table of scalar (per-element) operations: NumPy meaning, dtype rule and derivative.

Derivatives are written with tensor functions from `theanine.tensor.math`, imported lazily
because that module builds its Elemwise ops from this table.
"""

from __future__ import annotations

import math as _pymath

import numpy as np

from theanine.tensor.elemwise import ScalarOp


def _m():
    from theanine.tensor import math

    return math


def _no_half(dtypes, out: np.dtype) -> str:
    """NumPy gives float16 for small ints (exp(int8)); theanine gives float32 unless an input
    already was float16."""
    if out == np.float16 and "float16" not in dtypes:
        return "float32"
    return out.name


class UfuncRule:
    """The dtype rule of a NumPy ufunc (float16 only from float16 inputs); an object rather
    than a closure so that ops using it pickle."""

    __slots__ = ("ufunc",)

    def __init__(self, ufunc: np.ufunc):
        self.ufunc = ufunc

    def __call__(self, *dtypes) -> str:
        resolved = self.ufunc.resolve_dtypes(tuple(np.dtype(d) for d in dtypes) + (None,))
        return _no_half(dtypes, resolved[-1])

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.ufunc is self.ufunc

    def __hash__(self) -> int:
        return hash((type(self), self.ufunc.__name__))

    def __reduce__(self):
        return type(self), (self.ufunc,)


class RealRule(UfuncRule):
    """ufunc's dtype rule for ops defined on real numbers only (their NumPy implementation
    has no complex loop): complex inputs are a TypeError when the graph is built."""

    __slots__ = ()

    def __call__(self, *dtypes) -> str:
        if any(np.dtype(d).kind == "c" for d in dtypes):
            raise TypeError(f"expected real inputs, got {', '.join(map(str, dtypes))}")
        return super().__call__(*dtypes)


def ufunc_rule(ufunc: np.ufunc) -> UfuncRule:
    """The dtype rule of `ufunc` (see UfuncRule)."""
    return UfuncRule(ufunc)


def real_rule(ufunc: np.ufunc) -> RealRule:
    """The dtype rule of `ufunc` for real inputs only (see RealRule)."""
    return RealRule(ufunc)


def _upcast(*dtypes) -> str:
    return _no_half(dtypes, np.result_type(*[np.dtype(d) for d in dtypes]))


def _bool_rule(*dtypes) -> str:
    return "bool"


def _second_impl(a, b):
    return np.array(np.broadcast_to(b, np.broadcast_shapes(np.shape(a), np.shape(b))))


def _clip_impl(x, lo, hi):
    return np.minimum(np.maximum(x, lo), hi)


SCALAR_OPS: dict[str, ScalarOp] = {}
_CASTS: dict[ScalarOp, str] = {}  # theanine's cast ops -> their target dtype


def _def(name, nin, impl, rule, grad, **kw) -> None:
    SCALAR_OPS[name] = ScalarOp(name, nin, impl, rule, grad, identity=("theanine", name), **kw)


def is_builtin(sop: ScalarOp, name: str | None = None) -> bool:
    """True if `sop` is theanine's own scalar op (named `name`, when given): an op of
    someone else's that only shares its name is not."""
    ref = SCALAR_OPS.get(sop.name if name is None else name)
    return ref is not None and ref == sop


def cast_target(sop: ScalarOp) -> str | None:
    """The dtype `sop` converts to if it is one of theanine's casts (`cast_op`), else None."""
    return _CASTS.get(sop)


def _zero_grads(inputs, out, gz):
    return [None] * len(inputs)


def _pow_grad(inputs, out, gz):
    m = _m()
    x, y = inputs
    dx = m.switch(m.eq(y, 0), 0, gz * y * x ** (y - 1))
    dy = gz * out * m.log(x)
    return [dx, dy]


def _mod_grad(inputs, out, gz):
    x, y = inputs
    return [gz, -gz * _m().int_div(x, y)]


def _max_grad(inputs, out, gz):
    m = _m()
    x, y = inputs
    return [m.switch(m.ge(x, y), gz, 0), m.switch(m.lt(x, y), gz, 0)]


def _min_grad(inputs, out, gz):
    m = _m()
    x, y = inputs
    return [m.switch(m.le(x, y), gz, 0), m.switch(m.gt(x, y), gz, 0)]


def _clip_grad(inputs, out, gz):
    m = _m()
    x, lo, hi = inputs
    inside = m.and_(m.ge(x, lo), m.le(x, hi))
    return [m.switch(inside, gz, 0), m.switch(m.lt(x, lo), gz, 0), m.switch(m.gt(x, hi), gz, 0)]


def _switch_grad(inputs, out, gz):
    m = _m()
    c, a, b = inputs
    return [None, m.switch(c, gz, 0), m.switch(c, 0, gz)]


_EXP_RULE = ufunc_rule(np.exp)
_LN2 = _pymath.log(2.0)
_LN10 = _pymath.log(10.0)


# -- derivatives (module-level functions, so that scalar ops pickle) ---------------------------
def _add_grad(i, o, g):
    return [g, g]


def _sub_grad(i, o, g):
    return [g, -g]


def _mul_grad(i, o, g):
    return [g * i[1], g * i[0]]


def _true_div_grad(i, o, g):
    return [g / i[1], -g * o / i[1]]


def _arctan2_grad(i, o, g):
    return [g * i[1] / (i[0] ** 2 + i[1] ** 2), -g * i[0] / (i[0] ** 2 + i[1] ** 2)]


def _neg_grad(i, o, g):
    return [-g]


def _abs_grad(i, o, g):
    return [g * _m().sign(i[0])]


def _sqr_grad(i, o, g):
    return [g * 2 * i[0]]


def _sqrt_grad(i, o, g):
    return [g * 0.5 / o]


def _reciprocal_grad(i, o, g):
    return [-g * o * o]


def _exp_grad(i, o, g):
    return [g * o]


def _exp2_grad(i, o, g):
    return [g * o * _LN2]


def _expm1_grad(i, o, g):
    return [g * (o + 1)]


def _log_grad(i, o, g):
    return [g / i[0]]


def _log2_grad(i, o, g):
    return [g / (i[0] * _LN2)]


def _log10_grad(i, o, g):
    return [g / (i[0] * _LN10)]


def _log1p_grad(i, o, g):
    return [g / (i[0] + 1)]


def _sin_grad(i, o, g):
    return [g * _m().cos(i[0])]


def _cos_grad(i, o, g):
    return [-g * _m().sin(i[0])]


def _tan_grad(i, o, g):
    return [g * (1 + o * o)]


def _arcsin_grad(i, o, g):
    return [g / _m().sqrt(1 - i[0] * i[0])]


def _arccos_grad(i, o, g):
    return [-g / _m().sqrt(1 - i[0] * i[0])]


def _arctan_grad(i, o, g):
    return [g / (1 + i[0] * i[0])]


def _sinh_grad(i, o, g):
    return [g * _m().cosh(i[0])]


def _cosh_grad(i, o, g):
    return [g * _m().sinh(i[0])]


def _tanh_grad(i, o, g):
    return [g * (1 - o * o)]


def _sigmoid_grad(i, o, g):
    return [g * o * (1 - o)]


def _softplus_grad(i, o, g):
    return [g * _m().sigmoid(i[0])]


def _second_grad(i, o, g):
    return [None, g]


def _identity_grad(i, o, g):
    return [g]


# -- dtype rules and implementations that are not ufuncs --------------------------------------
def _reciprocal_rule(a) -> str:
    return _TRUE_DIV_RULE(a, a)


def _switch_rule(c, a, b) -> str:
    return _upcast(a, b)


def _second_rule(a, b) -> str:
    return b


def _same_rule(a) -> str:
    return a


def _reciprocal_impl(x):
    return np.true_divide(1, x)


def _inexact(x) -> np.ndarray:
    """x, with integers and bools converted to the float dtype the exp rule gives them, so
    non-ufunc implementations compute in their output dtype (and -int8(-128) cannot wrap)."""
    x = np.asarray(x)
    if x.dtype.kind in "biu":
        return x.astype(_EXP_RULE(x.dtype))
    return x


def _sigmoid(x):
    # exp(-softplus(-x)): logaddexp never overflows, so neither does this
    return np.exp(-np.logaddexp(0, np.negative(_inexact(x))))


def _softplus(x):
    return np.logaddexp(0, _inexact(x))


_TRUE_DIV_RULE = ufunc_rule(np.true_divide)

# -- binary arithmetic -------------------------------------------------------------------------
_def("add", 2, np.add, ufunc_rule(np.add), _add_grad, symbol="+", precedence=5,
     commutative=True, associative=True)
_def("sub", 2, np.subtract, ufunc_rule(np.subtract), _sub_grad, symbol="-", precedence=5)
_def("mul", 2, np.multiply, ufunc_rule(np.multiply), _mul_grad, symbol="*", precedence=6,
     commutative=True, associative=True)
_def("true_div", 2, np.true_divide, _TRUE_DIV_RULE, _true_div_grad, symbol="/", precedence=6)
_def("int_div", 2, np.floor_divide, ufunc_rule(np.floor_divide), _zero_grads, symbol="//",
     precedence=6)
_def("mod", 2, np.mod, ufunc_rule(np.mod), _mod_grad, symbol="%", precedence=6)
_def("pow", 2, np.power, ufunc_rule(np.power), _pow_grad, symbol="**", precedence=8)
_def("maximum", 2, np.maximum, ufunc_rule(np.maximum), _max_grad, commutative=True)
_def("minimum", 2, np.minimum, ufunc_rule(np.minimum), _min_grad, commutative=True)
_def("arctan2", 2, np.arctan2, ufunc_rule(np.arctan2), _arctan2_grad)

# -- unary arithmetic --------------------------------------------------------------------------
_def("neg", 1, np.negative, ufunc_rule(np.negative), _neg_grad, symbol="-", precedence=7)
_def("abs", 1, np.absolute, ufunc_rule(np.absolute), _abs_grad)
_def("sign", 1, np.sign, ufunc_rule(np.sign), _zero_grads)
_def("sqr", 1, np.square, ufunc_rule(np.square), _sqr_grad)
_def("sqrt", 1, np.sqrt, ufunc_rule(np.sqrt), _sqrt_grad)
_def("reciprocal", 1, _reciprocal_impl, _reciprocal_rule, _reciprocal_grad)
_def("exp", 1, np.exp, ufunc_rule(np.exp), _exp_grad)
_def("exp2", 1, np.exp2, ufunc_rule(np.exp2), _exp2_grad)
_def("expm1", 1, np.expm1, ufunc_rule(np.expm1), _expm1_grad)
_def("log", 1, np.log, ufunc_rule(np.log), _log_grad)
_def("log2", 1, np.log2, ufunc_rule(np.log2), _log2_grad)
_def("log10", 1, np.log10, ufunc_rule(np.log10), _log10_grad)
_def("log1p", 1, np.log1p, ufunc_rule(np.log1p), _log1p_grad)
_def("sin", 1, np.sin, ufunc_rule(np.sin), _sin_grad)
_def("cos", 1, np.cos, ufunc_rule(np.cos), _cos_grad)
_def("tan", 1, np.tan, ufunc_rule(np.tan), _tan_grad)
_def("arcsin", 1, np.arcsin, ufunc_rule(np.arcsin), _arcsin_grad)
_def("arccos", 1, np.arccos, ufunc_rule(np.arccos), _arccos_grad)
_def("arctan", 1, np.arctan, ufunc_rule(np.arctan), _arctan_grad)
_def("sinh", 1, np.sinh, ufunc_rule(np.sinh), _sinh_grad)
_def("cosh", 1, np.cosh, ufunc_rule(np.cosh), _cosh_grad)
_def("tanh", 1, np.tanh, ufunc_rule(np.tanh), _tanh_grad)
_def("floor", 1, np.floor, ufunc_rule(np.floor), _zero_grads)
_def("ceil", 1, np.ceil, ufunc_rule(np.ceil), _zero_grads)
_def("round", 1, np.round, _upcast, _zero_grads)
_def("trunc", 1, np.trunc, ufunc_rule(np.trunc), _zero_grads)
_def("sigmoid", 1, _sigmoid, real_rule(np.exp), _sigmoid_grad)
_def("softplus", 1, _softplus, real_rule(np.exp), _softplus_grad)

# -- comparisons and logic (no gradient) -------------------------------------------------------
for _name, _uf, _sym in [("lt", np.less, "<"), ("gt", np.greater, ">"),
                         ("le", np.less_equal, "<="), ("ge", np.greater_equal, ">="),
                         ("eq", np.equal, "=="), ("neq", np.not_equal, "!=")]:
    _def(_name, 2, _uf, _bool_rule, _zero_grads, symbol=_sym, precedence=3)
_def("logical_and", 2, np.logical_and, _bool_rule, _zero_grads, commutative=True)
_def("logical_or", 2, np.logical_or, _bool_rule, _zero_grads, commutative=True)
_def("logical_xor", 2, np.logical_xor, _bool_rule, _zero_grads, commutative=True)
_def("logical_not", 1, np.logical_not, _bool_rule, _zero_grads)
_def("and_", 2, np.bitwise_and, ufunc_rule(np.bitwise_and), _zero_grads, symbol="&",
     precedence=2, commutative=True)
_def("or_", 2, np.bitwise_or, ufunc_rule(np.bitwise_or), _zero_grads, symbol="|",
     precedence=1, commutative=True)
_def("xor", 2, np.bitwise_xor, ufunc_rule(np.bitwise_xor), _zero_grads, symbol="^",
     precedence=1, commutative=True)
_def("invert", 1, np.invert, ufunc_rule(np.invert), _zero_grads, symbol="~", precedence=7)
_def("isnan", 1, np.isnan, _bool_rule, _zero_grads)
_def("isinf", 1, np.isinf, _bool_rule, _zero_grads)

# -- selection and filling ---------------------------------------------------------------------
_def("switch", 3, np.where, _switch_rule, _switch_grad)
_def("clip", 3, _clip_impl, _upcast, _clip_grad)
_def("second", 2, _second_impl, _second_rule, _second_grad)
_def("zeros_like", 1, np.zeros_like, _same_rule, _zero_grads)
_def("ones_like", 1, np.ones_like, _same_rule, _zero_grads)
_def("identity", 1, np.array, _same_rule, _identity_grad)


class _CastImpl:
    """Convert an array to one dtype (a picklable object, not a closure)."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def __call__(self, x) -> np.ndarray:
        return np.asarray(x).astype(self.dtype)

    def __reduce__(self):
        return type(self), (self.dtype,)


class _CastRule:
    """The dtype rule of a cast: always the target dtype."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = dtype

    def __call__(self, a) -> str:
        return self.dtype

    def __reduce__(self):
        return type(self), (self.dtype,)


def _cast_grad(inputs, out, gz):
    x = inputs[0]
    return [_m().cast(gz, x.dtype) if x.dtype.startswith(("float", "complex")) else None]


def cast_op(dtype: str) -> ScalarOp:
    """The scalar op converting to `dtype` (one per target dtype, so ops compare equal)."""
    name = f"cast_{dtype}"
    if name not in SCALAR_OPS:
        op = ScalarOp(name, 1, _CastImpl(np.dtype(dtype)), _CastRule(dtype), _cast_grad,
                      identity=("theanine", name))
        _CASTS[op] = dtype  # before it is published, so no thread sees it unrecognised
        SCALAR_OPS[name] = op
    return SCALAR_OPS[name]


def builtin_scalar_op(name: str) -> ScalarOp:
    """The built-in scalar op `name` of this process's table (how a pickled one is loaded)."""
    op = SCALAR_OPS.get(name)
    if op is None:
        raise ValueError(f"no built-in scalar op is named {name!r}")
    return op


def reduce_scalar_op(op: ScalarOp) -> tuple:
    """How `op` pickles: a built-in op (casts included) as a lookup into this module's table,
    so a loaded graph uses the loading process's own op; any other op by its fields, which
    must then be module-level callables or picklable objects."""
    if is_builtin(op):  # the table's op or a copy of it (equal by identity)
        if isinstance(op.dtype_rule, _CastRule):
            return cast_op, (op.dtype_rule.dtype,)
        return builtin_scalar_op, (op.name,)
    return _scalar_op_from_fields, ({f: getattr(op, f) for f in ScalarOp.__slots__},)


def _scalar_op_from_fields(fields: dict) -> ScalarOp:
    op = object.__new__(ScalarOp)
    for k, v in fields.items():
        setattr(op, k, v)
    return op


# -- random draws (theanine.tensor.random): a value from (key, counter, flat index) ------------
def _draw_impl(kind: str, dtype: str):
    from theanine.tensor import philox

    return lambda key, ctr, index: philox.draw(kind, dtype, key, ctr, index)


def _const_rule(dtype: str):
    return lambda *dtypes: dtype


for _kind in ("uniform", "normal"):
    for _dt in ("float32", "float64"):
        _def(f"random_{_kind}_{_dt}", 3, _draw_impl(_kind, _dt), _const_rule(_dt), _zero_grads)


def _binomial_impl(key, ctr, index, n, p):
    from theanine.tensor.random_ops import binomial_draw

    return binomial_draw(key, ctr, index, n, p)


# Binomial(n, p) counts (int64) from the element's float64 uniform (random_ops.binomial_draw)
_def("random_binomial", 5, _binomial_impl, _const_rule("int64"), _zero_grads)
