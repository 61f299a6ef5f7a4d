"""Conformance cases for a backend's kernel machinery rather than one op: arrays large enough to
take multi-threaded paths (elementwise splits, reductions split over kept or reduced axes with
per-thread partial results), and 5-d broadcasting."""

from __future__ import annotations

from hypothesis import strategies as st

from theanine.testing.cases import Case, free, register
from theanine.testing.strategies import Domain

LARGE_DTYPES = ("int32", "float32", "float64")
# (rows, columns) of about 40k elements, split differently: few long rows, square-ish, one column
LARGE_SHAPES = ((3, 13001), (211, 199), (40009, 1), (1, 40009), (64, 640))


def _T(name: str):
    import theanine.tensor as T

    return getattr(T, name)


def _large_shapes(with_vector: bool):
    def make(shape, vector_full):
        if not with_vector:
            return [shape]
        return [shape, (shape[1] if vector_full else 1,)]

    return lambda: st.tuples(st.sampled_from(LARGE_SHAPES), st.booleans()).map(
        lambda d: make(*d))


def _large_elemwise(x, y):
    T = _T
    return [T("exp")(T("sin")(x)) * y + x, T("maximum")(x, y) - T("sqr")(x)]


register(Case("elemwise[large]", _large_elemwise,
              (free(2, domain=Domain(-3, 3, specials=True), name="x"),
               free(1, domain=Domain(-3, 3), name="y")), LARGE_DTYPES,
              label="elemwise (large)", shapes=_large_shapes(True), extended=False,
              notes="above the C backend's 32768-element threshold for multi-threading"))


def _large_reduce(x):
    T = _T
    return [T("sum")(x), T("sum")(x, axis=0), T("sum")(x, axis=1), T("max")(x, axis=0),
            T("min")(x), T("mean")(x[::-1, ::2], axis=0)]


register(Case("reduce[large]", _large_reduce,
              (free(2, domain=Domain(-1, 3, specials=True), name="x"),), LARGE_DTYPES,
              label="reductions (large)", shapes=_large_shapes(False), accumulates=True,
              extended=False,
              notes="mostly positive values: a sum of ~40k float32 values near 0 would hold "
                    "a backend to digits NumPy's own pairwise sum does not have"))


def _rank5(a, b, c):
    T = _T
    return [T("mul")(a, b) + c, T("sum")(a * c, axis=(1, 3)), T("transpose")(a, (4, 2, 0, 3, 1))]


register(Case("elemwise[5d]", _rank5,
              (free(5, name="a"), free(3, name="b"), free(5, name="c")),
              ("bool", "int8", "float32", "float64"), label="elemwise (5-d)"))

__all__ = ["LARGE_DTYPES", "LARGE_SHAPES"]
