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


def ufunc_rule(ufunc: np.ufunc):
    def rule(*dtypes):
        resolved = ufunc.resolve_dtypes(tuple(np.dtype(d) for d in dtypes) + (None,))
        return _no_half(dtypes, resolved[-1])

    return rule


def real_rule(ufunc: np.ufunc):
    """ufunc's dtype rule for ops defined on real numbers only (their NumPy implementation
    has no complex loop): complex inputs are a TypeError when the graph is built."""
    base = ufunc_rule(ufunc)

    def rule(*dtypes):
        if any(np.dtype(d).kind == "c" for d in dtypes):
            raise TypeError(f"expected real inputs, got {', '.join(map(str, dtypes))}")
        return base(*dtypes)

    return rule


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

# -- binary arithmetic -------------------------------------------------------------------------
_def("add", 2, np.add, ufunc_rule(np.add), lambda i, o, g: [g, g], symbol="+", precedence=5,
     commutative=True, associative=True)
_def("sub", 2, np.subtract, ufunc_rule(np.subtract), lambda i, o, g: [g, -g], symbol="-",
     precedence=5)
_def("mul", 2, np.multiply, ufunc_rule(np.multiply),
     lambda i, o, g: [g * i[1], g * i[0]], symbol="*", precedence=6, commutative=True,
     associative=True)
_def("true_div", 2, np.true_divide, ufunc_rule(np.true_divide),
     lambda i, o, g: [g / i[1], -g * o / i[1]], symbol="/", precedence=6)
_def("int_div", 2, np.floor_divide, ufunc_rule(np.floor_divide), _zero_grads, symbol="//",
     precedence=6)
_def("mod", 2, np.mod, ufunc_rule(np.mod), _mod_grad, symbol="%", precedence=6)
_def("pow", 2, np.power, ufunc_rule(np.power), _pow_grad, symbol="**", precedence=8)
_def("maximum", 2, np.maximum, ufunc_rule(np.maximum), _max_grad, commutative=True)
_def("minimum", 2, np.minimum, ufunc_rule(np.minimum), _min_grad, commutative=True)
_def("arctan2", 2, np.arctan2, ufunc_rule(np.arctan2),
     lambda i, o, g: [g * i[1] / (i[0] ** 2 + i[1] ** 2), -g * i[0] / (i[0] ** 2 + i[1] ** 2)])

# -- unary arithmetic --------------------------------------------------------------------------
_def("neg", 1, np.negative, ufunc_rule(np.negative), lambda i, o, g: [-g], symbol="-",
     precedence=7)
_def("abs", 1, np.absolute, ufunc_rule(np.absolute), lambda i, o, g: [g * _m().sign(i[0])])
_def("sign", 1, np.sign, ufunc_rule(np.sign), _zero_grads)
_def("sqr", 1, np.square, ufunc_rule(np.square), lambda i, o, g: [g * 2 * i[0]])
_def("sqrt", 1, np.sqrt, ufunc_rule(np.sqrt), lambda i, o, g: [g * 0.5 / o])
_def("reciprocal", 1, lambda x: np.true_divide(1, x),
     lambda a: ufunc_rule(np.true_divide)(a, a),
     lambda i, o, g: [-g * o * o])
_def("exp", 1, np.exp, ufunc_rule(np.exp), lambda i, o, g: [g * o])
_def("exp2", 1, np.exp2, ufunc_rule(np.exp2), lambda i, o, g: [g * o * _LN2])
_def("expm1", 1, np.expm1, ufunc_rule(np.expm1), lambda i, o, g: [g * (o + 1)])
_def("log", 1, np.log, ufunc_rule(np.log), lambda i, o, g: [g / i[0]])
_def("log2", 1, np.log2, ufunc_rule(np.log2), lambda i, o, g: [g / (i[0] * _LN2)])
_def("log10", 1, np.log10, ufunc_rule(np.log10), lambda i, o, g: [g / (i[0] * _LN10)])
_def("log1p", 1, np.log1p, ufunc_rule(np.log1p), lambda i, o, g: [g / (i[0] + 1)])
_def("sin", 1, np.sin, ufunc_rule(np.sin), lambda i, o, g: [g * _m().cos(i[0])])
_def("cos", 1, np.cos, ufunc_rule(np.cos), lambda i, o, g: [-g * _m().sin(i[0])])
_def("tan", 1, np.tan, ufunc_rule(np.tan), lambda i, o, g: [g * (1 + o * o)])
_def("arcsin", 1, np.arcsin, ufunc_rule(np.arcsin),
     lambda i, o, g: [g / _m().sqrt(1 - i[0] * i[0])])
_def("arccos", 1, np.arccos, ufunc_rule(np.arccos),
     lambda i, o, g: [-g / _m().sqrt(1 - i[0] * i[0])])
_def("arctan", 1, np.arctan, ufunc_rule(np.arctan), lambda i, o, g: [g / (1 + i[0] * i[0])])
_def("sinh", 1, np.sinh, ufunc_rule(np.sinh), lambda i, o, g: [g * _m().cosh(i[0])])
_def("cosh", 1, np.cosh, ufunc_rule(np.cosh), lambda i, o, g: [g * _m().sinh(i[0])])
_def("tanh", 1, np.tanh, ufunc_rule(np.tanh), lambda i, o, g: [g * (1 - o * o)])
_def("floor", 1, np.floor, ufunc_rule(np.floor), _zero_grads)
_def("ceil", 1, np.ceil, ufunc_rule(np.ceil), _zero_grads)
_def("round", 1, np.round, _upcast, _zero_grads)
_def("trunc", 1, np.trunc, ufunc_rule(np.trunc), _zero_grads)
_def("sigmoid", 1, lambda x: _sigmoid(x), real_rule(np.exp),
     lambda i, o, g: [g * o * (1 - o)])
_def("softplus", 1, lambda x: _softplus(x), real_rule(np.exp),
     lambda i, o, g: [g * _m().sigmoid(i[0])])

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
_def("switch", 3, np.where, lambda c, a, b: _upcast(a, b), _switch_grad)
_def("clip", 3, _clip_impl, _upcast, _clip_grad)
_def("second", 2, _second_impl, lambda a, b: b,
     lambda i, o, g: [None, g])
_def("zeros_like", 1, np.zeros_like, lambda a: a, _zero_grads)
_def("ones_like", 1, np.ones_like, lambda a: a, _zero_grads)
_def("identity", 1, np.array, lambda a: a, lambda i, o, g: [g])


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


def cast_op(dtype: str) -> ScalarOp:
    """The scalar op converting to `dtype` (one per target dtype, so ops compare equal)."""
    name = f"cast_{dtype}"
    if name not in SCALAR_OPS:
        np_dtype = np.dtype(dtype)

        def grad(inputs, out, gz, _dtype=dtype):
            x = inputs[0]
            return [_m().cast(gz, x.dtype) if x.dtype.startswith(("float", "complex"))
                    else None]

        def impl(x, _dt=np_dtype):
            return np.asarray(x).astype(_dt)

        op = ScalarOp(name, 1, impl, lambda a, _d=dtype: _d, grad, identity=("theanine", name))
        _CASTS[op] = dtype  # before it is published, so no thread sees it unrecognised
        SCALAR_OPS[name] = op
    return SCALAR_OPS[name]
