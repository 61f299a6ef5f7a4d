"""grad(), jacobian(), hessian() and verify_grad() against analytic derivatives and finite
differences."""

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.gradient import (
    DisconnectedInputError,
    GradientError,
    disconnected_grad,
    grad,
    verify_grad,
    zero_grad,
)
from theanine.graph.basic import Apply, GraphError, Op


def test_seed_derivative_of_exp_sin_square():
    x = T.dscalar()
    fx = T.exp(T.sin(x ** 2))
    f = th.function(inputs=[x], outputs=[fx])
    fprime = th.function([x], T.grad(fx, wrt=x))
    np.testing.assert_allclose(f(10)[0], 0.602681965908778, rtol=1e-15)
    # The seed printed 4.347404090286685 (libm's exp); NumPy's exp differs in the last bit.
    np.testing.assert_allclose(fprime(15), 4.347404090286685, rtol=4e-16)


def test_partial_derivatives_and_list_wrt():
    x, y = T.dscalar("x"), T.dscalar("y")
    z = x ** 3 + y ** 2 + x * y
    f = th.function([x, y], T.grad(z, [x, y]))
    assert [float(v) for v in f(2, 3)] == [15.0, 8.0]


def test_grad_requires_scalar_cost_and_names_line():
    x = T.dvector("x")
    with pytest.raises(GraphError, match=r"(?s)cost must be a scalar.*test_gradient.py"):
        grad(x * 2, x)


def test_disconnected_inputs():
    x, y = T.dscalar("x"), T.dscalar("y")
    with pytest.raises(DisconnectedInputError, match="does not depend on y"):
        grad(x ** 2, y)
    with pytest.warns(UserWarning, match="does not depend on y"):
        g = grad(x ** 2, y, disconnected_inputs="warn")
    assert th.function([y], g)(3.0) == 0
    assert grad(x ** 2, y, disconnected_inputs="ignore", return_disconnected="none") is None


@pytest.mark.parametrize("build", [
    T.floor, T.round, T.ceil, lambda v: T.cast(v, "int32"), lambda v: T.cast(v.argmax(), "float64"),
    lambda v: T.cast(v > 0, "float64"), T.sign,
], ids=["floor", "round", "ceil", "cast_int", "argmax", "comparison", "sign"])
def test_a_zero_derivative_is_a_zero_gradient_not_a_disconnection(build):
    x = T.dvector("x")
    g = grad(T.sum(build(x) * 1.0), x)
    assert g.dtype == "float64"
    out = th.function([x], g, on_unused_input="ignore")(np.array([0.3, -1.7]))
    np.testing.assert_array_equal(out, [0.0, 0.0])


def test_a_shape_does_not_connect_the_values():
    x = T.dvector("x")
    with pytest.raises(DisconnectedInputError, match="does not depend on x"):
        grad(T.cast(x.shape[0], "float64") * 2.0, x)
    g = grad(x.sum() / T.cast(x.shape[0], "float64"), x)  # mean: connected through the sum
    np.testing.assert_allclose(th.function([x], g)(np.ones(4)), np.full(4, 0.25))


def test_integer_wrt_gets_float_zeros():
    x, i = T.dvector("x"), T.ivector("i")
    g = grad(T.sum(x * i), i)
    assert g.dtype == th.config.floatX
    out = th.function([x, i], g, on_unused_input="ignore")([1.0, 2.0], [3, 4])
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert grad(T.sum(x), i, disconnected_inputs="ignore").dtype == th.config.floatX


def test_return_disconnected_is_validated():
    x, y = T.dscalar("x"), T.dscalar("y")
    with pytest.raises(ValueError, match="return_disconnected must be 'zero', 'none' or"):
        grad(x ** 2, y, disconnected_inputs="ignore", return_disconnected="Zero!")
    assert grad(x ** 2, y, disconnected_inputs="ignore", return_disconnected="None") is None
    assert grad(x ** 2, y, disconnected_inputs="ignore",
                return_disconnected="Disconnected") is None


