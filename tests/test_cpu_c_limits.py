"""The C backend's fixed-size loop descriptors (runtime.h, limits.py): ranks up to NumPy's 64
axes, kernels that would touch more arrays than a loop holds split in several, graphs of
higher rank refused at compile time, and values passed unconverted (trust_input=True) or
returned by an op's perform checked before a kernel reads them."""

import re

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.backends.cpu_c.limits import MAX_DIMS, MAX_OPERANDS
from theanine.codegen.fusion import KernelStep
from theanine.graph.basic import Apply, Op

pytestmark = pytest.mark.skipif(not backends()["c"].available()[0],
                                reason=f"C backend unavailable: {backends()['c'].available()[1]}")


def test_the_limits_are_numpys_rank_limit_and_what_runtime_h_is_built_with():
    with pytest.raises(ValueError):
        np.empty((1,) * (MAX_DIMS + 1))
    np.empty((1,) * MAX_DIMS)
    x = T.dvector("x")
    source = th.function([x], x + 1, backend="c")._run.source
    assert f"#define TH_MAXDIMS {MAX_DIMS}\n" in source
    assert f"#define TH_MAXOPS {MAX_OPERANDS}\n" in source


@pytest.mark.parametrize("ndim", [33, MAX_DIMS])
def test_elementwise_kernels_over_more_than_32_axes(ndim):
    x = T.tensor("float64", shape=(None,) * ndim, name="x")
    y = T.tensor("float64", shape=(None,) * ndim, name="y")
    f = th.function([x, y], [T.exp(x) + 1, x * y], backend="c")
    rng = np.random.default_rng(0)
    xv = rng.normal(size=(1,) * (ndim - 4) + (2, 3, 1, 2))
    yv = rng.normal(size=(1,) * (ndim - 4) + (2, 1, 4, 2))
    xv_t = np.swapaxes(rng.normal(size=xv.shape), -1, -4).copy()
    xv_t = np.swapaxes(xv_t, -1, -4)  # a non-contiguous view of the same shape
    for a in (xv, xv_t, xv):  # repeated: a heap overwritten by the first call shows later
        got = f(a, yv)
        np.testing.assert_allclose(got[0], np.exp(a) + 1, rtol=1e-14)
        np.testing.assert_allclose(got[1], a * yv, rtol=1e-14)


def test_reductions_and_dimshuffles_over_more_than_32_axes():
    ndim = 40
    x = T.tensor("float64", shape=(None,) * ndim, name="x")
    xv = np.random.default_rng(1).normal(size=(1,) * (ndim - 3) + (3, 4, 5))
    f = th.function([x], [T.sum(T.exp(x), axis=(0, ndim - 1)), T.max(x, axis=ndim - 2),
                          x.dimshuffle(*reversed(range(ndim))) * 2], backend="c")
    s, m, t = f(xv)
    np.testing.assert_allclose(s, np.exp(xv).sum(axis=(0, ndim - 1)), rtol=1e-13)
    np.testing.assert_array_equal(m, xv.max(axis=ndim - 2))
    np.testing.assert_array_equal(t, xv.transpose() * 2)


@pytest.mark.filterwarnings("ignore::theanine.rewrite.engine.RewriteWarning")  # NumPy's limit
def test_a_graph_of_higher_rank_than_numpy_allows_is_refused_when_compiled():
    x = T.tensor("float64", shape=(None,) * (MAX_DIMS + 1), name="wide")
    with pytest.raises(ValueError) as err:
        th.function([x], T.exp(x) + 1, backend="c")
    msg = str(err.value)
    assert f"at most {MAX_DIMS} dimensions" in msg and "'wide'" in msg
    assert f"has {MAX_DIMS + 1}" in msg and "test_cpu_c_limits.py" in msg


def _kernel_sizes(f):
    return [len(s.inputs) + len(s.outputs) for s in f._run.steps if isinstance(s, KernelStep)]


def test_a_sum_of_100_inputs_is_split_into_kernels_within_the_operand_limit():
    xs = [T.dvector(f"x{i}") for i in range(100)]
    total = xs[0]
    for v in xs[1:]:
        total = total + v
    f = th.function(xs, total, backend="c")
    sizes = _kernel_sizes(f)
    assert len(sizes) >= 2 and max(sizes) <= MAX_OPERANDS
    vals = [np.random.default_rng(i).normal(size=50) for i in range(100)]
    want = vals[0]
    for v in vals[1:]:
        want = want + v
    np.testing.assert_array_equal(f(*vals), want)


def test_a_kernel_with_many_extra_outputs_stays_within_the_operand_limit():
    # every partial sum is also an output: each is an extra output of the fused loop
    xs = [T.dvector(f"x{i}") for i in range(40)]
    partial = [xs[0]]
    for v in xs[1:]:
        partial.append(partial[-1] * 0.5 + v)
    f = th.function(xs, partial[1:], backend="c")
    assert max(_kernel_sizes(f)) <= MAX_OPERANDS
    vals = [np.random.default_rng(i).normal(size=7) for i in range(40)]
    acc = [vals[0]]
    for v in vals[1:]:
        acc.append(acc[-1] * 0.5 + v)
    for got, want in zip(f(*vals), acc[1:]):
        np.testing.assert_array_equal(got, want)


