"""Tensor products (theanine.tensor.linalg) against NumPy: dot for every rank pair, matmul with
batch broadcasting, tensordot, outer, batched_dot; gradients, infer_shape and shape errors."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine.compile.function import function
from theanine.gradient import grad, verify_grad
from theanine.graph.basic import GraphError
from theanine.tensor import linalg as L
from theanine.tensor.type import TensorType

RNG = np.random.default_rng(7)


def compile_fn(inputs, outputs):
    return function(inputs, outputs)


def var_like(arr, name):
    """A symbolic input with the array's dtype and ndim, static shape unknown."""
    return TensorType(arr.dtype, (None,) * arr.ndim)(name)


def evaluate(fn, *arrays):
    """Build fn on symbolic inputs like `arrays`, compile and run it; returns (output, value)."""
    xs = [var_like(a, f"in{i}") for i, a in enumerate(arrays)]
    out = fn(*xs)
    return out, compile_fn(xs, out)(*arrays)


def check_against(fn, ref_fn, *arrays, rtol=1e-12):
    out, got = evaluate(fn, *arrays)
    ref = np.asarray(ref_fn(*arrays))
    assert got.shape == ref.shape
    assert got.dtype == ref.dtype == np.dtype(out.dtype)
    np.testing.assert_allclose(got, ref, rtol=rtol)
    return out


def find_node(out, op_type):
    """The nearest node of `op_type` producing `out` through DimShuffles."""
    node = out.owner
    while not isinstance(node.op, op_type):
        node = node.inputs[0].owner
    return node


DOT_SHAPES = [
    ((), ()), ((), (3, 4)), ((3,), ()), ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
    ((3, 4), (4, 5)), ((2, 3, 4), (4,)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
    ((4,), (2, 4, 5)), ((2, 3, 4), (5, 4, 6)), ((0, 4), (4, 3)), ((3, 0), (0, 2)),
]


@pytest.mark.parametrize("sa,sb", DOT_SHAPES)
def test_dot_matches_numpy(sa, sb):
    check_against(L.dot, np.dot, RNG.normal(size=sa), RNG.normal(size=sb))


@pytest.mark.parametrize("da,db", [("float32", "float64"), ("int8", "int8"), ("int32", "float32"),
                                   ("float32", "float32"), ("bool", "bool"), ("int64", "uint8")])
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((4,), (4,)), ((2, 3, 4), (4, 2))])
def test_dot_dtypes_follow_numpy(da, db, sa, sb):
    a = RNG.integers(0, 3, sa).astype(da)
    b = RNG.integers(0, 3, sb).astype(db)
    check_against(L.dot, np.dot, a, b)


def test_dot_with_python_scalar_keeps_dtype():
    x = T.fvector("x")
    assert L.dot(x, 2).dtype == "float32"
    assert L.dot(x, 2).owner.op.scalar_op.name == "mul"


def test_method_and_operator():
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(2, 4, 5))
    x, y = var_like(a, "x"), var_like(b, "y")
    got_dot, got_mm = compile_fn([x, y], [x.dot(y), x @ y])(a, b)
    np.testing.assert_allclose(got_dot, np.dot(a, b))
    np.testing.assert_allclose(got_mm, a @ b)
    assert isinstance(L.dot(T.dmatrix(), T.dmatrix()).owner.op, L.Dot)


MATMUL_SHAPES = [
    ((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)), ((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)), ((1, 3, 4), (6, 4, 2)), ((0, 3, 4), (4, 2)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_matches_numpy(sa, sb):
    check_against(L.matmul, np.matmul, RNG.normal(size=sa), RNG.normal(size=sb))


def test_matmul_dtype():
    check_against(L.matmul, np.matmul, RNG.integers(0, 4, (2, 3, 4)).astype("int16"),
                  RNG.normal(size=(4, 2)).astype("float32"), rtol=1e-6)


TENSORDOT_CASES = [
    ((3, 4), (4, 5), 1), ((2, 3, 4), (3, 4, 5), 2), ((2, 3), (4,), 0), ((3,), (3,), 1),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((2, 3, 4), (5, 2), ([0], [1])),
    ((2, 3, 4), (4, 2, 3), ([-1, 0, 1], [0, 1, 2])), ((3, 4), (4, 3), (1, 0)),
    ((2, 3, 4), (3, 2), ([0, 1], [1, 0])), ((4, 3), (4,), ([0], [0])),
]


@pytest.mark.parametrize("sa,sb,axes", TENSORDOT_CASES)
def test_tensordot_matches_numpy(sa, sb, axes):
    a, b = RNG.normal(size=sa), RNG.normal(size=sb)
    check_against(lambda x, y: L.tensordot(x, y, axes), lambda x, y: np.tensordot(x, y, axes),
                  a, b)


def test_tensordot_default_axes_is_two():
    a, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(3, 4, 5))
    check_against(L.tensordot, np.tensordot, a, b)


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((), (4,)), ((3,), ()), ((0,), (2,)),
                                   ((2, 3), (4,)), ((3,), (2, 2, 1))])