def test_consider_constant_and_stop_gradients():
    x = T.dscalar("x")
    y = x ** 2
    assert th.function([x], grad(y * x, x, consider_constant=[y]))(3.0) == 9.0
    assert th.function([x], grad(zero_grad(y) * x, x))(3.0) == 9.0
    assert th.function([x], grad(disconnected_grad(y) * x + y, x))(3.0) == 15.0


def test_known_grads_starts_from_an_intermediate():
    x = T.dvector("x")
    h = x * 3
    g = grad(None, x, known_grads={h: T.ones_like(h) * 2})
    np.testing.assert_array_equal(th.function([x], g)([1.0, 2.0]), [6.0, 6.0])


def test_gradient_accumulates_over_multiple_paths():
    x = T.dvector("x")
    cost = T.sum(x * x + T.exp(x) * x)
    g = th.function([x], grad(cost, x))
    xv = np.array([0.5, -1.0])
    np.testing.assert_allclose(g(xv), 2 * xv + np.exp(xv) * (1 + xv))


def test_gradient_dtype_follows_the_variable():
    x = T.fvector("x")
    g = grad(T.sum(x * 2.5), x)
    assert g.dtype == "float32"


def test_jacobian_of_linear_map_is_the_matrix():
    A, x, b = T.dmatrix("A"), T.dvector("x"), T.dvector("b")
    y = T.dot(A, x) + b
    f = th.function([A, x, b], th.gradient.jacobian(y, x))
    Av = np.array([[9.0, 8, 7], [4, 5, 6]])
    np.testing.assert_array_equal(f(Av, [1, 2, 3], [4, 5]), Av)


def test_jacobian_and_hessian_of_nonlinear_functions():
    x = T.dvector("x")
    J = th.function([x], th.jacobian(T.sin(x) * x[0], x))
    xv = np.array([0.3, -1.2, 2.0])
    expected = np.diag(np.cos(xv) * xv[0])
    expected[:, 0] += np.sin(xv)
    np.testing.assert_allclose(J(xv), expected, rtol=1e-12)
    H = th.function([x], th.hessian(T.sum(x ** 3) + x[0] * x[1], x))
    expected_h = np.diag(6 * xv)
    expected_h[0, 1] = expected_h[1, 0] = 1
    np.testing.assert_allclose(H(xv), expected_h, rtol=1e-12)


def test_jacobian_and_hessian_with_shared_variables():
    x = T.dvector("x")
    W = th.shared(np.arange(6.0).reshape(2, 3), name="W")
    J = th.function([x], th.jacobian(T.dot(W, x) ** 2, x))
    H = th.function([x], th.hessian(T.sum(T.dot(W, x) ** 2), x))
    xv = np.array([1.0, 2.0, 3.0])
    Wv = W.get_value()
    np.testing.assert_allclose(J(xv), 2 * (Wv @ xv)[:, None] * Wv, rtol=1e-12)
    np.testing.assert_allclose(H(xv), 2 * Wv.T @ Wv, rtol=1e-12)
    W.set_value(2 * Wv)  # the inner function reads the shared value at call time
    np.testing.assert_allclose(J(xv), 8 * (Wv @ xv)[:, None] * Wv, rtol=1e-12)
    Jw = th.function([x], th.jacobian(T.dot(W, x), W))
    assert Jw(xv).shape == (2, 2, 3)
    np.testing.assert_array_equal(Jw(xv)[1, 1], xv)


def test_jacobian_of_variables_that_share_a_name():
    a, b = T.dvector("x"), T.dvector("x")
    J = th.function([a, th.In(b, name="y")], th.jacobian(a * b, a))
    np.testing.assert_array_equal(J(np.ones(2), np.array([2.0, 3.0])), np.diag([2.0, 3.0]))


