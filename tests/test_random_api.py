"""Theano's random-stream API as ported programs use it (signatures and argument order, the
tutorial's "Using Random Numbers" examples, a dA-style corruption), and the errors bad
parameters get: at build time for constants, at run time (numpy and c) otherwise, naming the
argument and the user's line."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.graph.basic import GraphError
from theanine.sandbox.rng_mrg import MRG_RandomStreams
from theanine.tensor.shared_randomstreams import RandomStreams

BACKENDS = ["numpy", "c"]
THIS_FILE = "test_random_api.py"

THEANO_SIGNATURES = {  # Theano 1.0's parameters, in order (self left out)
    "uniform": ["size", "low", "high", "ndim", "dtype"],
    "normal": ["size", "avg", "std", "ndim", "dtype"],
    "binomial": ["size", "n", "p", "ndim", "dtype"],
    "multinomial": ["size", "n", "pvals", "ndim", "dtype"],
    "choice": ["size", "a", "replace", "p", "ndim", "dtype"],
    "permutation": ["size", "n", "ndim", "dtype"],
    "random_integers": ["size", "low", "high", "ndim", "dtype"],
}
MRG_EXTRA = {"uniform": ["nstreams"], "normal": ["nstreams", "truncate"],
             "binomial": ["nstreams"], "multinomial": ["nstreams"], "choice": ["nstreams"]}


def _params(method) -> list[str]:
    return [p.name for p in inspect.signature(method).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD]


def test_signatures_keep_theanos_argument_order():
    for name, params in THEANO_SIGNATURES.items():
        assert _params(getattr(RandomStreams(1), name)) == params, name
    for name, extra in MRG_EXTRA.items():
        assert _params(getattr(MRG_RandomStreams(1), name)) == THEANO_SIGNATURES[name] + extra
    u = RandomStreams(1).uniform((2, 2), 5, 6, None, "float64")  # all positional
    assert u.dtype == "float64" and u.ndim == 2


def test_the_tutorials_using_random_numbers_examples():
    """Theano's doc/tutorial/examples.txt, "Using Random Numbers", with only its imports
    changed: the same results apart from the random values themselves."""
    from theanine import function

    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n, no_default_updates=True)  # Not updating rv_n.rng
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    f_val0, f_val1 = f(), f()
    assert not np.allclose(f_val0, f_val1)
    g_val0, g_val1 = g(), g()
    np.testing.assert_array_equal(g_val0, g_val1)
    rng_val = rv_u.rng.get_value(borrow=True)  # Get the rng for rv_u
    rng_val.seed(89234)  # seeds the generator
    rv_u.rng.set_value(rng_val, borrow=True)  # Assign back seeded rng
    srng.seed(902340)  # seeds rv_u and rv_n with different seeds each
    state_after_v0 = rv_u.rng.get_value().get_state()
    np.testing.assert_array_equal(nearly_zeros(), np.zeros((2, 2)))
    v1 = f()
    rng = rv_u.rng.get_value(borrow=True)
    rng.set_state(state_after_v0)
    rv_u.rng.set_value(rng, borrow=True)
    v2, v3 = f(), f()
    assert not np.array_equal(v2, v1)
    np.testing.assert_array_equal(v3, v1)

    class Graph:
        def __init__(self, seed=123):
            self.rng = RandomStreams(seed)
            self.y = self.rng.uniform(size=(1,))

    g1, g2 = Graph(seed=123), Graph(seed=987)
    f1, f2 = th.function([], g1.y), th.function([], g2.y)
    assert f1() != f2()  # by default, the two functions are out of sync
    for su1, su2 in zip(g1.rng.state_updates, g2.rng.state_updates):
        su2[0].set_value(su1[0].get_value())
    np.testing.assert_array_equal(f1(), f2())


def test_a_denoising_autoencoder_corruption_runs_as_written():
    """dA.py's get_corrupted_input and its `if not W:`, with the imports changed only."""
    numpy_rng = np.random.RandomState(123)
    theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
    W = th.shared(np.zeros((4, 3)), name="W")
    if not W:  # a shared variable is true, as in Theano
        raise AssertionError
    x = T.matrix("x")
    corrupted = theano_rng.binomial(size=x.shape, n=1, p=1 - 0.3,
                                    dtype=th.config.floatX) * x
    out = th.function([x], corrupted)(np.ones((500, 20)))
    assert set(np.unique(out)) == {0.0, 1.0} and abs(out.mean() - 0.7) < 0.02


