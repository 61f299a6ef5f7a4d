"""Elementwise ops against NumPy: values, dtypes, broadcasting, and gradients against finite
differences."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import theanine as th
import theanine.tensor as T
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError

# name -> (NumPy reference, domain low, domain high, differentiable)
UNARY = {
    "neg": (np.negative, -3, 3, True), "abs": (np.abs, 0.1, 3, True),
    "sign": (np.sign, -3, 3, False), "sqr": (np.square, -3, 3, True),
    "sqrt": (np.sqrt, 0.1, 4, True), "exp": (np.exp, -3, 3, True),
    "exp2": (np.exp2, -3, 3, True), "expm1": (np.expm1, -3, 3, True),
    "log": (np.log, 0.1, 4, True), "log2": (np.log2, 0.1, 4, True),
    "log10": (np.log10, 0.1, 4, True), "log1p": (np.log1p, -0.5, 3, True),
    "sin": (np.sin, -3, 3, True), "cos": (np.cos, -3, 3, True), "tan": (np.tan, -1, 1, True),
    "arcsin": (np.arcsin, -0.9, 0.9, True), "arccos": (np.arccos, -0.9, 0.9, True),
    "arctan": (np.arctan, -3, 3, True), "sinh": (np.sinh, -3, 3, True),
    "cosh": (np.cosh, -3, 3, True), "tanh": (np.tanh, -3, 3, True),
    "floor": (np.floor, -3, 3, False), "ceil": (np.ceil, -3, 3, False),
    "round": (np.round, -3, 3, False), "trunc": (np.trunc, -3, 3, False),
    "reciprocal": (np.reciprocal, 0.5, 3, True),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), -5, 5, True),
    "softplus": (lambda x: np.log1p(np.exp(x)), -5, 5, True),
}
BINARY = {
    "add": (np.add, -3, 3), "sub": (np.subtract, -3, 3), "mul": (np.multiply, -3, 3),
    "true_div": (np.true_divide, 0.5, 3), "pow": (np.power, 0.5, 2),
    "maximum": (np.maximum, -3, 3), "minimum": (np.minimum, -3, 3),
    "arctan2": (np.arctan2, 0.5, 3), "mod": (np.mod, 0.5, 3),
}
COMPARE = {"lt": np.less, "gt": np.greater, "le": np.less_equal, "ge": np.greater_equal,
           "eq": np.equal, "neq": np.not_equal}


def _sample(rng, lo, hi, shape, dtype="float64"):
    return rng.uniform(lo, hi, shape).astype(dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_forward(name, dtype, rng):
    ref, lo, hi, _ = UNARY[name]
    x = T.matrix("x", dtype=dtype)
    f = th.function([x], getattr(T, name)(x))
    xv = _sample(rng, lo, hi, (3, 4), dtype)
    out = f(xv)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref(xv), rtol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", sorted(n for n, v in UNARY.items() if v[3]))
def test_unary_grad(name, rng):
    _, lo, hi, _ = UNARY[name]
    verify_grad(getattr(T, name), [_sample(rng, lo, hi, (2, 3))], rng=rng)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_forward_broadcast(name, rng):
    ref, lo, hi = BINARY[name]
    a, b = T.dmatrix("a"), T.drow("b")
    f = th.function([a, b], getattr(T, name)(a, b))
    av, bv = _sample(rng, lo, hi, (3, 4)), _sample(rng, lo, hi, (1, 4))
    np.testing.assert_allclose(f(av, bv), ref(av, bv), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in BINARY if n != "mod"))
def test_binary_grad_with_runtime_broadcast(name, rng):
    _, lo, hi = BINARY[name]
    # b's middle axis is not known to be 1 when the graph is built, but is 1 at run time:
    # its gradient must still be summed over the broadcast axis.
    verify_grad(getattr(T, name),
                [_sample(rng, lo, hi, (2, 3, 4)), _sample(rng, lo, hi, (2, 1, 4))], rng=rng)


def test_mod_grad_away_from_discontinuities(rng):
    verify_grad(T.mod, [np.array([2.3, 5.1, -1.3]), np.array([1.1, 2.0, 0.7])], rng=rng)


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                  elements=st.floats(-100, 100)))
def test_polynomial_matches_numpy(a):
    x = T.tensor("float64", shape=(None,) * a.ndim, name="x")
    f = th.function([x], 3 * x ** 2 - x / 4 + 1)
    np.testing.assert_allclose(f(a), 3 * a ** 2 - a / 4 + 1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(COMPARE))
def test_comparisons(name, rng):
    a, b = T.ivector("a"), T.ivector("b")
    f = th.function([a, b], getattr(T, name)(a, b))
    av, bv = rng.integers(0, 3, 10).astype("int32"), rng.integers(0, 3, 10).astype("int32")
    out = f(av, bv)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, COMPARE[name](av, bv))


def test_operators_and_logic(rng):
    a, b = T.ivector("a"), T.ivector("b")
    av, bv = rng.integers(-5, 5, 8).astype("int32"), rng.integers(1, 5, 8).astype("int32")
    outs = th.function([a, b], [a // b, a % b, a & b, a | b, a ^ b, ~a, -a, abs(a), a < b,
                                a >= b, T.logical_and(a > 0, b > 2), T.logical_not(a > 0)])(
        av, bv)
    expected = [av // bv, av % bv, av & bv, av | bv, av ^ bv, ~av, -av, np.abs(av), av < bv,
                av >= bv, (av > 0) & (bv > 2), ~(av > 0)]
    for o, e in zip(outs, expected):
        assert o.dtype == e.dtype
        np.testing.assert_array_equal(o, e)


def test_switch_clip_and_their_gradients(rng):
    x = T.dvector("x")
    xv = np.array([-2.0, -0.5, 0.2, 0.7, 3.0])
    f = th.function([x], [T.switch(x > 0, x * 2, -x), T.clip(x, -1, 1), T.where(x < 0, 0, x)])
    s, c, w = f(xv)
    np.testing.assert_allclose(s, np.where(xv > 0, xv * 2, -xv))
    np.testing.assert_allclose(c, np.clip(xv, -1, 1))
    np.testing.assert_allclose(w, np.where(xv < 0, 0, xv))
    verify_grad(lambda v: T.switch(v > 0, v ** 2, -v), [xv], rng=rng)
    verify_grad(lambda v: T.clip(v, -1, 1) * v, [xv], rng=rng)


@pytest.mark.parametrize("dtype,pyval,expected", [
    ("float32", 2, "float32"), ("float32", 2.5, "float32"), ("int8", 3, "int8"),
    ("int8", 1.5, "float64"), ("int32", 7, "int32"), ("uint8", 2, "uint8"),
])
def test_python_scalars_take_the_tensor_dtype(dtype, pyval, expected):
    x = T.tensor(dtype, shape=(None,), name="x")
    assert (x * pyval).dtype == expected
    assert (pyval + x).dtype == expected


@pytest.mark.parametrize("a,b", [("int8", "float32"), ("int32", "float32"), ("int64", "float64"),
                                 ("uint8", "int8"), ("float32", "float64"), ("bool", "int16")])
def test_dtype_promotion_follows_numpy(a, b):
    x, y = T.tensor(a, shape=(None,)), T.tensor(b, shape=(None,))
    assert (x + y).dtype == np.result_type(a, b).name


def test_unary_float_of_small_ints_is_float32_not_float16():
    assert T.exp(T.bvector()).dtype == "float32"
    assert T.exp(T.ivector()).dtype == "float64"
    assert T.sqrt(T.lvector()).dtype == "float64"


@pytest.mark.parametrize("name", ["exp", "sqrt", "log1p", "sin", "sigmoid", "softplus",
                                  "reciprocal", "tanh"])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "bool", "int16"])
def test_constant_folding_and_run_time_compute_the_same_bits(name, dtype):
    """perform (constant folding, DebugMode) and the reference executor compute unary float ops
    of small ints in the output dtype, not in NumPy's float16 cast afterwards."""
    values = np.array([0, 1, 3, 100, -128 if dtype == "int8" else 7]).astype(dtype)
    fn = getattr(T, name)
    x = T.tensor(dtype, shape=(None,), name="x")
    with np.errstate(all="ignore"):
        run_time = th.function([x], fn(x), backend="numpy")(values)
        folded = th.function([], fn(T.constant(values)), backend="numpy")()
        node = fn(x).owner
        performed = node.op.perform(node, [values])[0]
        exact = {"softplus": lambda v: np.logaddexp(0, v)}.get(name, UNARY[name][0])
        reference = exact(values.astype(run_time.dtype))
    assert run_time.dtype == folded.dtype == performed.dtype == fn(x).dtype
    np.testing.assert_array_equal(folded, run_time)
    np.testing.assert_array_equal(performed, run_time)
    np.testing.assert_allclose(run_time, reference, rtol=1e-6)


