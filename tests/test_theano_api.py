"""Theano's smaller API, as its tutorial and library docs use it (with the numbers they print):
join/stack/stacklists, mgrid/ogrid, Function.copy, Out, FunctionGraph.toposort, the typed
constructors being types, and TensorType's broadcastable form."""

import warnings

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T


def test_copying_functions_as_the_tutorial_does():
    state = theano.shared(0)
    inc = T.iscalar("inc")
    accumulator = theano.function([inc], state, updates=[(state, state + inc)])
    accumulator(10)
    assert state.get_value() == 10
    new_state = theano.shared(0)
    new_accumulator = accumulator.copy(swap={state: new_state})
    new_accumulator(100)
    assert new_state.get_value() == 100 and state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    null_accumulator(9000)
    assert state.get_value() == 10
    private = accumulator.copy()  # copies of the shared values: the original is untouched
    assert private(5) == 10 and private(5) == 15 and state.get_value() == 10
    shared_copy = accumulator.copy(share_memory=True)
    shared_copy(5)
    assert state.get_value() == 15
    with pytest.raises(TypeError, match="swap must map shared variables"):
        accumulator.copy(swap={state: theano.shared(0.5)})


def test_join_stack_and_stacklists():
    a, b, c, d = T.matrices("abcd")
    X = T.stacklists([[a, b], [c, d]])
    f = theano.function([a, b, c, d], X)
    x = np.ones((4, 4), "float32")
    assert f(x, x, x, x).shape == (2, 2, 4, 4)
    s1, s2, s3 = T.scalars(3)
    with pytest.warns(DeprecationWarning, match="stack"):
        v = T.stack(s1, s2, s3)
    assert v.ndim == 1
    t = [T.tensor4() for _ in range(3)]
    zeros = {k: np.zeros((2, 2, 2, 2), theano.config.floatX) for k in t}
    assert T.stack(t).eval(zeros).shape == (3, 2, 2, 2, 2)
    assert T.stack(t, axis=3).eval(zeros).shape == (2, 2, 2, 3, 2)
    assert T.stack(t, -2).eval(zeros).shape == (2, 2, 2, 3, 2)
    assert callable(T.join)  # the function, not the submodule theanine.tensor.join
    j = T.join(1, a, b)
    out = j.eval({a: np.ones((2, 1), a.dtype), b: np.zeros((2, 3), b.dtype)})
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [1, 0, 0, 0]])


def test_mgrid_and_ogrid_match_numpy():
    a = T.mgrid[0:5, 0:3]
    np.testing.assert_array_equal(a[0].eval(), np.mgrid[0:5, 0:3][0])
    np.testing.assert_array_equal(a[1].eval(), np.mgrid[0:5, 0:3][1])
    b = T.ogrid[0:5, 0:3]
    np.testing.assert_array_equal(b[0].eval(), np.ogrid[0:5, 0:3][0])
    np.testing.assert_array_equal(b[1].eval(), np.ogrid[0:5, 0:3][1])
    n = T.iscalar("n")
    f = theano.function([n], T.mgrid[1:n:2, 0:2])
    for got, want in zip(f(6), np.mgrid[1:6:2, 0:2]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(Exception, match="slice start:stop"):
        T.mgrid[0:5, 3]


def test_out_toposort_and_types():
    x = T.dscalar("x")
    assert x.type is T.dscalar  # as the tutorial shows
    f = theano.function([x], theano.Out(x * 2, borrow=True))
    assert f(3.0) == 6.0
    assert [str(n.op) for n in f.maker.fgraph.toposort()] == ["mul"]
    assert T.TensorType("float64", (False, True)).shape == (None, 1)
    assert T.TensorType("float64", (False, False))("m").type == T.dmatrix
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert T.TensorType("int8", (2, 3)).shape == (2, 3)
