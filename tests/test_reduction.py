"""Reductions (theanine.tensor.reduction) against NumPy: values, dtypes, shapes, keepdims,
gradients by finite differences, infer_shape and bad-axis errors."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine.compile.function import function
from theanine.config import config
from theanine.gradient import grad, verify_grad
from theanine.graph.basic import GraphError
from theanine.tensor import reduction as R
from theanine.tensor.type import TensorType

RNG = np.random.default_rng(42)


def compile_fn(inputs, outputs):
    return function(inputs, outputs)


def var_like(arr, name="x"):
    """A symbolic input with the array's dtype and ndim, static shape unknown."""
    return TensorType(arr.dtype, (None,) * arr.ndim)(name)


def inferred_shape(out, *shapes):
    """The shape infer_shape gives for out's node on concrete input shapes."""
    node = out.owner
    return tuple(node.op.infer_shape(node, [tuple(s) for s in shapes])[0])


SHAPES_AXES = [
    ((), None), ((), ()), ((5,), None), ((5,), 0), ((5,), -1), ((2, 3), None), ((2, 3), 1),
    ((2, 3), -2), ((2, 3), (0, 1)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, 0)), ((2, 3, 4), ()),
    ((0, 3), 0), ((0, 3), 1),
]


@pytest.mark.parametrize("kind", ["sum", "prod", "all", "any", "max", "min"])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_matches_numpy(kind, shape, axis, keepdims):
    a = RNG.uniform(-2, 2, shape)
    if kind in ("all", "any"):
        a = np.round(a)  # some zeros
    ref_fn = {"sum": np.sum, "prod": np.prod, "all": np.all, "any": np.any, "max": np.max,
              "min": np.min}[kind]
    x = var_like(a)
    out = getattr(R, kind)(x, axis=axis, keepdims=keepdims)
    f = compile_fn([x], out)
    if kind in ("max", "min") and 0 in shape and axis != 1:
        with pytest.raises(ValueError, match="empty axis"):
            f(a)
        return
    got = f(a)
    ref = ref_fn(a, axis=axis, keepdims=keepdims)
    assert got.dtype == ref.dtype == np.dtype(out.dtype)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12)


@pytest.mark.parametrize("fn,dtype,expected", [
    ("sum", "int8", "int64"), ("sum", "uint8", "uint64"), ("sum", "bool", "int64"),
    ("sum", "float32", "float32"), ("sum", "float16", "float16"), ("prod", "int32", "int64"),
    ("max", "int8", "int8"), ("min", "float32", "float32"), ("all", "float64", "bool"),
    ("any", "int16", "bool"), ("argmax", "float32", "int64"), ("argmin", "uint8", "int64"),
    ("mean", "int8", "float64"), ("mean", "bool", "float64"), ("mean", "float32", "float32"),
    ("mean", "float16", "float16"), ("var", "int32", "float64"), ("var", "float32", "float32"),
    ("var", "complex64", "float32"), ("std", "int64", "float64"), ("std", "float32", "float32"),
])
def test_result_dtypes_follow_numpy(fn, dtype, expected):
    a = (RNG.uniform(0, 3, (3, 4)) + (1j if dtype.startswith("complex") else 0)).astype(dtype)
    x = var_like(a)
    out = getattr(R, fn)(x, axis=0)
    got = compile_fn([x], out)(a)
    ref = getattr(np, fn)(a, axis=0)
    assert out.dtype == expected == ref.dtype.name
    assert got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-3 if expected == "float16" else 1e-5)


def test_sum_dtype_argument():
    a = RNG.integers(0, 100, (4, 5)).astype("int8")
    x = var_like(a)
    out = R.sum(x, axis=1, dtype="float32")
    got = compile_fn([x], out)(a)
    assert out.dtype == "float32" and got.dtype == np.float32
    np.testing.assert_allclose(got, np.sum(a, axis=1, dtype="float32"))