def test_outer_matches_numpy(sa, sb):
    check_against(L.outer, np.outer, RNG.normal(size=sa), RNG.normal(size=sb))


BATCHED = [((5, 3, 4), (5, 4, 2), "bij,bjk->bik"), ((5, 3, 4), (5, 4), "bij,bj->bi"),
           ((5, 4), (5, 4, 2), "bj,bjk->bk"), ((5, 4), (5, 4), "bj,bj->b")]


@pytest.mark.parametrize("sa,sb,spec", BATCHED)
def test_batched_dot_matches_einsum(sa, sb, spec):
    check_against(L.batched_dot, lambda x, y: np.einsum(spec, x, y), RNG.normal(size=sa),
                  RNG.normal(size=sb))


# -- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sa,sb", [s for s in DOT_SHAPES if 0 not in s[0] + s[1]])
def test_dot_gradient(sa, sb):
    verify_grad(L.dot, [RNG.normal(size=sa), RNG.normal(size=sb)], rng=RNG)


@pytest.mark.parametrize("sa,sb", [s for s in MATMUL_SHAPES if 0 not in s[0] + s[1]])
def test_matmul_gradient(sa, sb):
    verify_grad(L.matmul, [RNG.normal(size=sa), RNG.normal(size=sb)], rng=RNG)


@pytest.mark.parametrize("sa,sb,axes", TENSORDOT_CASES)
def test_tensordot_gradient(sa, sb, axes):
    verify_grad(lambda x, y: L.tensordot(x, y, axes), [RNG.normal(size=sa), RNG.normal(size=sb)],
                rng=RNG)


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((), (4,)), ((2, 3), (2,))])
def test_outer_gradient(sa, sb):
    verify_grad(L.outer, [RNG.normal(size=sa), RNG.normal(size=sb)], rng=RNG)


@pytest.mark.parametrize("sa,sb,spec", BATCHED)
def test_batched_dot_gradient(sa, sb, spec):
    verify_grad(L.batched_dot, [RNG.normal(size=sa), RNG.normal(size=sb)], rng=RNG)


def test_dot_gradient_values_for_matrices():
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
    x, y = var_like(a, "x"), var_like(b, "y")
    ga, gb = compile_fn([x, y], grad(L.dot(x, y).sum(), [x, y]))(a, b)
    np.testing.assert_allclose(ga, np.ones((3, 2)) @ b.T)
    np.testing.assert_allclose(gb, a.T @ np.ones((3, 2)))


def test_integer_operand_gets_no_gradient():
    x, i = T.dmatrix("x"), T.imatrix("i")
    out = L.dot(x, i)
    node = out.owner
    ga, gi = node.op.pullback(node, node.inputs, node.outputs, [T.ones_like(out)])
    assert gi is None and ga.ndim == 2
    a, m = RNG.normal(size=(2, 3)), RNG.integers(0, 5, (3, 4)).astype("int32")
    got = compile_fn([x, i], grad(out.sum(), x))(a, m)
    np.testing.assert_allclose(got, np.ones((2, 4)) @ m.T)


# -- infer_shape -------------------------------------------------------------------------------

def inferred_shape(node, *shapes):
    return tuple(node.op.infer_shape(node, [tuple(s) for s in shapes])[0])


@pytest.mark.parametrize("sa,sb", [((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)),
                                   ((3, 4), (4, 5))])
def test_dot_infer_shape(sa, sb):
    out, got = evaluate(L.dot, RNG.normal(size=sa), RNG.normal(size=sb))
    assert inferred_shape(find_node(out, L.Dot), sa, sb) == got.shape


@pytest.mark.parametrize("sa,sb,axes", TENSORDOT_CASES)
def test_tensordot_infer_shape(sa, sb, axes):
    out, got = evaluate(lambda x, y: L.tensordot(x, y, axes), RNG.normal(size=sa),
                        RNG.normal(size=sb))
    node = out.owner
    assert inferred_shape(node, sa, sb) == got.shape