def test_a_reduction_of_a_sum_of_100_inputs():
    xs = [T.dmatrix(f"x{i}") for i in range(100)]
    total = xs[0]
    for v in xs[1:]:
        total = total + T.exp(v)
    f = th.function(xs, T.sum(total, axis=1), backend="c")
    assert max(_kernel_sizes(f)) <= MAX_OPERANDS
    vals = [np.random.default_rng(i).normal(size=(3, 4)) for i in range(100)]
    want = vals[0]
    for v in vals[1:]:
        want = want + np.exp(v)
    np.testing.assert_allclose(f(*vals), want.sum(axis=1), rtol=1e-13)


BAD_VALUES = {
    "a list": ([1.0, 2.0], "got a list"),
    "a tuple": ((1.0, 2.0), "got a tuple"),
    "a float": (1.5, "got a float"),
    "None": (None, "got a NoneType"),
    "another dtype": (np.arange(3, dtype=np.int8), "got an array of dtype int8 with 1 dim"),
    "another rank": (np.ones((2, 2)), "got an array of dtype float64 with 2 dim"),
    "swapped bytes": (np.ones(3, dtype=">f8"), ">f8 in non-native byte order"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_trust_input_never_crashes_on_values_it_did_not_convert(case):
    value, got = BAD_VALUES[case]
    x = T.dvector("x")
    y = T.dvector("y")
    f = th.function([x, y], T.exp(x) + y, backend="c", trust_input=True)
    good = np.arange(3.0)
    with pytest.raises(TypeError) as err:
        f(good, value)
    msg = str(err.value)
    assert re.search(r"input 1 \('y'\) must be a NumPy array of dtype float64 .* with 1 "
                     r"dimension\(s\)", msg), msg
    assert got in msg and "trust_input=True" in msg
    assert "y = T.dvector" in msg.split("built at:")[1]  # the line that made the input
    np.testing.assert_allclose(f(good, good), np.exp(good) + good, rtol=1e-15)  # still works


@pytest.mark.parametrize("trust", [False, True])
def test_unaligned_and_strided_arrays_are_read_correctly(trust):
    x = T.dvector("x")
    f = th.function([x], T.exp(x) * 2, backend="c", trust_input=trust)
    raw = np.zeros(8 * 9 + 1, dtype=np.uint8)
    unaligned = raw[1:].view(np.float64)
    unaligned[:] = np.linspace(-1, 1, 9)
    assert not unaligned.flags.aligned
    for v in (unaligned, unaligned[::-2], np.linspace(0, 1, 20)[::3]):
        np.testing.assert_allclose(f(v), np.exp(v) * 2, rtol=1e-15)


class _Misdeclared(Op):
    """An op whose perform returns something other than the matrix it declares."""

    __props__ = ("result",)

    def __init__(self, result: str):
        self.result = result

    def make_node(self, x):
        return Apply(self, [x], [T.dmatrix()])

    def perform(self, node, inputs):
        return ({"vector": np.arange(3.0), "float32 matrix": np.ones((2, 3), np.float32),
                 "complex matrix": np.ones((2, 3), complex)}[self.result],)


@pytest.mark.parametrize("result", ["vector", "complex matrix"])
def test_an_op_returning_another_rank_or_an_unsafe_dtype_is_named(result):
    x = T.dmatrix("x")
    f = th.function([x], T.exp(_Misdeclared(result)(x)) + 1, backend="c")
    with pytest.raises(TypeError) as err:
        f(np.ones((2, 3)))
    msg = str(err.value)
    assert msg.startswith(f"_Misdeclared{{result='{result}'}} returned an array of dtype "
                          f"{ {'vector': 'float64', 'complex matrix': 'complex128'}[result]} ")
    assert "declares as TensorType(float64, matrix)" in msg and "2 dimension(s)" in msg
    assert "test_cpu_c_limits.py" in msg.split("built at:")[1]


def test_an_op_returning_a_safely_castable_dtype_is_read_as_declared():
    x = T.dmatrix("x")
    f = th.function([x], T.exp(_Misdeclared("float32 matrix")(x)) + 1, backend="c")
    np.testing.assert_allclose(f(np.ones((2, 3))), np.full((2, 3), np.e + 1), rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float16", "complex64", "complex128", "bool"])
def test_every_dtype_is_checked_on_the_way_in_and_out_of_library_calls(dtype):
    x = T.tensor(dtype, shape=(None,), name="x")
    f = th.function([x], [x * 2, T.cast(x, "float64") if dtype[0] != "c" else x + x],
                    backend="c", trust_input=True)
    xv = np.array([1, 0, 3], dtype=dtype)
    got = f(xv)
    np.testing.assert_array_equal(got[0], xv * 2)
    assert got[0].dtype == (xv * 2).dtype
    with pytest.raises(TypeError, match=f"dtype {dtype} "):
        f(np.array([1, 0, 3], dtype="int16"))
