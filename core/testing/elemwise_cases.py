"""Conformance cases for every elementwise scalar op (theanine.tensor.scalar_ops.SCALAR_OPS)
and the elementwise functions built on them (switch, where, clip, cast, fill, ...).

Each case compiles one graph per dtype that applies the op in several broadcasting situations
at once: matrix with vector (rank and run-time size-1 broadcasting), 0-d with vector, matrix
with 0-d, and matrix with a constant.
"""

from __future__ import annotations

import numpy as np

from theanine.testing.cases import ALL, FLOAT, NUMERIC, Arg, Case, free, register
from theanine.testing.strategies import Domain

MATH = ("float32", "float64", "int8", "int32")
ROUNDING = ("float32", "float64", "int8", "bool")
COMPARE = ("bool", "int8", "uint8", "int64", "float32", "float64")
LOGIC = ("bool", "int8", "float32", "float64")
BITS = ("bool", "int8", "int16", "uint8", "int64")
SELECT = ("bool", "int8", "uint8", "int64", "float32", "float64")

RS = Domain(specials=True)
TIES = Domain(-3, 3, specials=True, ties=True)
NONNEG = Domain(0, 10, specials=True)

# name: (domain, dtypes)
UNARY = {
    "neg": (RS, NUMERIC), "abs": (RS, ALL), "sign": (RS, NUMERIC), "sqr": (RS, NUMERIC),
    "sqrt": (NONNEG, MATH), "reciprocal": (Domain(specials=True, nonzero=True), MATH),
    "exp": (RS, MATH), "exp2": (RS, MATH), "expm1": (RS, MATH),
    "log": (NONNEG, MATH), "log2": (NONNEG, MATH), "log10": (NONNEG, MATH),
    "log1p": (Domain(-1, 10, specials=True), MATH),
    "sin": (RS, MATH), "cos": (RS, MATH), "tan": (Domain(-1.5, 1.5, specials=True), MATH),
    "arcsin": (Domain(-1, 1, specials=True), MATH), "arccos": (Domain(-1, 1, specials=True), MATH),
    "arctan": (RS, MATH), "sinh": (RS, MATH), "cosh": (RS, MATH), "tanh": (RS, MATH),
    "floor": (Domain(specials=True, ties=True), ROUNDING),
    "ceil": (Domain(specials=True, ties=True), ROUNDING),
    "round": (Domain(specials=True, ties=True), ROUNDING),
    "trunc": (Domain(specials=True, ties=True), ROUNDING),
    "sigmoid": (Domain(-40, 40, specials=True), MATH),
    "softplus": (Domain(-40, 40, specials=True), MATH),
    "logical_not": (TIES, LOGIC), "invert": (RS, BITS),
    "isnan": (RS, ("float32", "float64", "int32")), "isinf": (RS, ("float32", "float64", "int32")),
    "identity": (RS, LOGIC),
}

# name: (domain of a, domain of b, dtypes, constant b)
BINARY = {
    "add": (RS, RS, ALL, 2), "sub": (RS, RS, NUMERIC, 2), "mul": (RS, RS, ALL, 2),
    "true_div": (RS, RS, ALL, 2), "int_div": (RS, RS, NUMERIC, 3), "mod": (RS, RS, NUMERIC, 3),
    "maximum": (TIES, TIES, ALL, 1), "minimum": (TIES, TIES, ALL, 1),
    "arctan2": (RS, RS, MATH, 2),
    **{name: (TIES, TIES, COMPARE, 1) for name in ("lt", "gt", "le", "ge", "eq", "neq")},
    **{name: (TIES, TIES, LOGIC, 1) for name in ("logical_and", "logical_or", "logical_xor")},
    **{name: (RS, RS, BITS, 3) for name in ("and_", "or_", "xor")},
}


def _math(name: str):
    from theanine.tensor import math

    return getattr(math, name)


def _typed(value, like):
    """`value` as a constant of like's dtype (True for bool)."""
    from theanine.tensor.basic import constant

    return constant(np.asarray(value, dtype=like.dtype))


