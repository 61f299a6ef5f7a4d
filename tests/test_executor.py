"""The reference executor's memory reuse never changes a result: checked on a known aliasing
trap and on random expression graphs (with their gradients) in DebugMode, which compares the
executor's outputs with a node-by-node run of the NumPy reference."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import theanine as th
import theanine.tensor as T

UNARY = [T.tanh, T.sin, T.sigmoid, T.neg, T.sqr, lambda v: T.exp(T.tanh(v)), T.softplus]
BINARY = [T.add, T.sub, T.mul, T.maximum, lambda a, b: a / (1 + T.sqr(b))]


def test_a_buffer_read_later_through_a_view_is_not_overwritten():
    x, m = T.dmatrix("x"), T.dvector("m")
    cost = T.sum(x - m.dimshuffle(0, "x"))
    gx, gm = th.function([x, m], T.grad(cost, [x, m]))(np.ones((2, 3)), np.zeros(2))
    np.testing.assert_array_equal(gx, np.ones((2, 3)))
    np.testing.assert_array_equal(gm, [-3.0, -3.0])


def test_elementwise_output_reuses_a_dying_buffer_and_stays_correct():
    a, b = T.dvector("a"), T.dvector("b")
    f = th.function([a, b], a ** 2 + b ** 2 + 2 * a * b)
    assert "out=" in f._run.source
    av, bv = np.arange(5.0), np.arange(5.0) + 1
    np.testing.assert_array_equal(f(av, bv), (av + bv) ** 2)
    np.testing.assert_array_equal(av, np.arange(5.0))  # inputs untouched


@st.composite
def expressions(draw):
    x, y, z = T.dmatrix("x"), T.drow("y"), T.dvector("z")
    pool = [x, y, z.dimshuffle("x", 0)]
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.booleans()):
            op = draw(st.sampled_from(UNARY))
            pool.append(op(draw(st.sampled_from(pool))))
        else:
            op = draw(st.sampled_from(BINARY))
            pool.append(op(draw(st.sampled_from(pool)), draw(st.sampled_from(pool))))
    out = pool[-1]
    if draw(st.booleans()):
        out = out.sum(axis=draw(st.sampled_from([0, 1])))
    return (x, y, z), out


@given(expressions(), st.integers(0, 2 ** 16))
def test_random_graphs_and_gradients_match_the_reference(expr, seed):
    (x, y, z), out = expr
    cost = T.sum(out)
    grads = T.grad(cost, [x, y, z], disconnected_inputs="ignore")
    f = th.function([x, y, z], [out, *grads], mode="DebugMode")
    rng = np.random.default_rng(seed)
    xv, yv, zv = rng.normal(size=(3, 4)), rng.normal(size=(1, 4)), rng.normal(size=4)
    fast = th.function([x, y, z], [out, *grads])
    for a, b in zip(f(xv, yv, zv), fast(xv, yv, zv)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
