"""Generated careless calls on every backend: each call returns NumPy's answer for the values
its inputs convert to exactly, or raises TypeError/ValueError naming the input at fault (for a
broadcast error, every input involved). Never a crash, a hang, a wrap-around or a wrong answer."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.testing.bad_inputs import Refused, call_values, expected_input

BACKENDS = ["numpy", "c", "opencl"]


def _scale():
    counts, weights = T.bvector("counts"), T.dmatrix("weights")
    return [counts, weights], weights * counts + 1, lambda c, w: w * c + 1


def _image():
    img = T.tensor("float32", shape=(3, None), name="img")
    return [img], (img * 2).sum(axis=1), lambda i: (i * 2).sum(axis=1, dtype="float32")


def _shift():
    u, s = T.tensor("uint8", shape=(None,)), T.iscalar("shift")  # input 0 has no name
    return [u, s], u + s, lambda a, b: a + b


GRAPHS = {"scale": _scale, "image": _image, "shift": _shift}
_compiled: dict = {}


def _function(backend: str, graph: str):
    ok, why = backends()[backend].available()
    if not ok:
        pytest.skip(f"backend {backend!r} is not available: {why}")
    key = (backend, graph)
    if key not in _compiled:
        inputs, output, reference = GRAPHS[graph]()
        _compiled[key] = (inputs, th.function(inputs, output, backend=backend), reference)
    return _compiled[key]


def _label(k: int, v) -> str:
    return f"input {k}" + (f" ({v.name!r})" if v.name else "")


def _agrees(got: np.ndarray, want: np.ndarray) -> bool:
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if want.dtype.kind in "fc":
        rtol = 1e-5 if want.dtype == np.float32 else 1e-12
        return bool(np.allclose(got, want, rtol=rtol, atol=0, equal_nan=True))
    return bool(np.array_equal(got, want))


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
def test_a_bad_call_is_refused_by_name_or_answered_as_numpy(backend, graph, data):
    inputs, f, reference = _function(backend, graph)
    values, expected, refused = [], [], None
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
        assert "test_bad_calls.py" in message, "the error does not point at the user's line"
        return
    if refused is not None:
        k, why = refused
        pytest.fail(f"accepted {_label(k, inputs[k])} with {why}")
    assert want is not None, "answered where NumPy cannot broadcast"
    assert _agrees(np.asarray(got), want), f"got {got!r}, NumPy gives {want!r}"