def unary_case(name: str, domain: Domain, dtypes, **kw) -> Case:
    """`name`(x) on a matrix and on a 0-d input."""
    fn = _math(name)
    return Case(name, lambda x, s: [fn(x), fn(s)],
                (free(2, domain=domain, name="x"), free(0, domain=domain, name="s")),
                tuple(dtypes), functions=(name,), **kw)


def binary_case(name: str, dom_a: Domain, dom_b: Domain, dtypes, const, label: str = "",
                fn_name: str | None = None) -> Case:
    """`name`(a, b) for matrix-vector, 0-d-vector, matrix-0-d and matrix-constant operands."""
    fn = _math(fn_name or name)

    def build(a, b, a0, b0):
        return [fn(a, b), fn(a0, b), fn(a, b0), fn(a, _typed(const, a))]

    args = (free(2, domain=dom_a, name="a"), free(1, domain=dom_b, name="b"),
            free(0, domain=dom_a, name="a0"), free(0, domain=dom_b, name="b0"))
    return Case(name, build, args, tuple(dtypes), functions=(fn_name or name,), label=label)


for _name, (_dom, _dtypes) in UNARY.items():
    register(unary_case(_name, _dom, _dtypes))
for _name, (_da, _db, _dtypes, _const) in BINARY.items():
    register(binary_case(_name, _da, _db, _dtypes, _const))

# pow: float bases stay non-negative (a negative base to a fractional power is NaN); integer
# exponents stay non-negative (NumPy refuses negative integer powers)
register(binary_case("pow", NONNEG, Domain(-3, 3, specials=True, ties=True), FLOAT, 2))
register(binary_case("pow[int]", Domain(-4, 4), Domain(0, 3), ("int8", "int32", "uint8"), 2,
                     label="pow", fn_name="pow"))


def _build_second(a, b, a0, b0):
    m = _math
    return [m("second")(a, b), m("second")(a0, b), m("fill")(a, b0), m("fill")(a, 2)]


register(Case("second", _build_second,
              (free(2, name="a"), free(1, name="b"), free(0, name="a0"), free(0, name="b0")),
              LOGIC, functions=("second", "fill")))


def _like_case(name: str) -> Case:
    fn = _math(name)
    return Case(name, lambda x, s: [fn(x), fn(s), fn(x, dtype="int32")],
                (free(2, domain=RS, name="x"), free(0, domain=RS, name="s")), LOGIC,
                functions=(name,))


register(_like_case("zeros_like"))
register(_like_case("ones_like"))


def _build_switch(c, a, b, c0):
    m = _math
    return [m("switch")(c, a, b), m("where")(c0, a, b), m("switch")(c, a, _typed(1, a))]


register(Case("switch", _build_switch,
              (free(2, "bool", name="c"), free(2, domain=TIES, name="a"),
               free(1, domain=TIES, name="b"), free(0, "bool", name="c0")),
              SELECT, functions=("switch", "where")))


def _build_clip(x, lo, hi):
    clip = _math("clip")
    return [clip(x, lo, hi), clip(x, 0, 2), clip(lo, hi, hi)]


register(Case("clip", _build_clip,
              (free(2, domain=TIES, name="x"), free(1, domain=TIES, name="lo"),
               free(0, domain=TIES, name="hi")), NUMERIC, functions=("clip",)))


def _build_cast(x):
    from theanine.tensor.type import DTYPES

    cast = _math("cast")
    return [cast(x, t) for t in DTYPES if t != x.dtype]


# non-negative and below 128: every conversion is defined (C leaves out-of-range and NaN
# float-to-int conversions undefined)
register(Case("cast", _build_cast, (Arg((None, None), domain=Domain(-0.9, 100), name="x"),),
              ALL, functions=("cast",),
              notes="one output per target dtype; covers every cast_<dtype> scalar op"))

__all__ = ["UNARY", "BINARY", "unary_case", "binary_case"]
