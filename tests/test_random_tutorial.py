"""The "Using Random Numbers" examples of Theano's tutorial (doc/tutorial/examples.txt), run
on random streams: each prints what the tutorial shows, apart from the random values.

The tutorial's own lines are quoted in the comments. Where it reaches into NumPy's RandomState
(`rng_val.seed(...)`, `.get_state()`/`.set_state()`), a theanine state is a uint64 vector
[key, counter] that `get_value`/`set_value` save and restore as a whole.
"""

import numpy as np
import pytest

import theanine as theano
from theanine import function
from theanine.sandbox.rng_mrg import MRG_RandomStreams
from theanine.tensor.shared_randomstreams import RandomStreams

BACKENDS = ["numpy", "c"]
# The tutorial's RandomStreams and, "Other Implementations", the same examples with
# `from theano.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams`
STREAMS = [RandomStreams, MRG_RandomStreams]


@pytest.fixture(params=BACKENDS)
def device(request):
    """The tutorial compiles with plain function(): run it on each backend through
    config.device."""
    old = theano.config.device
    theano.config.device = request.param
    yield request.param
    theano.config.device = old


@pytest.fixture(params=STREAMS, ids=lambda c: c.__name__)
def RandomStreams(request):
    """The stream class the tutorial imports as `RandomStreams`."""
    return request.param


def _brief_example(RandomStreams):
    # srng = RandomStreams(seed=234)
    # rv_u = srng.uniform((2,2)); rv_n = srng.normal((2,2))
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n, no_default_updates=True)  # Not updating rv_n.rng
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    return srng, rv_u, rv_n, f, g, nearly_zeros


def test_brief_example(device, RandomStreams):
    _, _, _, f, g, nearly_zeros = _brief_example(RandomStreams)
    f_val0 = f()
    f_val1 = f()  # different numbers from f_val0
    assert f_val0.shape == f_val1.shape == (2, 2) and f_val0.dtype == np.float64
    assert ((f_val0 >= 0) & (f_val0 < 1)).all() and ((f_val1 >= 0) & (f_val1 < 1)).all()
    assert not np.array_equal(f_val0, f_val1)
    g_val0 = g()  # different numbers from f_val0 and f_val1
    g_val1 = g()  # same numbers as g_val0!
    assert g_val0.shape == (2, 2)
    np.testing.assert_array_equal(g_val0, g_val1)
    assert not np.array_equal(g_val0, f_val0) and not np.array_equal(g_val0, f_val1)
    # a random variable is drawn at most once during any single function execution
    assert repr(nearly_zeros()) == repr(np.zeros((2, 2)))


def test_rv_rng_is_the_draws_state(device, RandomStreams):
    """`rv_u.rng` is the shared state of that draw and `rv_u.update` its (state, update)
    pair, as Theano's shared_randomstreams set them; `default_update` advances it."""
    srng, rv_u, rv_n, f, _, _ = _brief_example(RandomStreams)
    assert [rv_u.update, rv_n.update] == srng.state_updates
    assert rv_u.rng is srng.state_updates[0][0] and rv_n.rng is srng.state_updates[1][0]
    assert rv_u.update[1] is rv_u.rng.default_update
    before = rv_u.rng.get_value()
    f()
    assert not np.array_equal(rv_u.rng.get_value(), before)


def test_seeding_streams(device, RandomStreams):
    # rng_val = rv_u.rng.get_value(borrow=True); ...; rv_u.rng.set_value(rng_val, borrow=True)
    srng, rv_u, rv_n, f, g, _ = _brief_example(RandomStreams)
    other = RandomStreams(seed=89234)
    other_u = other.uniform((2, 2))
    rv_u.rng.set_value(other_u.rng.get_value(borrow=True), borrow=True)  # seeds rv_u alone
    np.testing.assert_array_equal(f(), function([], other_u)())
    # srng.seed(902340)  # seeds rv_u and rv_n with different seeds each
    srng.seed(902340)
    u0, n0 = f(), g()
    srng.seed(902340)
    np.testing.assert_array_equal(f(), u0)
    np.testing.assert_array_equal(g(), n0)
    assert not np.array_equal(rv_u.rng.get_value()[0], rv_n.rng.get_value()[0])


def test_sharing_streams_between_functions(device, RandomStreams):
    _, rv_u, _, f, _, nearly_zeros = _brief_example(RandomStreams)
    f()
    # state_after_v0 = rv_u.rng.get_value().get_state()
    state_after_v0 = rv_u.rng.get_value()
    # nearly_zeros()       # this affects rv_u's generator
    assert repr(nearly_zeros()) == "array([[0., 0.],\n       [0., 0.]])"
    v1 = f()
    # rng.set_state(state_after_v0); rv_u.rng.set_value(rng, borrow=True)
    rv_u.rng.set_value(state_after_v0, borrow=True)
    v2 = f()  # v2 != v1
    v3 = f()  # v3 == v1
    assert not np.array_equal(v2, v1)
    np.testing.assert_array_equal(v3, v1)


class Graph:
    """The tutorial's two-graph example: one stream and one draw of shape (1,)."""

    def __init__(self, RandomStreams, seed=123):
        self.rng = RandomStreams(seed)
        self.y = self.rng.uniform(size=(1,))


def copy_random_state(g1, g2):
    """The tutorial's copy: every state of g1's stream into the matching one of g2's. (It
    also copies an MRG stream's `rstate`, the seed of draws not made yet; here a draw's key is
    part of its state, so the states carry everything.)"""
    for su1, su2 in zip(g1.rng.state_updates, g2.rng.state_updates):
        su2[0].set_value(su1[0].get_value())


def test_copying_random_state_between_graphs(device, RandomStreams):
    g1 = Graph(RandomStreams, seed=123)
    f1 = theano.function([], g1.y)
    g2 = Graph(RandomStreams, seed=987)
    f2 = theano.function([], g2.y)
    # By default, the two functions are out of sync.
    a, b = f1(), f2()
    assert a.shape == b.shape == (1,) and a.dtype == b.dtype == np.float64
    assert repr(a).startswith("array([0.") and a[0] != b[0]
    # We now copy the state of the theano random number generators.
    copy_random_state(g1, g2)
    a, b = f1(), f2()
    assert repr(a) == repr(b)


def test_same_seed_same_numbers_on_every_backend(RandomStreams):
    """With the same seed the reference and the C backend draw the same bits."""
    draws = {}
    for backend in BACKENDS:
        srng = RandomStreams(seed=234)
        f = function([], [srng.uniform((2, 2)), srng.normal((2, 2))], backend=backend)
        draws[backend] = [f(), f()]
    for (u, n), (u_c, n_c) in zip(draws["numpy"], draws["c"]):
        np.testing.assert_array_equal(u_c, u)
        np.testing.assert_allclose(n_c, n, rtol=1e-13)
