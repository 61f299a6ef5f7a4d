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
    assert new_accumulator(100) == [0]  # a list, as Theano's copies return
    assert new_state.get_value() == 100 and state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    null_accumulator(9000)
    assert state.get_value() == 10
    private = accumulator.copy()  # copies of the shared values: the original is untouched
    assert private(5) == [10] and private(5) == [15] and state.get_value() == 10
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


def test_monitor_mode_calls_the_users_functions_around_each_node(capsys):
    """The debugging FAQ's inspect_inputs / inspect_outputs and detect_nan examples."""

    def inspect_inputs(i, node, fn):
        print(i, node, "input(s) value(s):", [input[0] for input in fn.inputs], end="")

    def inspect_outputs(i, node, fn):
        print(" output(s) value(s):", [output[0] for output in fn.outputs])

    x = T.dscalar("x")
    mode = theano.compile.MonitorMode(pre_func=inspect_inputs, post_func=inspect_outputs)
    f = theano.function([x], [5 * x], mode=mode)
    assert f(3) == [15.0]
    assert capsys.readouterr().out == ("0 mul(5.0, x) input(s) value(s): [array(5.), array(3.)] "
                                       "output(s) value(s): [array(15.)]\n")
    found = []

    def detect_nan(i, node, fn):
        for output in fn.outputs:
            if np.isnan(output[0]).any():
                theano.printing.debugprint(node)
                found.append(([input[0] for input in fn.inputs], output[0]))
                break

    g = theano.function([x], [T.log(x) * x], mode=theano.compile.MonitorMode(post_func=detect_nan))
    with np.errstate(all="ignore"):
        g(0)
    (inputs, output), = found
    assert inputs[0] == -np.inf and inputs[1] == 0 and np.isnan(output)
    assert capsys.readouterr().out.splitlines()[0] == "mul [id A]"


def test_nan_guard_mode_names_the_node_and_line():
    x = T.dscalar("x")
    f = theano.function([x], T.log(x) * x, mode=theano.compile.NanGuardMode())
    assert f(2.0) == pytest.approx(2 * np.log(2))
    with np.errstate(all="ignore"), pytest.raises(AssertionError,
                                                  match="(?s)Inf in an output .*log.*test_theano"):
        f(0.0)
    big = theano.function([x], x * 1e12, mode=theano.compile.NanGuardMode(inf_is_error=False))
    with pytest.raises(AssertionError, match="above 1e\\+10"):
        big(1.0)
    quiet = theano.compile.NanGuardMode(nan_is_error=False, inf_is_error=False,
                                        big_is_error=False)
    with np.errstate(all="ignore"):
        assert np.isnan(theano.function([x], T.log(x) * x, mode=quiet)(0.0))


@pytest.fixture
def test_values():
    """Set config.compute_test_value for one test."""
    old = theano.config.compute_test_value
    yield lambda mode: setattr(theano.config, "compute_test_value", mode)
    theano.config.compute_test_value = old


def test_test_values_catch_a_shape_error_where_the_graph_is_built(test_values):
    """The debugging FAQ's example: the dot with the wrong shapes fails at its own line."""
    test_values("warn")
    W1 = theano.shared(np.random.rand(2, 10, 10), "W1")
    x = T.dmatrix("x")
    x.tag.test_value = np.random.rand(5, 10)
    func_of_W1 = W1.dimshuffle(2, 0, 1).flatten(2).T
    assert func_of_W1.tag.test_value.shape == (20, 10)
    with pytest.raises(ValueError, match="(?s)not aligned.*test_theano_api.py"):
        T.dot(x, func_of_W1)
    y = T.dmatrix("y")
    with pytest.warns(UserWarning, match="input 0 \\(y\\) has no test value"):
        y * 2
    test_values("raise")
    with pytest.raises(ValueError, match="has no test value"):
        y * 2
    test_values("ignore")
    assert "test_value" not in (y * 2).tag
    test_values("off")
    assert "test_value" not in (x * 2).tag