@pytest.mark.parametrize("fn", ["mean", "var", "std"])
@pytest.mark.parametrize("shape,axis", [((), None), ((6,), 0), ((3, 4), -1), ((2, 3, 4), (0, 2)),
                                        ((2, 3, 4), None)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_moments_match_numpy(fn, shape, axis, keepdims):
    a = RNG.normal(size=shape)
    x = var_like(a)
    out = getattr(R, fn)(x, axis=axis, keepdims=keepdims)
    got = compile_fn([x], out)(a)
    ref = getattr(np, fn)(a, axis=axis, keepdims=keepdims)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("static", [True, False])
@pytest.mark.parametrize("ddof", [0, 1, 1.5])
def test_var_ddof_with_static_and_dynamic_shapes(static, ddof):
    a = RNG.normal(size=(4, 5))
    x = TensorType("float64", a.shape if static else (None, None))("x")
    f = compile_fn([x], [R.var(x, axis=1, ddof=ddof), R.std(x, axis=0, ddof=ddof),
                         R.mean(x, axis=0)])
    v, s, m = f(a)
    np.testing.assert_allclose(v, np.var(a, axis=1, ddof=ddof))
    np.testing.assert_allclose(s, np.std(a, axis=0, ddof=ddof))
    np.testing.assert_allclose(m, np.mean(a, axis=0))


def test_var_of_complex_is_real():
    a = RNG.normal(size=(3, 4)) + 1j * RNG.normal(size=(3, 4))
    x = var_like(a)
    got = compile_fn([x], R.var(x, axis=1))(a)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.var(a, axis=1))


@pytest.mark.parametrize("shape,axis", [((6,), None), ((3, 4), 1), ((2, 3, 4), (0, 2)),
                                        ((3, 4), None)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_matches_formula(shape, axis, keepdims):
    a = RNG.normal(size=shape)
    x = var_like(a)
    got = compile_fn([x], R.logsumexp(x, axis=axis, keepdims=keepdims))(a)
    ref = np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_logsumexp_is_stable():
    a = np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [-np.inf, -np.inf], [np.inf, 0.0]])
    x = var_like(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        got = compile_fn([x], R.logsumexp(x, axis=1))(a)
    expected = [1000 + np.log(2), -1000 + np.log1p(np.exp(-1)), -np.inf, np.inf]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["argmax", "argmin"])
@pytest.mark.parametrize("shape,axis", [((), None), ((7,), None), ((7,), 0), ((3, 4), -1),
                                        ((3, 4), None), ((2, 3, 4), 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argreduce_matches_numpy(kind, shape, axis, keepdims):
    a = RNG.normal(size=shape)
    x = var_like(a)
    out = getattr(R, kind)(x, axis=axis, keepdims=keepdims)
    got = compile_fn([x], out)(a)
    ref = getattr(np, kind)(a, axis=axis, keepdims=keepdims)
    assert got.dtype == np.int64 and got.shape == np.shape(ref)
    np.testing.assert_array_equal(got, ref)


def test_argmax_over_several_axes_indexes_them_flattened():
    a = RNG.normal(size=(2, 3, 4))
    x = var_like(a)
    got = compile_fn([x], R.argmax(x, axis=(2, 0)))(a)
    ref = np.argmax(a.transpose(1, 0, 2).reshape(3, 8), axis=1)
    np.testing.assert_array_equal(got, ref)


def test_argmax_first_of_ties():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    x = var_like(a)
    np.testing.assert_array_equal(compile_fn([x], R.argmax(x, axis=1))(a), [1, 0])


def test_empty_max_error_names_op_and_shape():
    a = np.zeros((0, 3))
    x = var_like(a)
    f = compile_fn([x], R.max(x, axis=0))
    with pytest.raises(ValueError, match=r"Max\{axes=\(0,\)\}: cannot take the max over an empty "
                                         r"axis of an input with shape \(0, 3\)"):
        f(a)


def test_methods_route_to_reductions():
    a = RNG.normal(size=(3, 4))
    x = var_like(a)
    outs = [x.sum(axis=0), x.prod(), x.mean(axis=1, keepdims=True), x.var(ddof=1), x.std(),
            x.max(axis=-1), x.min(), x.argmax(axis=0), x.argmin(), x.all(), x.any(axis=1)]
    refs = [a.sum(axis=0), a.prod(), a.mean(axis=1, keepdims=True), a.var(ddof=1), a.std(),
            a.max(axis=-1), a.min(), a.argmax(axis=0), a.argmin(), a.all(), a.any(axis=1)]
    for got, ref in zip(compile_fn([x], outs)(a), refs, strict=True):
        assert got.dtype == np.asarray(ref).dtype
        np.testing.assert_allclose(got, ref, rtol=1e-12)


# -- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["sum", "prod", "max", "min", "mean", "var", "std", "logsumexp"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, False), (-1, True), ((0, 2), False),
                                           ((0, 2), True), ((), False)])
def test_gradients(fn, axis, keepdims):
    if fn == "std" and axis == ():
        pytest.skip("std over no axes is sqrt(0): not differentiable")
    a = RNG.uniform(0.5, 2.0, (2, 3, 4)) * RNG.choice([-1, 1], (2, 3, 4))
    verify_grad(lambda x: getattr(R, fn)(x, axis=axis, keepdims=keepdims), [a], rng=RNG)


@pytest.mark.parametrize("fn", ["var", "std"])
def test_gradients_with_ddof(fn):
    a = RNG.normal(size=(3, 5))
    verify_grad(lambda x: getattr(R, fn)(x, axis=1, ddof=1), [a], rng=RNG)


@pytest.mark.parametrize("a", [
    np.array([[2.0, 0.0, 3.0], [1.5, -2.0, 0.5]]),       # one zero in a row
    np.array([[0.0, 0.0, 3.0], [0.0, -2.0, 0.5]]),       # two zeros in a row, one in the other
    np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
])
def test_prod_gradient_with_zeros(a):
    verify_grad(lambda x: R.prod(x, axis=1), [a], rng=RNG)
    verify_grad(lambda x: R.prod(x), [a], rng=RNG)
    x = var_like(a)
    g = compile_fn([x], grad(R.prod(x, axis=1).sum(), x))(a)
    expected = np.array([[np.prod(np.delete(row, j)) for j in range(row.size)] for row in a])
    np.testing.assert_allclose(g, expected)


def test_max_gradient_goes_to_every_tie():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    x = var_like(a)
    g = compile_fn([x], grad(R.max(x, axis=1).sum(), x))(a)
    np.testing.assert_array_equal(g, [[0, 1, 1], [1, 0, 0]])


def test_logsumexp_gradient_is_softmax_and_finite_for_large_inputs():
    a = np.array([[1000.0, 1001.0, 999.0], [0.0, 1.0, 2.0]])
    x = var_like(a)
    g = compile_fn([x], grad(R.logsumexp(x, axis=1).sum(), x))(a)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    np.testing.assert_allclose(g, e / e.sum(axis=1, keepdims=True), rtol=1e-12)


def test_argmax_all_any_carry_no_gradient():
    a = RNG.normal(size=(3, 4))
    x = var_like(a)
    cost = x.sum() + T.cast(R.argmax(x), "float64") + T.cast(R.any(x), "float64") \
        + T.cast(R.all(x, axis=0), "float64").sum()
    g = compile_fn([x], grad(cost, x))(a)
    np.testing.assert_array_equal(g, np.ones_like(a))


def test_integer_input_has_a_zero_gradient():
    i = T.lvector("i")
    x = T.dvector("x")
    g = grad(R.sum(x * R.sum(i)), i)
    assert g.dtype == config.floatX
    out = function([x, i], g, on_unused_input="ignore")(np.ones(2), np.array([1, 2, 3]))
    np.testing.assert_array_equal(out, np.zeros(3))


# -- infer_shape -------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["sum", "prod", "max", "min", "all", "any", "argmax", "argmin"])
@pytest.mark.parametrize("shape,axis", [((), None), ((5,), 0), ((2, 3, 4), (0, 2)),
                                        ((2, 3, 4), -2), ((2, 0, 4), 2)])
def test_infer_shape_matches_output(fn, shape, axis):
    a = RNG.normal(size=shape)
    x = var_like(a)
    out = getattr(R, fn)(x, axis=axis)
    got = compile_fn([x], out)(a)
    assert inferred_shape(out, a.shape) == got.shape


def test_static_shapes_of_outputs():
    x = T.tensor("float32", shape=(2, None, 4), name="x")
    assert R.sum(x, axis=1).type.shape == (2, 4)
    assert R.max(x, axis=(0, 2), keepdims=True).type.shape == (1, None, 1)
    assert R.mean(x).type.shape == ()
    assert R.argmin(x, axis=-1).type.shape == (2, None)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["sum", "prod", "mean", "var", "std", "max", "min", "argmax",
                                "argmin", "all", "any", "logsumexp"])
def test_bad_axis_names_input_ndim_and_axis(fn):
    x = T.dmatrix("x")
    with pytest.raises(GraphError, match=rf"(?s){fn}: axis 2 is out of range for x, which has 2 "
                                         r"dimensions .*Built at:.*test_reduction.py"):
        getattr(R, fn)(x, axis=2)
    with pytest.raises(GraphError, match=r"axis \(0, -3\) is out of range for x"):
        getattr(R, fn)(x, axis=(0, -3))


def test_repeated_and_non_integer_axes_are_errors():
    x = T.dtensor3("x")
    with pytest.raises(GraphError, match=r"sum: axis \(1, -2\) repeats an axis of x \(3 dims\)"):
        R.sum(x, axis=(1, -2))
    with pytest.raises(GraphError, match=r"mean: axis must be None, an int or a tuple of ints, "
                                         r"got 1.5"):
        R.mean(x, axis=1.5)


@pytest.mark.parametrize("in_dtype, dtype", [("bool", "float64"), ("int32", "float32"),
                                             ("float64", "float32"), ("int8", "int64"),
                                             ("float32", None)])
def test_mean_takes_a_dtype(in_dtype, dtype):
    """`x.mean(dtype=...)` (hmc.py's acceptance rate): computed and returned in that float
    dtype; an integer dtype gives float64, as Theano's mean does."""
    x = T.tensor(in_dtype, shape=(None, None), name="x")
    v = (np.arange(12).reshape(3, 4) % 3).astype(in_dtype)
    m, m0 = x.mean(dtype=dtype), T.mean(x, axis=0, dtype=dtype)
    expected = (np.dtype(dtype) if dtype and np.dtype(dtype).kind == "f"
                else np.dtype("float64") if dtype else np.dtype(in_dtype))
    assert m.dtype == m0.dtype == expected
    got, got0 = function([x], [m, m0])(v)
    np.testing.assert_allclose(got, v.mean(dtype="float64"), rtol=1e-6)
    np.testing.assert_allclose(got0, v.mean(axis=0, dtype="float64"), rtol=1e-6)


def test_theanos_other_names():
    """as_tensor, sgn, iround, largest, smallest and max_and_argmax against NumPy."""
    x, y, z = T.dvector("x"), T.dvector("y"), T.dvector("z")
    m = T.dmatrix("m")
    xv, yv, zv = np.array([-1.5, 0.0, 2.25]), np.array([3.0, -1.0, 0.5]), np.array([0.0, 4, -9])
    mv = np.array([[1.0, 7.0, 3.0], [9.0, 2.0, 4.0]])
    mx, am = T.max_and_argmax(m, axis=1)
    outs = function([x, y, z, m], [T.sgn(x), T.iround(x), T.largest(x, y, z),
                                   T.smallest(x, y, z), mx, am, T.as_tensor(2.0) * x])(
        xv, yv, zv, mv)
    refs = [np.sign(xv), np.round(xv).astype("int64"), np.maximum(np.maximum(xv, yv), zv),
            np.minimum(np.minimum(xv, yv), zv), mv.max(axis=1), mv.argmax(axis=1), 2 * xv]
    for got, ref in zip(outs, refs):
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
    with pytest.raises(TypeError, match="at least one argument"):
        T.largest()