@pytest.mark.parametrize("build, ref", [
    (lambda u: u > -1, lambda a: a > -1), (lambda u: -1 < u, lambda a: -1 < a),
    (lambda u: T.eq(u, 256), lambda a: a == 256), (lambda u: u <= 1000, lambda a: a <= 1000),
    (lambda u: T.neq(u, -3), lambda a: a != -3), (lambda u: u / 300, lambda a: a / 300),
    (lambda u: 300 / (u + 1), lambda a: 300 / (a + 1)),
], ids=["gt", "rlt", "eq", "le", "neq", "true_div", "rtrue_div"])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_out_of_range_python_ints_in_comparisons_and_division(build, ref, dtype):
    """NumPy 2 computes these exactly although the int does not fit the array's dtype."""
    x = T.tensor(dtype, shape=(None,), name="x")
    a = np.array([0, 5, 100, 127]).astype(dtype)
    got = th.function([x], build(x))(a)
    expected = ref(a)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_out_of_range_python_ints_in_arithmetic_are_rejected():
    x = T.tensor("int8", shape=(None,), name="x")
    with pytest.raises(GraphError, match="The Python int 300 does not fit in x's dtype int8"):
        x + 300
    with pytest.raises(GraphError, match="does not fit"):
        x // 300


def test_cast_and_its_gradient(rng):
    x = T.dvector("x")
    f = th.function([x], T.cast(x, "int32"))
    out = f([1.7, -2.2])
    assert out.dtype == np.int32 and list(out) == [1, -2]
    verify_grad(lambda v: T.cast(v, "float32").astype("float64") ** 2, [rng.normal(size=3)],
                rng=rng, eps=1e-3, abs_tol=1e-3, rel_tol=1e-3)


