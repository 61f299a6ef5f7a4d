"""theanine.tensor.nnet: activations, softmax / log_softmax and cross-entropies against NumPy,
their gradients against finite differences, and the errors for bad input."""

import numpy as np
import pytest

import theanine.tensor as T
import theanine.tensor.nnet as nnet
from theanine.compile.function import function
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_sigmoid_softplus_relu_hard_sigmoid(rng):
    x = T.dvector("x")
    v = np.array([-800.0, -2.0, 0.0, 0.5, 40.0])
    f = function([x], [nnet.sigmoid(x), nnet.softplus(x), nnet.relu(x), nnet.relu(x, 0.1),
                       nnet.hard_sigmoid(x)])
    sig, sp, r0, r1, hs = f(v)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(sig, 1 / (1 + np.exp(-v)))
    np.testing.assert_allclose(sp, np.logaddexp(0, v))
    np.testing.assert_array_equal(r0, np.maximum(v, 0))
    np.testing.assert_allclose(r1, np.where(v > 0, v, 0.1 * v))
    np.testing.assert_allclose(hs, np.clip(0.2 * v + 0.5, 0, 1))
    assert function([x], nnet.relu(x))(np.array([np.nan, -np.inf]))[1] == 0
    pt = [rng.uniform(-2, 2, 5) + 0.1]
    verify_grad(lambda a: nnet.relu(a, 0.3), pt, rng=rng)
    verify_grad(nnet.softplus, pt, rng=rng)


