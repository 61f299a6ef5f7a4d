"""scan's semantics on the reference backend: taps, until, non-sequences and free variables,
shared-variable updates, go_backwards, map/reduce/foldl/foldr, gradients (BPTT and
truncate_gradient) against NumPy loops and finite differences, and its errors."""

import pickle

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T
from theanine.backend import backends
from theanine.graph.basic import GraphError
from theanine.scan_module import until
from theanine.tensor.shared_randomstreams import RandomStreams

GPU_LIKE = ["opencl"] if backends()["opencl"].available()[0] else []


def run(inputs, outputs, *values, updates=None):
    return theano.function(inputs, outputs, updates=updates, backend="numpy")(*values)


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def test_taps_on_sequences_and_states(rng):
    x, h0 = T.dvector("x"), T.dvector("h0")
    out, _ = theano.scan(lambda a, b, c, s2, s1: s1 + 0.5 * s2 + a + 2 * b + c,
                         sequences=dict(input=x, taps=[-1, 0, 1]),
                         outputs_info=dict(initial=h0, taps=[-2, -1]))

    def ref(xv, hv):
        s = list(hv)
        for t in range(len(xv) - 2):
            s.append(s[-1] + 0.5 * s[-2] + xv[t] + 2 * xv[t + 1] + xv[t + 2])
        return np.array(s[2:])

    xv, hv = rng.normal(size=7), rng.normal(size=2)
    np.testing.assert_allclose(run([x, h0], out, xv, hv), ref(xv, hv))
    cost = (out ** 2).sum()
    gx, gh = T.grad(cost, [x, h0])
    got_x, got_h = run([x, h0], [gx, gh], xv, hv)
    np.testing.assert_allclose(got_x, numeric_grad(lambda v: (ref(v, hv) ** 2).sum(), xv),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got_h, numeric_grad(lambda v: (ref(xv, v) ** 2).sum(), hv),
                               rtol=1e-6, atol=1e-7)


def test_a_dict_initial_state_with_tap_minus_one_is_the_state_itself(rng):
    """dict(initial=h0) and dict(initial=h0, taps=[-1]) give h0 itself as the state, as in
    Theano (hmc.py's leapfrog scan), not a stack of past states."""
    h0, w = T.dmatrix("h0"), T.dmatrix("w")
    hv, wv = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)) * 0.3
    ref = [hv]
    for _ in range(3):
        ref.append(np.tanh(ref[-1] @ wv))
    for info in (dict(initial=h0), dict(initial=h0, taps=[-1])):
        out, _ = theano.scan(lambda h: T.tanh(T.dot(h, w)), outputs_info=[info], n_steps=3)
        assert out.ndim == 3
        np.testing.assert_allclose(run([h0, w], out, hv, wv), np.array(ref[1:]), rtol=1e-12)


def test_tap_order_is_the_users(rng):
    """fn receives the taps in the order they are listed, not sorted."""
    x = T.dvector("x")
    out, _ = theano.scan(lambda later, earlier: later - earlier,
                         sequences=dict(input=x, taps=[1, 0]))
    xv = rng.normal(size=5)
    np.testing.assert_allclose(run([x], out, xv), np.diff(xv))