def test_static_broadcast_mismatch_points_at_user_line():
    a = T.tensor("float64", shape=(2, 3))
    b = T.tensor("float64", shape=(4, 3))
    with pytest.raises(GraphError, match=r"(?s)cannot be broadcast.*axis 0.*test_elemwise.py"):
        a + b


def test_broadcast_error_names_the_users_variables_not_padding_nodes():
    m = T.tensor("float64", shape=(2, 3), name="m")
    v = T.tensor("float64", shape=(4,), name="v")
    with pytest.raises(GraphError, match=r"axis 1: m with shape \(2, 3\), v with shape \(4,\)"):
        m + v


def test_runtime_broadcast_mismatch_is_a_clear_error():
    a, b = T.dvector("a"), T.dvector("b")
    f = th.function([a, b], a + b)
    with pytest.raises(ValueError, match="broadcast"):
        f(np.ones(3), np.ones(4))


def test_bool_subtraction_is_rejected_at_graph_time():
    with pytest.raises(GraphError, match="sub does not support"):
        T.bvector().astype("bool") - T.vector(dtype="bool")


def test_truthiness_is_theanos():
    """Theano 1.0: every variable is true (`if not W:` on a shared variable tests for None),
    except a comparison's result, which raises."""
    x, w = T.dscalar("x"), th.shared(np.zeros(3), name="w")
    assert x and w and T.constant(0.0) and (x + 1) and not (not w)
    for cmp in (x > 0, x < 0, x >= 0, x <= 0, T.eq(x, 0), T.neq(x, 0), T.lt(w, 1)):
        with pytest.raises(TypeError, match="is a comparison, which has no truth value"):
            bool(cmp)
    with pytest.raises(TypeError, match="no truth value"):
        0 < x < 1  # noqa: B015 (a chained comparison asks the truth of the first)


@pytest.mark.parametrize("backend", ["numpy", "c", "opencl"])
def test_switch_on_a_float_condition_in_a_fused_kernel(backend):
    """switch(f, a, b) with a float condition (lstm.py's dropout switch on a shared float),
    fused into a kernel: nonzero picks a. OpenCL C refuses a float condition in `?:`."""
    from theanine.backend import backends

    if not backends()[backend].available()[0]:
        pytest.skip(f"no {backend} device")
    flag, x = T.dscalar("flag"), T.dvector("x")
    out = T.switch(flag, x * 3.0, x * 0.5) + 1.0
    f = th.function([flag, x], out, backend=backend)
    xv = np.array([1.0, -2.0, 4.0])
    for fv in (0.0, 1.0, 0.25, -2.0):
        np.testing.assert_allclose(f(fv, xv), np.where(fv, xv * 3.0, xv * 0.5) + 1.0)


@pytest.mark.parametrize("bias_first", [False, True])
def test_c_runs_with_one_input_fixed_along_the_run(rng, bias_first):
    """A per-channel bias broadcast over an image's pixels is read once per run (the kernel's
    one-input-fixed loop), with the same values as NumPy, as the first or second operand."""
    import theanine.tensor as T
    from theanine.compile.function import function

    x, b = T.ftensor4("x"), T.fvector("b")
    bias = b.dimshuffle("x", 0, "x", "x")
    f = function([x, b], [T.tanh(bias + x if bias_first else x + bias), x * bias - bias],
                 backend="c")
    xv = rng.normal(size=(3, 4, 5, 7)).astype("float32")
    bv = rng.normal(size=4).astype("float32")
    b4 = bv[None, :, None, None]
    got = f(xv, bv)
    np.testing.assert_allclose(got[0], np.tanh(xv + b4), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[1], xv * b4 - b4, rtol=1e-6, atol=1e-6)
    assert "I0[0]" in f._run.source and "I1[0]" in f._run.source  # a loop for each input
