"""Random streams with Theano's API (RandomStreams, MRG_RandomStreams): each draw against an
independent reference (the Philox words of theanine.tensor.philox, exact CDFs, NumPy moments
with fixed seeds), identical across the numpy, c and opencl backends; states that reseed,
read, set, skip their updates and pickle."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.sandbox.rng_mrg import MRG_RandomStreams
from theanine.tensor import philox
from theanine.tensor.random_ops import binomial_from_uniform
from theanine.tensor.shared_randomstreams import RandomStreams

BACKENDS = ["numpy", "c"]
GPU_LIKE = ["opencl"] if backends()["opencl"].available()[0] else []


def _uniform64(seed: int, draw: int, count: int, counter: int = 0) -> np.ndarray:
    """Draw number `draw` of a stream seeded `seed`: its float64 uniforms, from the words."""
    w = philox.words(philox.seed_key(seed, draw), counter,
                     np.arange(count, dtype=np.uint64) * np.uint64(2), 2)
    return ((w[:, 0] >> 5).astype(np.float64) * 2.0 ** 26 + (w[:, 1] >> 6)) * 2.0 ** -53


def _sort_keys(seed: int, draw: int, count: int) -> np.ndarray:
    w = philox.words(philox.seed_key(seed, draw), 0,
                     np.arange(count, dtype=np.uint64) * np.uint64(2), 2).astype(np.uint64)
    return (w[:, 0] << np.uint64(32)) | w[:, 1]


# -- the Theano-facing classes -------------------------------------------------------------------
def test_uniform_is_the_philox_reference_scaled_and_advances_per_call():
    srng = RandomStreams(seed=234)
    u = srng.uniform((2, 3), low=-1.0, high=3.0, dtype="float64")
    f = th.function([], u)
    for call in range(2):
        ref = -1.0 + 4.0 * _uniform64(234, 0, 6, counter=call).reshape(2, 3)
        np.testing.assert_allclose(f(), ref, rtol=0, atol=1e-15)
    assert u.rng is srng.state_updates[0][0] and u.update == srng.state_updates[0]


def test_dtype_follows_floatx_and_symbolic_parameters():
    old = th.config.floatX
    th.config.floatX = "float32"
    try:
        srng = MRG_RandomStreams(1)
        assert srng.uniform((2,)).dtype == "float32"
        assert srng.normal((2,), avg=0.0, std=1.0).dtype == "float32"
        assert srng.uniform((2,), low=T.dscalar()).dtype == "float64"  # upcast, as Theano
        assert srng.binomial((2,), p=0.5).dtype == "int64"
        assert srng.binomial((2,), p=0.5, dtype=th.config.floatX).dtype == "float32"
    finally:
        th.config.floatX = old
    assert RandomStreams(1).normal((2,)).dtype == "float64"


@pytest.mark.parametrize("backend", BACKENDS)
def test_symbolic_size_from_a_shape(backend):
    x = T.matrix("x")
    srng = MRG_RandomStreams(5)
    mask = srng.binomial(size=x.shape, n=1, p=0.25, dtype=x.dtype)
    f = th.function([x], [x * mask, srng.normal(x.shape), srng.uniform(x.shape[1:])],
                    backend=backend)
    dropped, z, u = f(np.ones((300, 40)))
    assert dropped.shape == z.shape == (300, 40) and u.shape == (40,)
    assert set(np.unique(dropped)) == {0.0, 1.0} and abs(dropped.mean() - 0.25) < 0.02
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03


def test_binomial_counts_invert_the_exact_cdf():
    """Independent reference: the CDF summed with math.comb, inverted at the same uniforms."""
    n, p = 12, 0.3
    pmf = [math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)]
    cdf = np.cumsum(pmf)
    u = _uniform64(9, 0, 2000)
    expect = np.searchsorted(cdf, u, side="right")
    srng = RandomStreams(9)
    got = th.function([], srng.binomial((2000,), n=n, p=p))()
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("n,p", [(40, 0.5), (5000, 0.3), (20, 0.97)])
def test_binomial_moments(n, p):
    """Large n starts the sum ten sds below the mean (lgamma), still Binomial(n, p)."""
    u = np.random.default_rng(0).random(40000)
    k = binomial_from_uniform(u, n, p)
    assert k.min() >= 0 and k.max() <= n
    assert abs(k.mean() - n * p) < 4 * math.sqrt(n * p * (1 - p) / len(u))
    assert abs(k.var() / (n * p * (1 - p)) - 1) < 0.05


def test_binomial_edges():
    u = np.array([0.0, 0.5, 1 - 2 ** -53])
    assert binomial_from_uniform(u, 7, 0.0).tolist() == [0, 0, 0]
    assert binomial_from_uniform(u, 7, 1.0).tolist() == [7, 7, 7]
    assert binomial_from_uniform(u, 0, 0.5).tolist() == [0, 0, 0]
    assert binomial_from_uniform(u, 7, 0.5).tolist() == [0, 3, 7]


def test_random_integers_are_inclusive_and_exact():
    srng = RandomStreams(3)
    r = srng.random_integers((3000,), low=-2, high=4)
    got = th.function([], r)()
    expect = -2 + np.floor(_uniform64(3, 0, 3000) * 7).astype(np.int64)
    np.testing.assert_array_equal(got, expect)
    assert sorted(set(got.tolist())) == list(range(-2, 5))


def test_permutation_is_the_order_of_the_philox_keys():
    srng = RandomStreams(11)
    got = th.function([], srng.permutation(size=(3,), n=6))()
    keys = _sort_keys(11, 0, 18).reshape(3, 6)
    np.testing.assert_array_equal(got, np.argsort(keys, axis=1, kind="stable"))
    assert th.function([], RandomStreams(1).permutation(n=4))().shape == (4,)


def test_permutations_are_uniform():
    got = th.function([], RandomStreams(2).permutation(size=(6000,), n=3))()
    assert (np.sort(got, axis=1) == np.arange(3)).all()
    counts = np.unique(got[:, 0], return_counts=True)[1]
    assert np.all(np.abs(counts / 6000 - 1 / 3) < 0.02)


def test_multinomial_counts_and_moments():
    pv = np.array([0.2, 0.3, 0.5])
    srng = RandomStreams(4)
    got = th.function([], srng.multinomial(size=(20000,), n=10, pvals=pv))()
    assert got.shape == (20000, 3) and (got.sum(axis=1) == 10).all() and got.min() >= 0
    np.testing.assert_allclose(got.mean(axis=0), 10 * pv, atol=0.04)
    np.testing.assert_allclose(got.var(axis=0), 10 * pv * (1 - pv), rtol=0.05)
    rows = th.function([], srng.multinomial(n=[3, 4], pvals=[[0.5, 0.5], [0.0, 1.0]]))()
    assert rows.sum(axis=1).tolist() == [3, 4] and rows[1].tolist() == [0, 4]


def test_choice_forms():
    srng = RandomStreams(6)
    a = np.array([10.0, 20.0, 30.0, 40.0])
    wr, wo, wp, wop = th.function([], [
        srng.choice(size=(4000,), a=5), srng.choice(size=(4,), a=a, replace=False),
        srng.choice(size=(8000,), a=3, p=[0.1, 0.3, 0.6]),
        srng.choice(size=(2,), a=4, replace=False, p=[0.0, 0.5, 0.0, 0.5])])()
    assert set(wr.tolist()) == set(range(5))
    assert sorted(wo.tolist()) == a.tolist()
    np.testing.assert_allclose(np.bincount(wp, minlength=3) / 8000, [0.1, 0.3, 0.6], atol=0.02)
    assert sorted(wop.tolist()) == [1, 3]
    assert th.function([], srng.choice())().shape == ()


def test_mrg_multinomial_and_choice_take_a_matrix_of_probabilities():
    srng = MRG_RandomStreams(12345)
    pv = np.array([[0.98, 0.01, 0.01], [0.01, 0.49, 0.50]])
    m, c, c2 = th.function([], [srng.multinomial(pvals=pv, n=2),
                                srng.choice(size=2, p=pv, replace=False),
                                srng.multinomial_wo_replacement(pvals=np.full((5, 4), .25),
                                                                n=4)])()
    assert m.shape == (2, 3) and (m.sum(axis=1) == 2).all()
    assert c.shape == (2, 2) and all(len(set(r)) == 2 for r in c.tolist())
    assert (np.sort(c2, axis=1) == np.arange(4)).all()
    big = th.function([], srng.multinomial(pvals=np.tile(pv[1], (4000, 1))))()
    np.testing.assert_allclose(big.mean(axis=0), pv[1], atol=0.03)


def test_mrg_keywords_and_truncated_normals():
    srng = MRG_RandomStreams(seed=[1, 2, 3, 4, 5, 6])
    z, t = th.function([], [srng.normal((20000,), std=2.0, truncate=True, nstreams=64),
                            srng.truncated_normal((20000,), std=2.0)])()
    assert np.abs(z).max() <= 4.0 and abs(z.std() / 2.0 - 0.8796) < 0.02
    assert np.abs(t).max() <= 4.0 / 0.8796 + 1e-9 and abs(t.std() - 2.0) < 0.04
    assert srng.uniform((2,), target="cpu") is not None
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['colour'\]"):
        srng.uniform((2,), colour="red")


def test_every_draw_is_identical_across_backends():
    x = T.matrix("x")

    def draws():
        s = MRG_RandomStreams(77)
        return [s.uniform(x.shape), s.normal((5,)), s.binomial(x.shape, n=9, p=0.4),
                s.random_integers((6,), 0, 9), s.permutation((2,), n=5),
                s.multinomial(pvals=[[0.3, 0.7], [0.6, 0.4]], n=6),
                s.choice(size=2, p=[[0.25] * 4], replace=False)]

    value = np.zeros((3, 4))
    ref = th.function([x], draws(), backend="numpy")(value)
    for backend in ["c", *GPU_LIKE]:
        got = th.function([x], draws(), backend=backend)(value)
        for r, g in zip(ref, got):
            np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)


# -- states --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_default_updates_list_keeps_only_those_states(backend):
    srng = RandomStreams(8)
    u, z = srng.uniform((3,)), srng.normal((3,))
    f = th.function([], [u, z], no_default_updates=[u.rng], backend=backend)
    (u0, z0), (u1, z1) = f(), f()
    np.testing.assert_array_equal(u0, u1)
    assert not np.allclose(z0, z1)
    assert u.rng.get_value()[1] == 0 and z.rng.get_value()[1] == 2


def test_get_set_value_and_seed():
    srng = RandomStreams(8)
    u = srng.uniform((4,))
    f = th.function([], u)
    saved = u.rng.get_value()
    a, b = f(), f()
    u.rng.set_value(saved)
    np.testing.assert_array_equal(f(), a)
    srng.seed(8)
    np.testing.assert_array_equal(f(), a)
    srng.seed(9)
    assert u.rng.get_value().tolist() == [philox.seed_key(9, 0), 0]
    state = u.rng.get_value(borrow=True)
    state.seed(5)  # Theano's tutorial: rng_val.seed(...), then set_value(rng_val)
    u.rng.set_value(state, borrow=True)
    assert u.rng.get_value().get_state().tolist() == [philox.seed_key(5, 0), 0]
    assert srng[u.rng].tolist() == [philox.seed_key(5, 0), 0]
    srng[u.rng] = saved
    np.testing.assert_array_equal(f(), a)
    assert not np.array_equal(a, b)


def test_streams_and_states_pickle_and_continue():
    srng = MRG_RandomStreams(21)
    u = srng.uniform((3,))
    f = th.function([], u)
    f()
    srng2, u2 = pickle.loads(pickle.dumps((srng, u)))
    state2 = srng2.state_updates[0][0]
    assert state2.default_update is not None and u2.rng is state2
    g = th.function([], u2)
    np.testing.assert_array_equal(g(), f())
    np.testing.assert_array_equal(g(), f())
    srng2.seed(21)
    srng.seed(21)
    np.testing.assert_array_equal(g(), f())


def test_draw_shapes_are_inferred_without_drawing():
    k, pv = T.lscalar("k"), T.dmatrix("pv")
    s = MRG_RandomStreams(1)
    outs = [s.permutation((k, 2), n=3), s.multinomial(pvals=pv, n=2),
            s.choice(size=2, p=pv, replace=False), s.binomial((k,), n=4, p=0.2),
            RandomStreams(1).choice((k, 2), a=np.arange(5.0), p=[0.2] * 5)]
    shapes = th.function([k, pv], [o.shape for o in outs])(3, np.full((4, 3), 1 / 3))
    assert [tuple(sh) for sh in shapes] == [(3, 2, 3), (4, 3), (4, 2), (3,), (3, 2)]


def test_gradients_flow_around_draws_not_into_them():
    """A dropout's gradient is the mask itself, drawn once per call (as in Theano)."""
    w = th.shared(np.ones(6), name="w")
    s = RandomStreams(4)
    mask = s.binomial((6,), n=3, p=0.5)
    cost = T.sum(w * mask)
    f = th.function([], [mask, T.grad(cost, w)])
    m, g = f()
    np.testing.assert_array_equal(g, m)


