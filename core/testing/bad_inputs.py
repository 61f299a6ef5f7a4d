"""Careless and hostile call-time values for a compiled function's inputs (wrong dtype, lossy
integers, wrong rank or static shape, strings, dates, records, None, NaN/inf, empty and
non-contiguous arrays, Python lists), the reference verdict on each (the array the input must
become, or the fact that the call must be refused naming the input), and the check of one
generated call against that verdict, for the conformance suite's `test_bad_call`."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

import theanine.tensor as T

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


def _scale():
    counts, weights = T.bvector("counts"), T.dmatrix("weights")
    return [counts, weights], weights * counts + 1, lambda c, w: w * c + 1


def _image():
    img = T.tensor("float32", shape=(3, None), name="img")
    return [img], (img * 2).sum(axis=1), lambda i: (i * 2).sum(axis=1, dtype="float32")


def _shift():
    u, s = T.tensor("uint8", shape=(None,)), T.iscalar("shift")  # input 0 has no name
    return [u, s], u + s, lambda a, b: a + b


# graphs for bad calls: name -> () -> (inputs, output, NumPy reference of the output)
BAD_CALL_GRAPHS: dict[str, Callable] = {"scale": _scale, "image": _image, "shift": _shift}


def _label(k: int, v) -> str:
    return f"input {k}" + (f" ({v.name!r})" if v.name else "")


def _agrees(got: np.ndarray, want: np.ndarray) -> bool:
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        rtol = 1e-5 if want.dtype == np.float32 else 1e-12
        return bool(np.allclose(got, want, rtol=rtol, atol=0, equal_nan=True))
    return bool(np.array_equal(got, want))


def check_bad_call(f: Callable, inputs: list, reference: Callable, data) -> None:
    """Draw a value for each of `f`'s inputs and call it: the call must give NumPy's answer
    for the exactly converted values, or raise TypeError/ValueError naming the first input at
    fault (for a broadcast error, every input involved, and the line that built the node)."""
    values, expected, refused, want = [], [], None, None
    for k, v in enumerate(inputs):
        value = data.draw(call_values(v.dtype, v.type.shape), label=_label(k, v))
        values.append(value)
        try:
            expected.append(expected_input(value, v.dtype, v.type.shape))
        except Refused as why:
            refused = refused or (k, why)
    if refused is None:
        try:
            with np.errstate(all="ignore"):
                want = np.asarray(reference(*expected))
        except ValueError:
            want = None  # shapes NumPy cannot broadcast
    try:
        got = f(*values)
    except (TypeError, ValueError) as e:
        message = str(e)
        if refused is not None:
            k, why = refused
            assert re.search(re.escape(_label(k, inputs[k])) + r"(?!\d)", message), \
                f"refused {why}, but the error names another input:\n{message}"
            return
        assert want is None, f"refused values NumPy takes:\n{message}"
        for k, v in enumerate(inputs):
            if np.ndim(expected[k]):
                assert _label(k, v) in message, f"broadcast error without {_label(k, v)}"
        assert "The node was built at:\n  File " in message, "the error names no line"
        return
    assert refused is None, f"accepted {_label(refused[0], inputs[refused[0]])}: {refused[1]}"
    assert want is not None, "answered where NumPy cannot broadcast"
    assert _agrees(np.asarray(got), want), f"got {got!r}, NumPy gives {want!r}"