# -- bad parameters ------------------------------------------------------------------------------
CONSTANT_CASES = [
    (lambda s: s.binomial((2,), p=1.5), r"binomial: p: must lie in \[0, 1\], got 1.5"),
    (lambda s: s.binomial((2,), n=3, p=-0.1), r"binomial: p: must lie in \[0, 1\], got -0.1"),
    (lambda s: s.binomial((2,), n=-1, p=0.5), "binomial: n: must not be negative, got -1"),
    (lambda s: s.multinomial((2,), n=3, pvals=[0.5, 0.4]),
     "multinomial: pvals: each row must sum to 1, got a row summing to 0.9"),
    (lambda s: s.multinomial(n=-2, pvals=[0.5, 0.5]),
     "multinomial: n: must not be negative, got -2"),
    (lambda s: s.choice((2,), a=3, p=[0.5, 0.6, -0.1]), "choice: p: must not be negative"),
    (lambda s: s.permutation(n=-3), "permutation: n: must not be negative, got -3"),
    (lambda s: s.uniform((2, -1)), "size must not have negative lengths, got \\(2, -1\\)"),
    (lambda s: s.random_integers((2,), low=5, high=1), "low must not exceed high"),
    (lambda s: s.choice((2,), a=-2), "choice: a: must not be negative, got -2"),
    (lambda s: MRG_RandomStreams(1).multinomial(pvals=[[0.2, 0.2]]),
     "multinomial: pvals: each row must sum to 1"),
]


@pytest.mark.parametrize("build,message", CONSTANT_CASES)
def test_constant_parameters_are_checked_when_the_graph_is_built(build, message):
    with pytest.raises(GraphError, match=message) as info:
        build(RandomStreams(1))
    assert THIS_FILE in str(info.value)  # the user's line


def _symbolic_cases():
    p, n, pv, k = T.dscalar("p"), T.lscalar("n"), T.dmatrix("pv"), T.lscalar("k")
    return [
        ([p], lambda s: s.binomial((3,), p=p), [1.5], r"binomial: p: must lie in \[0, 1\]"),
        ([p], lambda s: s.binomial((3,), n=4, p=p), [-0.5], r"must lie in \[0, 1\], got -0.5"),
        ([n], lambda s: s.binomial((3,), n=n, p=0.5), [-4], "binomial: n: must not be negative"),
        ([pv], lambda s: MRG_RandomStreams(1).multinomial(pvals=pv),
         [np.array([[0.5, 0.5], [0.7, 0.7]])], "each row must sum to 1, got a row summing to 1.4"),
        ([k], lambda s: s.uniform((k, 2)), [-3], "size must not have negative lengths"),
        ([k], lambda s: s.permutation((k,), n=3), [-3], "size must not have negative lengths"),
        ([k], lambda s: s.choice((k,), a=3, replace=False), [4],
         "cannot take 4 samples from 3 items"),
        ([k], lambda s: s.random_integers((3,), low=k, high=2), [5],
         "random_integers: high - low: must not be negative, got -3"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(8))
def test_symbolic_parameters_are_checked_at_run_time(backend, case):
    inputs, build, values, message = _symbolic_cases()[case]
    f = th.function(inputs, build(RandomStreams(1)), backend=backend)
    with pytest.raises(ValueError, match=message) as info:
        f(*values)
    assert THIS_FILE in str(info.value)  # the node was built at the user's line


def test_valid_symbolic_parameters_pass_the_checks():
    p, n = T.dscalar("p"), T.lscalar("n")
    s = RandomStreams(1)
    f = th.function([p, n], [s.binomial((4000,), n=n, p=p), s.binomial((4000,), p=p)],
                    backend="c")
    counts, mask = f(0.25, 8)
    assert abs(counts.mean() - 2.0) < 0.1 and abs(mask.mean() - 0.25) < 0.03
    assert f(0.0, 0)[0].max() == 0 and f(1.0, 3)[0].min() == 3


def test_multinomial_parameters_that_do_not_fit_size_are_named():
    pv = T.dmatrix("pv")
    f = th.function([pv], RandomStreams(1).multinomial((3,), n=2, pvals=pv))
    assert f(np.full((1, 2), 0.5)).shape == (3, 2)
    with pytest.raises(ValueError, match=r"multinomial: n of shape \(\) and pvals of shape "
                                         r"\(2, 2\) do not broadcast to size \(3,\)"):
        f(np.full((2, 2), 0.5))
