"""Careless and hostile call-time values for a compiled function's inputs (wrong dtype, lossy
integers, wrong rank or static shape, strings, dates, records, None, NaN/inf, empty and
non-contiguous arrays, Python lists), and the reference verdict on each: the array the input
must become, or the fact that the call must be refused naming the input."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

NUMERIC = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128")
KINDS = ("exact", "other dtype", "small ints", "rank", "static shape", "strings",
         "list of strings", "dates", "records", "none", "list", "empty", "non-contiguous",
         "specials")


def _shape(draw, static: Sequence[int | None], min_side: int = 0) -> tuple[int, ...]:
    return tuple(s if s is not None else draw(st.integers(min_side, 3)) for s in static)


@st.composite
def call_values(draw, dtype: str, static: Sequence[int | None]):
    """A value for an input of `dtype` and static shape `static`, most of them wrong."""
    kind = draw(st.sampled_from(KINDS))
    shape = _shape(draw, static, min_side=1)
    if kind == "other dtype":
        return draw(hnp.arrays(draw(st.sampled_from(NUMERIC)), shape))
    if kind == "small ints":
        src = draw(st.sampled_from(["int8", "int64", "uint8", "uint64", "bool"]))
        lo = 0 if src[0] in "ub" else -3
        return draw(hnp.arrays(src, shape, elements=st.integers(lo, 1 if src == "bool" else 3)))
    if kind == "rank":
        ndim = draw(st.sampled_from([n for n in range(4) if n != len(static)]))
        return np.ones((2,) * ndim, dtype)
    if kind == "static shape" and any(s is not None for s in static):
        return np.ones(tuple(s + 1 if s is not None else 1 for s in static), dtype)
    if kind == "strings":
        return np.full(shape, draw(st.sampled_from(["1.5", "abc", "", "nan"])))
    if kind == "list of strings":
        return np.full(shape, "2").tolist() if shape else "2"
    if kind == "dates":
        return np.full(shape, draw(st.sampled_from(["2020-01-01", "NaT"])), "datetime64[D]")
    if kind == "records":
        return np.zeros(shape, [("a", "f8")] * draw(st.booleans()) + [("b", "i4")])
    if kind == "none":
        return draw(st.sampled_from([None, np.full(shape, None)]))
    if kind == "empty" and None in static:
        empty = tuple(0 if s is None else s for s in static)
        return np.ones(empty, draw(st.sampled_from(NUMERIC)))
    good = draw(hnp.arrays(dtype, shape))
    if kind == "list":
        return good.tolist()
    if kind == "non-contiguous" and good.ndim:
        wide = np.repeat(good, 2, axis=-1)[..., ::2]
        return wide.T.copy().T if draw(st.booleans()) else wide
    if kind == "specials" and good.dtype.kind in "fc":
        specials = hnp.arrays("float64", shape, elements=st.sampled_from(
            [np.nan, np.inf, -np.inf, -0.0, 1e300]))
        return draw(specials)
    return good


class Refused(Exception):
    """The reference verdict: a call with this value must be refused."""


def expected_input(value, dtype: str, static: Sequence[int | None]) -> np.ndarray:
    """The array an input of `dtype` and static shape `static` must receive for `value`, judged
    independently of theanine (Python's exact comparison of every value before and after the
    cast); raises Refused when the call must be refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.asarray(value)
    except Exception as e:
        raise Refused(f"not an array: {e}") from None
    if arr.dtype.kind not in "biufc":
        raise Refused(f"not numbers: {arr.dtype}")
    if arr.ndim != len(static) or any(s is not None and s != a
                                      for s, a in zip(static, arr.shape)):
        raise Refused(f"shape {arr.shape} for {tuple(static)}")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        out = arr.astype(dtype)
    for a, b in zip(arr.ravel().tolist(), out.ravel().tolist()):
        if not (a == b or (a != a and b != b)):
            raise Refused(f"{a!r} becomes {b!r} in {dtype}")
    return out