@pytest.mark.parametrize("sa,sb", [((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                                   ((1, 3, 4), (6, 4, 2)), ((3, 4), (2, 4, 5))])
def test_matmul_infer_shape(sa, sb):
    out, got = evaluate(L.matmul, RNG.normal(size=sa), RNG.normal(size=sb))
    assert inferred_shape(find_node(out, L.MatMul), sa, sb) == got.shape


def test_matmul_infer_shape_with_static_broadcast_dims():
    a = T.tensor("float64", shape=(1, None, 3, 4), name="a")
    b = T.tensor("float64", shape=(None, 4, 2), name="b")
    out = L.matmul(a, b)
    assert out.type.shape == (1, None, 3, 2)
    assert inferred_shape(out.owner, (1, 5, 3, 4), (5, 4, 2)) == (1, 5, 3, 2)


def test_static_output_shapes():
    a = T.tensor("float32", shape=(2, 3), name="a")
    b = T.tensor("float32", shape=(3, None), name="b")
    assert L.dot(a, b).type.shape == (2, None)
    assert L.tensordot(T.tensor("float64", shape=(2, 3, 4)), b, ([1], [0])).type.shape == \
        (2, 4, None)
    assert L.batched_dot(T.tensor("float64", shape=(5, 3)),
                         T.tensor("float64", shape=(5, 3, 7))).type.shape == (5, 7)


# -- errors ------------------------------------------------------------------------------------

def test_dot_shape_mismatch_names_both_inputs():
    a = T.tensor("float64", shape=(2, 3), name="a")
    b = T.tensor("float64", shape=(4, 5), name="b")
    with pytest.raises(GraphError, match=r"(?s)dot: a has shape \(2, 3\), b has shape \(4, 5\): "
                                         r"inner dimensions 3 and 4 differ.*test_linalg.py"):
        L.dot(a, b)
    c = T.tensor("float64", shape=(2, 7, 3), name="c")
    with pytest.raises(GraphError, match=r"dot: c has shape \(2, 7, 3\), b has shape \(4, 5\): "
                                         r"inner dimensions 3 and 4 differ"):
        L.dot(c, b)


def test_matmul_mismatches():
    a = T.tensor("float64", shape=(2, 3, 4), name="a")
    with pytest.raises(GraphError, match=r"matmul: a has shape \(2, 3, 4\), b has shape "
                                         r"\(5,\): inner dimensions 4 and 5 differ"):
        L.matmul(a, T.tensor("float64", shape=(5,), name="b"))
    with pytest.raises(GraphError, match=r"cannot be broadcast together on axis 0"):
        L.matmul(a, T.tensor("float64", shape=(3, 4, 2), name="b"))
    with pytest.raises(GraphError, match=r"matmul: operands must have at least 1 dim"):
        L.matmul(a, T.dscalar("s"))


def test_tensordot_errors():
    a = T.tensor("float64", shape=(2, 3, 4), name="a")
    b = T.tensor("float64", shape=(3, 5), name="b")
    with pytest.raises(GraphError, match=r"tensordot: a has shape \(2, 3, 4\), b has shape "
                                         r"\(3, 5\): contracted axis 2 of a and axis 1 of b "
                                         r"differ: 4 and 5"):
        L.tensordot(a, b, ([1, 2], [0, 1]))
    with pytest.raises(GraphError, match=r"tensordot: axis 3 is out of range for a"):
        L.tensordot(a, b, ([3], [0]))
    with pytest.raises(GraphError, match=r"have different lengths"):
        L.tensordot(a, b, ([0, 1], [0]))
    with pytest.raises(GraphError, match=r"axes=3 needs both inputs to have at least 3 dims"):
        L.tensordot(a, b, 3)
    with pytest.raises(GraphError, match=r"repeat an axis of b"):
        L.tensordot(a, b, ([0, 1], [1, -1]))


def test_batched_dot_errors():
    a = T.tensor("float64", shape=(5, 3, 4), name="a")
    with pytest.raises(GraphError, match=r"batched_dot: a has shape \(5, 3, 4\), b has shape "
                                         r"\(6, 4\): batch sizes 5 and 6 differ"):
        L.batched_dot(a, T.tensor("float64", shape=(6, 4), name="b"))
    with pytest.raises(GraphError, match=r"batched_dot: a has shape \(5, 3, 4\), b has shape "
                                         r"\(5, 3\): inner dimensions 4 and 3 differ"):
        L.batched_dot(a, T.tensor("float64", shape=(5, 3), name="b"))
    with pytest.raises(GraphError, match=r"batched_dot takes 2-d or 3-d inputs"):
        L.batched_dot(T.dvector("v"), a)


def test_runtime_mismatch_is_reported():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(4, 5))
    x, y = var_like(a, "x"), var_like(b, "y")
    f = compile_fn([x, y], L.dot(x, y))
    with pytest.raises(ValueError, match=r"Dot: inputs of shapes \(2, 3\) and \(4, 5\): "
                                         r"shapes \(2,3\) and \(4,5\) not aligned"):
        f(a, b)
    f = compile_fn([x, y], L.tensordot(x, y, ([1], [1])))
    with pytest.raises(ValueError, match=r"TensorDot\{axes_a=\(1,\), axes_b=\(1,\)\}: inputs "
                                         r"of shapes \(2, 3\) and \(4, 5\)"):
        f(a, b)
    u, v = RNG.normal(size=(2, 2, 3)), RNG.normal(size=(3, 4, 5))
    x3, y3 = var_like(u, "x3"), var_like(v, "y3")
    f = compile_fn([x3, y3], L.matmul(x3, y3))
    with pytest.raises(ValueError, match=r"MatMul: inputs of shapes \(2, 2, 3\) and \(3, 4, 5\)"):
        f(u, v)