def test_sigmoid_binary_crossentropy_and_theanos_module_names(capsys):
    from theanine.compile.monitormode import MonitorMode, detect_nan
    from theanine.compile.nanguardmode import NanGuardMode

    x, y = T.dvectors("x", "y")
    f = theano.function([x, y], T.nnet.sigmoid_binary_crossentropy(x, y))
    xv, yv = np.array([-50.0, 0.0, 3.0, 800.0]), np.array([0.2, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(f(xv, yv), yv * np.logaddexp(0, -xv) +
                               (1 - yv) * np.logaddexp(0, xv))
    assert NanGuardMode is theano.compile.NanGuardMode
    g = theano.function([x], T.log(x) * x, mode=MonitorMode(post_func=detect_nan))
    with np.errstate(all="ignore"):
        g(np.array([0.0, 1.0]))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "*** NaN detected ***" and out[1] == "mul [id A]"
    assert out[-1].replace(" ", "").startswith("Outputs:[array([nan,")


def test_debug_mode_class():
    from theanine.compile.debugmode import DebugMode, DebugModeError

    x = T.dscalar("x")
    f = theano.function([x], 10 * x, mode=DebugMode(check_c_code=False))
    assert f(5) == 50 and f.mode.debug
    g = theano.function([x], T.log(x), mode=DebugMode())
    with np.errstate(all="ignore"), pytest.raises(DebugModeError, match="Inf"):
        g(0.0)


def test_inputs_with_state_values_and_containers():
    """The library page on function inputs: In(update=...), fn[key], fn.value, fn.container
    and Theano's tuple shortcuts."""
    from theanine.compile.io import In

    u, x, s = T.dscalars("u", "x", "s")
    inc = theano.function([u, In(x, value=3), In(s, update=(s + x * u), value=10.0)], [])
    assert inc(5) == []
    assert inc[s] == 25.0
    inc(3, 4)  # x = 4 for this call only
    assert inc[s] == 37.0 and inc[x] == 3.0
    inc(3, 4, 7)  # s given: 7 + 3 * 4
    assert inc[s] == 19.0
    inc[s] = 10
    assert inc[s] == 10.0 and inc[s].dtype == np.float64
    a, b, c = T.dscalars("xys")
    fn = theano.function([a, b, ((c, c + a + b), 10.0)], [])
    assert fn["s"] is fn.value[c] and fn["s"] is fn.container[c].value
    fn(1, 2)
    assert fn["s"] == 13.0
    fn["s"] = 99.0
    fn(1, 0)
    assert fn["s"] == 100.0
    fn.value[c] = 99.0
    fn(1, 0)
    assert fn["s"] == 100.0 == fn.container[2].value
    x, y, z, w = T.dscalar(), T.dscalar("y"), T.dscalar("z"), T.dscalar("w")
    f = theano.function(inputs=[x, y, In(z, value=42), ((w, w + x), 0)], outputs=x + y + z)
    assert f(1, 2) == 45.0 and f(1, y=2) == 45.0 and f(1, 2, 3) == 6.0
    assert f(1, z=3, y=2) == 6.0 and f(1, 2, w=400) == 45.0 and f["w"] == 401
    with pytest.raises(TypeError, match="missing input 1 \\('y'\\)"):
        f(1)
    with pytest.raises(TypeError, match="needs its initial value"):
        In(s, update=s + 1)
    with pytest.raises(KeyError, match="has no input 'nope'"):
        f["nope"]


def test_a_copy_can_be_profiled():
    state = theano.shared(0)
    inc = T.iscalar("inc")
    f = theano.function([inc], state, updates=[(state, state + inc)])
    g = f.copy(profile=True)
    g(2)
    g(3)
    assert g.profile.fct_callcount == 2 and state.get_value() == 0  # the copy's own state