def test_seed_restarts_from_the_given_seed_and_later_draws_keep_the_streams():
    """Theano's seed(): seed(None) goes back to the constructor's seed, and draws made after
    seed(s) still derive from the stream's own seed."""
    srng = RandomStreams(8)
    u = srng.uniform((4,))
    srng.seed(9)
    v = srng.uniform((4,))
    assert u.rng.get_value().tolist() == [philox.seed_key(9, 0), 0]
    assert v.rng.get_value().tolist() == [philox.seed_key(8, 1), 0]
    srng.seed()
    assert u.rng.get_value().tolist() == [philox.seed_key(8, 0), 0]


def test_a_draw_read_through_givens_advances_and_a_replaced_one_does_not():
    u = RandomStreams(1).uniform((3,))
    x = T.dvector("x")
    f = th.function([], x * 2, givens={x: u})
    assert not np.array_equal(f(), f())
    before = u.rng.get_value()
    g = th.function([], u + 1, givens={u: T.zeros(3)})
    np.testing.assert_array_equal(g(), np.ones(3))
    np.testing.assert_array_equal(u.rng.get_value(), before)


def test_a_symbolic_size_vector_with_ndim():
    size = T.lvector("size")
    f = th.function([size], RandomStreams(2).uniform(size, ndim=2))
    assert f([2, 3]).shape == (2, 3)
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        f([2, 3, 4])


def test_choice_needs_one_probability_per_item():
    srng = RandomStreams(3)
    with pytest.raises(Exception, match="a has 5 items, p has 3"):
        srng.choice((8,), a=5, p=[0.1, 0.2, 0.7])
    p = T.dvector("p")
    f = th.function([p], srng.choice((8,), a=np.arange(4), p=p))
    assert set(f([0.25] * 4)) <= {0, 1, 2, 3}
    with pytest.raises(ValueError, match="expected"):
        f([0.5, 0.5])


def test_a_python_float_probability_draws_floatx_uniforms():
    """Theano autocasts Python floats to floatX: with floatX=float32 a dropout's p=0.5 draws
    one Philox word per element (float32 uniforms), not two."""
    x = T.fmatrix("x")
    old = th.config.floatX
    th.config.floatX = "float32"
    try:
        mask = RandomStreams(4).binomial(size=x.shape, p=0.5, dtype="float32")
    finally:
        th.config.floatX = old
    draws = [n for n in th.graph.traversal.toposort([mask])
             if getattr(getattr(n.op, "scalar_op", None), "name", "").startswith("random_")]
    assert [n.op.scalar_op.name for n in draws] == ["random_uniform_float32"]