def test_rnn_gradients_match_finite_differences(rng):
    X, h0 = T.dmatrix("X"), T.dvector("h0")
    W = theano.shared(rng.normal(size=(3, 3)) * 0.5, name="W")
    b = T.dvector("b")
    hs, _ = theano.scan(lambda x_t, h, b: T.tanh(T.dot(h, W) + x_t + b), sequences=X,
                        outputs_info=h0, non_sequences=b)
    cost = (hs ** 2).sum() + hs[-1].sum()
    gW, gX, gh, gb = T.grad(cost, [W, X, h0, b])
    Xv, hv, bv = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=3)
    Wv = W.get_value()

    def ref(Wv, Xv, hv, bv):
        h, c = hv, 0.0
        for x_t in Xv:
            h = np.tanh(h @ Wv + x_t + bv)
            c += (h ** 2).sum()
        return c + h.sum()

    got = run([X, h0, b], [gW, gX, gh, gb], Xv, hv, bv)
    want = [numeric_grad(lambda v: ref(v, Xv, hv, bv), Wv),
            numeric_grad(lambda v: ref(Wv, v, hv, bv), Xv),
            numeric_grad(lambda v: ref(Wv, Xv, v, bv), hv),
            numeric_grad(lambda v: ref(Wv, Xv, hv, v), bv)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_second_derivative_through_scan(rng):
    """The backward Scan is a Scan too: grad of grad works."""
    x = T.dvector("x")
    w = T.dscalar("w")
    out, _ = theano.scan(lambda x_t, h, w: T.sin(w * h) + x_t, sequences=x,
                         outputs_info=T.constant(0.3, dtype="float64"), non_sequences=w)
    g = T.grad(out[-1], w)
    gg = T.grad(g, w)
    xv = rng.normal(size=4)

    def ref(wv):
        h = 0.3
        for x_t in xv:
            h = np.sin(wv * h) + x_t
        return h

    f = theano.function([x, w], [g, gg], backend="numpy")
    g1, g2 = f(xv, 0.7)
    eps = 1e-4
    assert g1 == pytest.approx((ref(0.7 + eps) - ref(0.7 - eps)) / (2 * eps), rel=1e-6)
    assert g2 == pytest.approx((ref(0.7 + eps) - 2 * ref(0.7) + ref(0.7 - eps)) / eps ** 2,
                               rel=1e-4)


def test_truncate_gradient_stops_after_the_last_steps():
    xs = T.dvector("xs")
    w = T.dscalar("w")
    h0 = T.dscalar("h0")
    o, _ = theano.scan(lambda x_t, h, w: w * h + x_t, sequences=xs, outputs_info=h0,
                       non_sequences=w, truncate_gradient=2)
    gx, gh = T.grad(o[-1], [xs, h0])
    got_x, got_h = run([xs, h0, w], [gx, gh], np.arange(5.0), 1.0, 0.9)
    np.testing.assert_allclose(got_x, [0, 0, 0, 0.9, 1.0])
    assert got_h == 0  # truncated: nothing reaches the initial state


def test_go_backwards():
    x = T.dvector("x")
    o, _ = theano.scan(lambda x_t, h: h * 10 + x_t, sequences=x,
                       outputs_info=T.constant(0.0, dtype="float64"), go_backwards=True)
    np.testing.assert_allclose(run([x], o, np.array([1.0, 2.0, 3.0])), [3, 32, 321])


def test_until_stops_after_the_true_step():
    def power_of_2(previous_power, max_value):
        return previous_power * 2, until(previous_power * 2 > max_value)

    max_value = T.scalar()
    values, _ = theano.scan(power_of_2, outputs_info=T.constant(1.), non_sequences=max_value,
                            n_steps=1024)
    np.testing.assert_allclose(run([max_value], values, 45), [2, 4, 8, 16, 32, 64])


def test_free_and_shared_variables_and_their_updates():
    """fn reads an outer symbol and a shared variable it was not given, and updates a shared
    counter; the updates dict holds the counter's value after the last step."""
    count = theano.shared(np.int64(0), name="count")
    scale = T.dscalar("scale")
    x = T.dvector("x")
    o, updates = theano.scan(lambda x_t: (x_t * scale + count, {count: count + 1}),
                             sequences=x)
    assert list(updates) == [count]
    f = theano.function([x, scale], o, updates=updates, backend="numpy")
    np.testing.assert_allclose(f(np.ones(3), 2.0), [2, 3, 4])
    assert count.get_value() == 3
    np.testing.assert_allclose(f(np.ones(2), 1.0), [4, 5])


def test_random_draws_inside_scan_differ_per_step_and_per_call():
    srng = RandomStreams(seed=234)
    xs = T.dmatrix("xs")
    o, updates = theano.scan(lambda x_t: x_t + srng.uniform(size=(4,)), sequences=xs)
    f = theano.function([xs], o, updates=updates, backend="numpy")
    a, b = f(np.zeros((3, 4))), f(np.zeros((3, 4)))
    assert len({tuple(r) for r in np.concatenate([a, b])}) == 6
    assert ((a >= 0) & (a < 1)).all()
    g = theano.function([xs], o, updates=updates, backend="c")
    srng.seed(234)
    np.testing.assert_array_equal(g(np.zeros((3, 4))), a)  # same numbers on C


def test_map_reduce_foldl_foldr():
    x = T.dvector("x")
    zero = T.constant(0.0, dtype="float64")
    m, _ = theano.map(lambda v: v * 2, sequences=x)
    r, _ = theano.reduce(lambda v, acc: acc * 10 + v, sequences=x, outputs_info=zero)
    fl, _ = theano.foldl(lambda v, acc: acc * 10 + v, sequences=x, outputs_info=zero)
    fr, _ = theano.foldr(lambda v, acc: acc * 10 + v, sequences=x, outputs_info=zero)
    got = run([x], [m, r, fl, fr], np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got[0], [2, 4, 6])
    assert got[1:] == [123, 123, 321]


def test_several_outputs_nit_sot_and_return_list():
    x = T.dvector("x")
    (s, sq), _ = theano.scan(lambda v, acc: [acc + v, v ** 2], sequences=x,
                             outputs_info=[T.constant(0.0, dtype="float64"), None])
    got = run([x], [s, sq], np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got[0], [1, 3, 6])
    np.testing.assert_allclose(got[1], [1, 4, 9])
    (only,), _ = theano.scan(lambda v: v + 1, sequences=x, return_list=True)
    np.testing.assert_allclose(run([x], only, np.array([1.0])), [2])


def test_n_steps_zero_and_symbolic():
    k = T.iscalar("k")
    a = T.dvector("a")
    result, _ = theano.scan(lambda prior, a: prior * a, outputs_info=T.ones_like(a),
                            non_sequences=a, n_steps=k)
    f = theano.function([a, k], result, backend="numpy")
    assert f(np.arange(3.0), 0).shape == (0, 3)
    np.testing.assert_allclose(f(np.arange(3.0), 2)[-1], [0, 1, 4])


def test_nested_scan():
    m = T.dmatrix("m")

    def row_sum(row):
        s, _ = theano.scan(lambda v, acc: acc + v, sequences=row,
                           outputs_info=T.constant(0.0, dtype="float64"))
        return s[-1]

    sums, _ = theano.scan(row_sum, sequences=m)
    mv = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(run([m], sums, mv), mv.sum(1))
    g = T.grad(sums.sum() ** 2, m)
    np.testing.assert_allclose(run([m], g, mv), np.full((2, 3), 2 * mv.sum()))


def test_scan_graphs_and_functions_pickle():
    x = T.dvector("x")
    o, _ = theano.scan(lambda v, acc: acc + v, sequences=x,
                       outputs_info=T.constant(0.0, dtype="float64"), name="cumsum")
    f = pickle.loads(pickle.dumps(theano.function([x], T.grad(o.sum(), x), backend="numpy")))
    np.testing.assert_allclose(f(np.ones(3)), [3, 2, 1])
    o2 = pickle.loads(pickle.dumps(o))
    assert str(o2.owner.op) == "Scan{cumsum}"


@pytest.mark.parametrize("build, fragment", [
    (lambda x: theano.scan(lambda a, h: h + a, sequences=x, outputs_info=T.fscalar(),
                           name="loop"),
     "scan 'loop': output 0 is float64 but its initial state (outputs_info[0]) is float32"),
    (lambda x: theano.scan(lambda a: (a, a), sequences=x, outputs_info=[None], name="loop"),
     "scan 'loop': the step function returned 2 outputs but outputs_info describes 1"),
    (lambda x: theano.scan(lambda h: h, outputs_info=T.dscalar(), name="loop"),
     "scan 'loop': no sequences and no n_steps"),
    (lambda x: theano.scan(lambda h: T.stack([h, h]), outputs_info=T.dscalar(), n_steps=3),
     "scan: output 0 has 1 dims but its initial state (outputs_info[0]) has 0"),
    (lambda x: theano.scan(lambda h: h, outputs_info=T.dscalar(), n_steps=3.0),
     "scan: n_steps must be an integer scalar, got TensorType(float64"),
    (lambda x: theano.scan(lambda a, h: h + a, sequences=x,
                           outputs_info=dict(initial=T.dvector(), taps=[0])),
     "scan: output 0's taps must be negative, got [0]"),
    (lambda x: theano.scan(lambda h: h + x, outputs_info=T.dvector(shape=(1,)), n_steps=2),
     "its initial state has length 1 there (broadcastable)"),
])
def test_build_errors_name_the_scan_and_the_users_line(build, fragment):
    x = T.dvector("x")
    with pytest.raises(GraphError) as e:
        build(x)
    assert fragment in str(e.value)
    assert __file__ in str(e.value)


def test_run_errors_name_the_scan():
    x = T.dvector("x")
    o, _ = theano.scan(lambda a, b: a + b, sequences=dict(input=x, taps=[0, 5]), name="short")
    with pytest.raises(ValueError, match="scan 'short': n_steps must be >= 0, got -2"):
        run([x], o, np.arange(3.0))
    k = T.lscalar("k")
    o, _ = theano.scan(lambda a: a * 2, sequences=x, n_steps=k, name="long")
    with pytest.raises(ValueError, match="scan 'long': sequence 0 has 3 entries but 5 steps"):
        run([x, k], o, np.arange(3.0), 5)
    h0 = T.dvector("h0")
    grow, _ = theano.scan(lambda h: T.concatenate([h, h]), outputs_info=h0, n_steps=3,
                          name="grow")
    with pytest.raises(ValueError, match=r"scan 'grow': state 0 has shape \(1,\) \(its initial "
                       r"state's\) but the step function returned shape \(2,\) at step 0"):
        run([h0], grow, np.ones(1))


@pytest.mark.parametrize("backend", ["numpy", "c"] + GPU_LIKE)
def test_sum_to_shape_of_a_shape_vector(backend):
    """The form the scan gradient uses to avoid recomputing a forward value for its shape."""
    from theanine.tensor.elemwise import SumToShapeOf
    from theanine.tensor.shape_ops import MakeVector

    g = T.dmatrix("g")
    a, b = T.lscalar("a"), T.lscalar("b")
    out = SumToShapeOf(from_shape=True)(g, MakeVector("int64")(a, b))
    f = theano.function([g, a, b], out, backend=backend)
    gv = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(gv, 2, 3), gv)
    np.testing.assert_array_equal(f(gv, 1, 3), gv.sum(0, keepdims=True))
    np.testing.assert_array_equal(f(gv, 2, 1), gv.sum(1, keepdims=True))
    with pytest.raises(GraphError, match="must be an int64 vector of static length"):
        SumToShapeOf(from_shape=True)(g, T.lvector())


def test_clone_replaces_and_shares_the_other_inputs(rng):
    """theano.clone: the expression rebuilt on other inputs; the shared variable and the
    inputs not replaced are the same; strict refuses a replacement of another type."""
    x, y = T.dvector("x"), T.dvector("y")
    w = theano.shared(np.array([1.0, 2.0, 3.0]), name="w")
    cost = T.sum((x * w - y) ** 2)
    x2 = T.dvector("x2")
    cost2 = theano.clone(cost, replace={x: x2 * 2})
    xv, x2v, yv = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3)
    f = theano.function([x, x2, y], [cost, cost2], backend="numpy")
    got, got2 = f(xv, x2v, yv)
    np.testing.assert_allclose(got, np.sum((xv * w.get_value() - yv) ** 2))
    np.testing.assert_allclose(got2, np.sum((2 * x2v * w.get_value() - yv) ** 2))
    both = theano.clone([cost, x * 1.0], replace=[(x, x2)])
    assert isinstance(both, list) and len(both) == 2
    with pytest.raises(GraphError, match="cannot replace x .* strict=True"):
        theano.clone(cost, replace={x: T.fvector("f")})
    loose = theano.clone(cost, replace={x: T.fvector("f")}, strict=False)
    assert loose.dtype == "float64"
