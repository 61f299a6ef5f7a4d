"""Call-time conversion of inputs and shared values: a value is converted only when every element
survives exactly (no wrap-around, no lost integer precision), and values that are not numbers
(strings, bytes, dates, records, objects) are refused with the input's name."""

import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theanine as th
import theanine.tensor as T
from theanine.tensor.type import TensorType

NUMERIC = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128"]


def _exact(src: np.ndarray, dst: str) -> bool:
    """The independent reference: Python compares ints, floats and complex numbers exactly."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        out = src.astype(dst)
    return all(a == b or (a != a and b != b)
               for a, b in zip(src.ravel().tolist(), out.ravel().tolist()))


@pytest.mark.parametrize("dtype, value, fragment", [
    ("int8", np.uint8([200]), r"dtype uint8 with values in \[200, 200\], outside int8's range "
                              r"\[-128, 127\]"),
    ("int32", np.uint32([2 ** 32 - 1]), r"dtype uint32 with values in \[4294967295, "),
    ("uint8", np.int8([-1, 3]), r"dtype int8 with values in \[-1, 3\], outside uint8's range"),
    ("float64", np.int64([1, 2 ** 53 + 1]), r"int64 with values in \[1, 9007199254740993\]: "
                                            r"integers above 2\*\*53"),
    ("float64", np.uint64([2 ** 64 - 1]), r"uint64 with values in \[18446744073709551615, "),
    ("int8", [300], r"list of dtype int64 with values in \[300, 300\]"),
    ("int8", 300, r"int of dtype int64 with values in \[300, 300\]"),
    ("bool", np.int64([0, 2]), r"with values in \[0, 2\], not only 0 and 1"),
    ("int16", np.float64([1.0, np.nan]), r"NaN, not integers in int16's range"),
])
def test_values_that_would_change_are_refused_with_the_input_and_range(dtype, value, fragment):
    shape = np.shape(value)
    x = T.tensor(dtype, shape=(None,) * len(shape), name="counts")
    f = th.function([x], x, backend="numpy")
    with pytest.raises(TypeError, match=rf"input 0 \('counts'\): expected dtype {dtype}, got .*"
                                        rf"{fragment}.*allow_input_downcast=True"):
        f(value)
    g = th.function([x], x, backend="numpy", allow_input_downcast=True)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(g(value), np.asarray(value).astype(dtype))


def test_values_that_fit_are_converted_exactly():
    x8, xf, xu = T.bvector("small"), T.dvector("big"), T.tensor("uint8", shape=(None,))
    assert th.function([x8], x8, backend="numpy")(np.uint8([0, 127])).tolist() == [0, 127]
    assert th.function([x8], x8, backend="numpy")([-128, 127]).tolist() == [-128, 127]
    assert th.function([xu], xu, backend="numpy")(np.int64([0, 255])).tolist() == [0, 255]
    exact = np.int64([2 ** 60, -2 ** 63, 2 ** 53, -(2 ** 53)])  # few significant bits
    assert th.function([xf], xf, backend="numpy")(exact).tolist() == [float(v) for v in exact]
    assert th.function([xf], xf, backend="numpy")(np.uint64([2 ** 63])).tolist() == [2.0 ** 63]


def test_set_value_refuses_values_that_would_change():
    w = th.shared(np.zeros(2, dtype="int8"), name="w")
    with pytest.raises(TypeError, match=r"shared variable 'w'.set_value: expected dtype int8, "
                                        r"got an ndarray of dtype uint8 with values in \[1, 200\]"):
        w.set_value(np.uint8([1, 200]))
    with pytest.raises(TypeError, match=r"'w'.set_value: .*a list of dtype int64 .*\[5, 300\]"):
        w.set_value([5, 300])
    w.set_value(np.uint8([1, 127]))
    assert w.get_value().dtype == np.int8 and w.get_value().tolist() == [1, 127]
    d = th.shared(np.zeros(1), name="d")
    with pytest.raises(TypeError, match="integers above 2\\*\\*53"):
        d.set_value(np.int64([2 ** 53 + 1]))


@given(st.data())
def test_accepted_exactly_when_every_value_survives(data):
    """Against Python's exact comparison of the value before and after NumPy's cast."""
    src = data.draw(st.sampled_from(NUMERIC))
    dst = data.draw(st.sampled_from(NUMERIC))
    value = data.draw(hnp.arrays(src, data.draw(st.integers(0, 4))))
    t = TensorType(dst, (None,))
    try:
        out = t.filter(value, name="v")
    except TypeError as e:
        assert not _exact(value, dst), f"refused a lossless {src} -> {dst} conversion: {e}"
        assert str(e).startswith(f"v: expected dtype {dst}, got an ndarray of dtype {src}")
        return
    assert out.dtype == dst and _exact(value, dst), f"accepted a lossy {src} -> {dst} cast"


@pytest.mark.parametrize("value, holding", [
    (["abc"], r"a list holding strings \(NumPy dtype <U3\)"),
    (["1.5"], r"a list holding strings"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), r"an ndarray holding datetime64 values"),
    (np.array([1], dtype="timedelta64[s]"), r"an ndarray holding timedelta64 values"),
    (np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), r"an ndarray holding structured or void"),
    (np.zeros(2, dtype=[("a", "f8")]), r"an ndarray holding structured or void"),
    (np.array([b"1"]), r"an ndarray holding bytes"),
    ([None], r"a list holding Python objects"),
    (np.array([1.0, None], dtype=object), r"an ndarray holding Python objects"),
])
def test_values_that_are_not_numbers_are_refused_with_the_input(value, holding):
    x = T.dvector("prices")
    f = th.function([x], x * 2, backend="numpy")
    with pytest.raises(TypeError, match=rf"input 0 \('prices'\): expected numbers of dtype "
                                        rf"float64, got {holding}"):
        f(value)
    s = T.dscalar()
    with pytest.raises(TypeError, match=r"input 0: expected numbers of dtype float64, got a str "
                                        r"holding strings"):
        th.function([s], s * 2, backend="numpy")("1.5")


def test_python_floats_round_to_floatx_as_in_theano():
    """Theano's one lossy default: a Python float for a floatX input (a learning rate, an
    `In(..., value=0.2)`) is rounded to floatX unless allow_downcast is set either way."""
    old = th.config.floatX
    th.config.floatX = "float32"
    try:
        x, lr = T.scalar("x"), T.scalar("lr")
        f = th.function([x, th.In(lr, value=0.2)], x * lr, backend="numpy")
        assert f(0.1) == np.float32(0.1) * np.float32(0.2) and f(0.1).dtype == np.float32
        assert f(x=0.1, lr=0.3) == np.float32(0.1) * np.float32(0.3)
        assert np.isinf(f(float("inf")))
        with pytest.raises(TypeError, match=r"input 0 \('x'\): expected dtype float32, got a "
                                            r"float .*\[1e\+300, 1e\+300\]"):
            f(1e300)
        with pytest.raises(TypeError, match=r"input 0 \('x'\): expected dtype float32, got a "
                                            r"float64 of dtype float64"):
            f(np.float64(0.1))  # NumPy values keep the lossless rule
        g = th.function([x], x, backend="numpy", allow_input_downcast=False)
        with pytest.raises(TypeError, match=r"input 0 \('x'\): .*not exactly representable"):
            g(0.1)
        with pytest.raises(TypeError, match=r"input 0 \('h'\): .*not exactly representable"):
            h = T.scalar("h", dtype="float16")
            th.function([h], h, backend="numpy")(0.1)  # float16 is not floatX
    finally:
        th.config.floatX = old