@pytest.mark.parametrize("shape, axis", [((4,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1)])
def test_softmax_and_log_softmax_match_numpy(rng, shape, axis):
    x = T.tensor("float64", shape=(None,) * len(shape), name="x")
    v = rng.normal(size=shape) * 5
    sm, lsm = function([x], [nnet.softmax(x, axis), nnet.log_softmax(x, axis)])(v)
    np.testing.assert_allclose(sm, np_softmax(v, axis), rtol=1e-12)
    np.testing.assert_allclose(lsm, np.log(np_softmax(v, axis)), rtol=1e-12, atol=1e-12)
    verify_grad(lambda a: nnet.softmax(a, axis), [v], rng=rng)
    verify_grad(lambda a: nnet.log_softmax(a, axis), [v], rng=rng)


def test_softmax_is_stable_and_typed():
    x = T.fmatrix("x")
    big = np.array([[1000.0, 1000.0, -1000.0]], dtype="float32")
    sm, lsm = function([x], [nnet.softmax(x), nnet.log_softmax(x)])(big)
    assert sm.dtype == lsm.dtype == np.float32
    np.testing.assert_allclose(sm, [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(lsm, [[-np.log(2), -np.log(2), -2000.0 - np.log(2)]], rtol=1e-6)
    i = T.ivector("i")
    out = function([i], nnet.softmax(i, axis=0))(np.array([1, 1], dtype="int32"))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [0.5, 0.5])


def test_softmax_of_a_vector_is_one_row_as_in_theano(rng):
    """Without `axis`, softmax(vector) has shape (1, n), as Theano's does; with it, (n,)."""
    v = T.dvector("v")
    vv = rng.normal(size=5)
    row, flat = function([v], [nnet.softmax(v), nnet.softmax(v, axis=-1)])(vv)
    assert row.shape == (1, 5) and flat.shape == (5,)
    np.testing.assert_allclose(row[0], np_softmax(vv, -1), rtol=1e-12)
    np.testing.assert_allclose(flat, np_softmax(vv, -1), rtol=1e-12)
    verify_grad(lambda a: nnet.softmax(a)[0, 1:3], [vv], rng=rng)


def test_softmax_second_derivative(rng):
    verify_grad(lambda a: T.grad(T.sum(nnet.softmax(a) ** 3), a), [rng.normal(size=4)], rng=rng)


def test_softmax_infer_shape_and_errors():
    x = T.dmatrix("x")
    node = nnet.softmax(x).owner
    assert node.op.infer_shape(node, [(2, 3)]) == [(2, 3)]
    assert str(node.op) == "softmax{axis=1}"
    with pytest.raises(GraphError, match="softmax: axis 2 is out of range for x with 2 dims"):
        nnet.softmax(x, axis=2)
    with pytest.raises(GraphError, match="axis -1 is out of range for s with 0 dims"):
        nnet.softmax(T.dscalar("s"))
    with pytest.raises(GraphError, match="expects a float tensor with at least 1 dim"):
        nnet.Softmax(0)(T.lvector("i"))


def test_binary_crossentropy(rng):
    o, t = T.dvector("o"), T.dvector("t")
    ov, tv = rng.uniform(0.05, 0.95, 6), rng.uniform(0, 1, 6)
    got = function([o, t], nnet.binary_crossentropy(o, t))(ov, tv)
    np.testing.assert_allclose(got, -(tv * np.log(ov) + (1 - tv) * np.log(1 - ov)))
    verify_grad(lambda a: nnet.binary_crossentropy(a, tv), [ov], rng=rng)
    # on sigmoid outputs the stabilize rewrites keep it finite where sigmoid saturates
    z = T.dvector("z")
    loss = function([z, t], nnet.binary_crossentropy(nnet.sigmoid(z), t))
    np.testing.assert_allclose(loss(np.array([800.0, -800.0]), np.array([0.0, 1.0])),
                               [800.0, 800.0])


def test_categorical_crossentropy_probabilities_and_indices(rng):
    p = T.dmatrix("p")
    probs = np_softmax(rng.normal(size=(4, 3)))
    labels = np.array([0, 2, 1, 2])
    onehot = np.eye(3)[labels]
    expect = -np.log(probs[np.arange(4), labels])
    t = T.dmatrix("t")
    y = T.lvector("y")
    dense = function([p, t], nnet.categorical_crossentropy(p, t))(probs, onehot)
    sparse = function([p, y], nnet.categorical_crossentropy(p, y))(probs, labels)
    np.testing.assert_allclose(dense, expect)
    np.testing.assert_allclose(sparse, expect)
    verify_grad(lambda a: nnet.categorical_crossentropy(a, T.constant(labels)), [probs], rng=rng)
    verify_grad(lambda a: nnet.categorical_crossentropy(nnet.softmax(a), T.constant(labels)),
                [rng.normal(size=(4, 3))], rng=rng)


def test_categorical_crossentropy_gradient_has_no_nan_for_zero_probabilities():
    p, y = T.dmatrix("p"), T.lvector("y")
    g = T.grad(T.sum(nnet.categorical_crossentropy(p, y)), p)
    out = function([p, y], g)(np.array([[0.0, 0.5, 0.5]]), np.array([1]))
    np.testing.assert_array_equal(out, [[0.0, -2.0, 0.0]])


def test_categorical_crossentropy_errors():
    p = T.dmatrix("p")
    y = T.lvector("y")
    f = function([p, y], nnet.categorical_crossentropy(p, y))
    with pytest.raises(IndexError, match="class index 3 is out of range for 3 classes"):
        f(np.full((1, 3), 1 / 3), np.array([3]))
    with pytest.raises(ValueError, match=r"class indices of shape \(2,\), got \(1,\)"):
        f(np.full((2, 3), 1 / 3), np.array([0]))
    with pytest.raises(GraphError, match="true_dist .* must have the shape of coding_dist"):
        nnet.categorical_crossentropy(p, T.dtensor3("t"))
    with pytest.raises(GraphError, match="class indices must be an integer tensor"):
        nnet.CrossentropyCategorical1Hot()(p, T.dvector("v"))


def test_to_one_hot():
    y = T.ivector("y")
    out = function([y], nnet.to_one_hot(y, 4, dtype="int8"))(np.array([1, 3], dtype="int32"))
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, np.eye(4, dtype="int8")[[1, 3]])
    assert nnet.to_one_hot(y, 4).type.shape == (None, 4)
    with pytest.raises(GraphError, match="class indices must be integers"):
        nnet.to_one_hot(T.dvector("v"), 3)


def test_xlogx_and_xlogy0_are_zero_where_x_is_zero(rng):
    """T.xlogx.xlogx / xlogy0 against NumPy, 0 (not NaN) at x == 0, with finite gradients."""
    x, y = T.dvector("x"), T.dvector("y")
    xv = np.array([0.0, 0.25, 1.0, 0.0, 3.0])
    yv = np.array([0.0, 0.5, 2.0, 0.3, 0.1])
    got_x, got_y, gx, gy = function([x, y], [
        T.xlogx.xlogx(x), T.xlogx.xlogy0(x, y),
        *T.grad(T.sum(T.xlogx.xlogy0(x, y) + T.xlogx.xlogx(x)), [x, y])])(xv, yv)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_x = np.where(xv == 0, 0.0, xv * np.log(xv))
        ref_y = np.where(xv == 0, 0.0, xv * np.log(yv))
    np.testing.assert_allclose(got_x, ref_x, rtol=1e-12)
    np.testing.assert_allclose(got_y, ref_y, rtol=1e-12)
    nz = xv != 0
    np.testing.assert_allclose(gx[nz], np.log(yv[nz]) + np.log(xv[nz]) + 1, rtol=1e-12)
    np.testing.assert_allclose(gy[nz], xv[nz] / yv[nz], rtol=1e-12)
    assert np.all(np.isfinite(gx)) and np.all(gy[~nz] == 0)
    pos = rng.uniform(0.2, 2.0, size=4)
    verify_grad(lambda a, b: T.xlogx.xlogy0(a, b), [pos, pos[::-1].copy()], rng=rng)