def test_jacobian_of_matrix_output_has_combined_shape():
    x = T.dvector("x")
    J = th.function([x], th.jacobian(T.outer(x, x), x))
    xv = np.array([1.0, 2.0])
    out = J(xv)
    assert out.shape == (2, 2, 2)
    # d(x_i x_j)/dx_k = delta_ik x_j + x_i delta_jk
    eye = np.eye(2)
    expected = np.einsum("ik,j->ijk", eye, xv) + np.einsum("i,jk->ijk", xv, eye)
    np.testing.assert_allclose(out, expected)


def test_verify_grad_catches_a_wrong_gradient(rng):
    class WrongSquare(Op):
        def make_node(self, x):
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs):
            return (inputs[0] ** 2,)

        def pullback(self, node, inputs, outputs, output_grads):
            return [output_grads[0] * 3 * inputs[0]]  # should be 2 * x

    with pytest.raises(GradientError, match="input 0"):
        verify_grad(WrongSquare(), [rng.normal(size=3)], rng=rng)
    verify_grad(lambda v: v ** 2, [rng.normal(size=3)], rng=rng)


def test_mlp_gradient_against_finite_differences(rng):
    W1, W2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    xv = rng.normal(size=(5, 3))

    def net(w1, w2):
        h = T.tanh(T.dot(th.tensor.constant(xv), w1))
        return T.sum(T.nnet.sigmoid(T.dot(h, w2)) ** 2)

    verify_grad(net, [W1, W2], rng=rng)


def test_rop_and_lop_against_the_jacobian(rng):
    """T.Rop (J v) and T.Lop (u J) of a nonlinear map of two inputs, against the Jacobian
    from central differences; several expressions at once, and the structure of the result."""
    W, x = T.dmatrix("W"), T.dvector("x")
    y1 = T.tanh(T.dot(W, x))
    y2 = (x ** 3).sum() * T.exp(W[0])
    Wv, xv = rng.normal(size=(3, 4)), rng.normal(size=4)
    dW, dx = rng.normal(size=(3, 4)), rng.normal(size=4)
    u1, u2 = rng.normal(size=3), rng.normal(size=4)

    def f(Wa, xa):
        return np.concatenate([np.tanh(Wa @ xa), (xa ** 3).sum() * np.exp(Wa[0])])

    eps = 1e-6
    jv = (f(Wv + eps * dW, xv + eps * dx) - f(Wv - eps * dW, xv - eps * dx)) / (2 * eps)
    vW, vx = T.dmatrix("vW"), T.dvector("vx")
    r1, r2 = T.Rop([y1, y2], [W, x], [vW, vx])
    got = th.function([W, x, vW, vx], [r1, r2])(Wv, xv, dW, dx)
    np.testing.assert_allclose(np.concatenate(got), jv, rtol=1e-6, atol=1e-8)
    single = T.Rop(y1, x, vx)
    assert isinstance(single, T.TensorVariable)
    np.testing.assert_allclose(th.function([W, x, vx], single)(Wv, xv, dx),
                               (1 - np.tanh(Wv @ xv) ** 2) * (Wv @ dx), rtol=1e-10)

    U1, U2 = T.dvector("u1"), T.dvector("u2")
    lw, lx = T.Lop([y1, y2], [W, x], [U1, U2])
    gW, gx = th.function([W, x, U1, U2], [lw, lx])(Wv, xv, u1, u2)
    u = np.concatenate([u1, u2])
    for got_g, shape, which in ((gW, Wv.shape, 0), (gx, xv.shape, 1)):
        num = np.zeros(shape)
        for i in np.ndindex(shape):
            d = np.zeros(shape)
            d[i] = eps
            args_p = (Wv + d, xv) if which == 0 else (Wv, xv + d)
            args_m = (Wv - d, xv) if which == 0 else (Wv, xv - d)
            num[i] = u @ (f(*args_p) - f(*args_m)) / (2 * eps)
        np.testing.assert_allclose(got_g, num, rtol=1e-6, atol=1e-8)
    with pytest.raises(GraphError, match="R-operator's point has the shape of the input"):
        T.Rop(y1, x, vW)
