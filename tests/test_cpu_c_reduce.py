"""The C backend's reductions against NumPy at sizes that use threads: every axis set over
contiguous, transposed, reversed, stepped and broadcast inputs (outer reduced axes accumulate
rows; small outputs split the reduced axis into per-thread partials), outputs laid out in the
input's memory order like NumPy's, and the same checks under an odd thread count."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends

pytestmark = pytest.mark.skipif(not backends()["c"].available()[0],
                                reason=f"C backend unavailable: {backends()['c'].available()[1]}")

AXES = [c for r in (1, 2, 3) for c in itertools.combinations(range(3), r)]
# 147456 elements (36864 in the stepped view): above the size at which a kernel is split
# between threads
SHAPE = (64, 48, 48)


def layouts(base: np.ndarray) -> dict[str, np.ndarray]:
    """Views of one array with every kind of stride pattern (same values, different order)."""
    return {"contiguous": base, "transposed": base.T, "moved": base.transpose(1, 2, 0),
            "reversed": base[::-1, :, ::-1], "stepped": base[::2, ::-1, ::2]}


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sums_over_every_axis_set_of_every_layout(axis, dtype):
    base = np.random.default_rng(4).uniform(-1, 1, size=SHAPE).astype(dtype)
    x = T.tensor(dtype, shape=(None,) * 3, name="x")
    f = th.function([x], [T.sum(x, axis=axis), T.max(x, axis=axis)], backend="c")
    rtol = 1e-4 if dtype == "float32" else 1e-11
    for name, view in layouts(base).items():
        s, m = f(view)
        np.testing.assert_allclose(s, view.sum(axis=axis, dtype="float64"), rtol=rtol,
                                   atol=rtol * 10, err_msg=name)
        np.testing.assert_array_equal(m, view.max(axis=axis), err_msg=name)


@pytest.mark.parametrize("shape, axis", [((300, 400), 0), ((8, 20000), 0), ((3, 50000), 0),
                                         ((20000, 8), 1), ((400, 300), (0,))],
                         ids=["partials", "split-rows", "few-rows", "short-rows", "tuple"])
def test_outer_axis_reductions_fused_with_a_broadcast_operand(shape, axis):
    rng = np.random.default_rng(5)
    xv = rng.normal(size=shape)
    row = rng.normal(size=(1, shape[1]))
    x, r = T.dmatrix("x"), T.dmatrix("r")
    f = th.function([x, r], T.sum(T.exp(x * 0.1) * r, axis=axis), backend="c")
    assert len(f._run.steps) == 1  # one fused reduction kernel
    for view in (xv, xv[::-1], np.asfortranarray(xv)):
        np.testing.assert_allclose(f(view, row), (np.exp(view * 0.1) * row).sum(axis=axis),
                                   rtol=1e-11, atol=1e-12)


def test_output_follows_the_input_memory_order_like_numpy():
    base = np.random.default_rng(6).normal(size=SHAPE)
    x = T.dtensor3("x")
    f = th.function([x], T.sum(x, axis=1), backend="c")
    for view in (base, base.T, base.transpose(2, 0, 1)):
        got, want = f(view), view.sum(axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert got.strides == want.strides  # NumPy's 'K' order
        del got  # lets the next call reuse (or replace) the buffer


def test_a_held_result_is_not_overwritten_when_the_layout_changes():
    base = np.random.default_rng(7).normal(size=SHAPE)
    x = T.dtensor3("x")
    f = th.function([x], T.sum(x, axis=0), backend="c")
    # rounding bound of a sum: relative to the sum of magnitudes, not to a result that
    # cancellation made small
    atol = 1e-12 * np.abs(base).sum(axis=0).max()
    first = f(base.T)
    keep = first.copy()
    second = f(base)
    np.testing.assert_allclose(second, base.sum(axis=0), rtol=1e-12, atol=atol)
    del second  # its buffer, laid out for `base`, is free to be reused by the next call
    third = f(base.T)
    np.testing.assert_array_equal(first, keep)
    np.testing.assert_allclose(third, base.T.sum(axis=0), rtol=1e-12, atol=atol)
    np.testing.assert_array_equal(third.strides, base.T.sum(axis=0).strides)


CHILD = """
import itertools, numpy as np, theanine as th, theanine.tensor as T
base = np.random.default_rng(8).uniform(size=(64, 48, 40))
x = T.dtensor3("x")
for r in (1, 2):
    for axis in itertools.combinations(range(3), r):
        f = th.function([x], T.sum(x, axis=axis), backend="c")
        for view in (base, base.T, base[::-1, ::-1]):
            np.testing.assert_allclose(f(view), view.sum(axis=axis), rtol=1e-11)
print("ok")
"""


def test_reductions_are_exact_with_an_odd_number_of_threads():
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_float32_sums_accumulate_in_double_across_runs():
    """A float32 sum to one value over a strided input is walked in short runs; the
    accumulator stays in double between them, so the result is the correctly rounded sum
    (NumPy's pairwise sum is within an ulp or two of it), where float32 accumulation would
    drift by hundreds of ulps."""
    x = T.tensor("float32", shape=(None, None), name="x")
    f = th.function([x], [T.sum(x), T.mean(x)], backend="c")
    base = np.full((20000, 8), 0.1, dtype=np.float32)
    view = base[:, ::3]  # runs of 3 elements
    exact = view.astype(np.float64).sum()
    total, mean = f(view)
    assert total.dtype == mean.dtype == np.float32
    assert total == np.float32(exact)
    assert mean == np.float32(exact / view.size)


def test_std_gradient_at_equal_values_matches_numpy():
    """At equal values std is 0 and its gradient 0/0: the sums must round as NumPy's do for
    the C backend to give NaN there too, for strided inputs as for contiguous ones."""
    x = T.tensor("float32", shape=(None, None, None), name="x")
    g = th.grad(T.std(x), x)
    base = np.full((1, 7, 7), 1.3902719, np.float32)
    for view in (base[:, ::2, ::2][:, :3, :3], np.ascontiguousarray(base[:, :3, :3])):
        got = th.function([x], g, backend="c")(view)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = th.function([x], g, backend="numpy")(view)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
