"""function() semantics beyond the basics in test_compile.py: input conversion of NaN, static
shapes kept by updates and givens, memory ownership of returned and stored arrays, givens next
to other free variables, input defaults and names, and run-time errors that point at the
user's line."""

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.graph.basic import Apply, Op, located

# -- conversion of call-time values ---------------------------------------------------------


def test_nan_is_rejected_by_integer_inputs_and_shared_variables():
    iv = T.ivector("iv")
    f = th.function([iv], iv + 0)
    with pytest.raises(TypeError, match=r"input 0 \('iv'\): expected dtype int32"):
        f([np.nan])
    with pytest.raises(TypeError, match="expected dtype int32"):
        f(np.array([1.0, np.nan]))
    np.testing.assert_array_equal(f([1.0, 2.0]), [1, 2])  # exact floats still convert
    s = th.shared(np.zeros(2, dtype=np.int64), name="s")
    with pytest.raises(TypeError, match="expected dtype int64"):
        s.set_value([np.nan, 2.0])
    np.testing.assert_array_equal(s.get_value(), [0, 0])


def test_nan_still_converts_between_float_dtypes():
    x = T.fvector("x")
    out = th.function([x], x * 1)(np.array([np.nan, 1.5]))  # float64 NaN -> float32 NaN
    assert out.dtype == np.float32 and np.isnan(out[0]) and out[1] == 1.5


# -- static shapes survive updates and givens -------------------------------------------------


def test_an_update_cannot_break_the_static_shape_of_a_shared_variable():
    s = th.shared(np.zeros((1, 3)), broadcastable=(True, False), name="s")
    m = T.dmatrix("m")
    f = th.function([m], [], updates=[(s, m)])
    f(np.ones((1, 3)))
    np.testing.assert_array_equal(s.get_value(), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"has shape \(2, 3\), expected \(1, \?\)"):
        f(np.ones((2, 3)))
    assert s.get_value().shape == (1, 3)


def test_givens_cannot_widen_a_static_shape():
    x = T.dvector("x")
    v3 = T.tensor("float64", shape=(3,), name="v3")
    f = th.function([x], (v3 * 2).sum(), givens={v3: x})
    assert f(np.ones(3)) == 6
    with pytest.raises(ValueError, match=r"has shape \(5,\), expected \(3,\)"):
        f(np.ones(5))


# -- returned and stored arrays own their memory ------------------------------------------------


def test_an_output_does_not_alias_an_update_that_views_it():
    x = T.dvector("x")
    s = th.shared(np.zeros(3), name="s")
    z = x * 3
    f = th.function([x], z, updates=[(s, z[::-1])])
    out = f(np.array([1.0, 2.0, 3.0]))
    out[...] = -7
    np.testing.assert_array_equal(s.get_value(), [9.0, 6.0, 3.0])


def test_outputs_do_not_alias_each_other():
    x = T.dvector("x")
    y = x * 2
    a, b = th.function([x], [y, y[1:]])(np.arange(3.0))
    a[...] = 100
    np.testing.assert_array_equal(b, [2.0, 4.0])
    a, b = th.function([x], [y, y])(np.arange(3.0))
    assert not np.shares_memory(a, b)


def test_two_updates_with_one_value_get_separate_buffers():
    x = T.dvector("x")
    s1, s2 = th.shared(np.zeros(3), name="s1"), th.shared(np.zeros(3), name="s2")
    z = x * 3
    for value2 in (z, z[::-1]):
        th.function([x], [], updates=[(s1, z), (s2, value2)])(np.ones(3))
        s1.get_value(borrow=True)[0] = 55
        np.testing.assert_array_equal(s2.get_value(), [3.0, 3.0, 3.0])


def test_views_of_inputs_and_shared_values_are_copied():
    x = T.dvector("x")
    s = th.shared(np.zeros(4), name="s")
    xv = np.arange(4.0)
    outs = th.function([x], [x, x[1:], x.reshape((2, 2)), s, s[::2]])(xv)
    for o in outs:
        o[...] = -1
    np.testing.assert_array_equal(xv, np.arange(4.0))
    np.testing.assert_array_equal(s.get_value(), np.zeros(4))


# -- givens next to other free variables -----------------------------------------------------


def test_givens_keep_the_other_inputs_and_shared_variables():
    x, y = T.dvector("x"), T.dvector("y")
    f = th.function([x], x + y, givens={y: x * 2})
    np.testing.assert_array_equal(f(np.array([1.0, 2.0])), [3.0, 6.0])
    s = th.shared(np.arange(6.0), name="s")
    i = T.lscalar("i")
    g = th.function([i], (x ** 2).sum(), givens={x: s[i:i + 2]})
    assert g(1) == 1.0 + 4.0


def test_minibatch_sgd_with_givens_matches_numpy():
    """The Theano tutorial pattern: data in shared variables, a minibatch index as the only
    input, the batch substituted with givens, the weights updated by SGD."""
    rng = np.random.default_rng(0)
    xdata, ydata = rng.normal(size=(12, 3)), rng.normal(size=12)
    X, Y = th.shared(xdata, name="X"), th.shared(ydata, name="Y")
    W = th.shared(np.zeros(3), name="W")
    x, y, index = T.dmatrix("x"), T.dvector("y"), T.lscalar("index")
    bs, lr = 4, 0.1
    cost = ((T.dot(x, W) - y) ** 2).mean()
    train = th.function([index], cost, updates=[(W, W - lr * T.grad(cost, W))],
                        givens={x: X[index * bs:(index + 1) * bs],
                                y: Y[index * bs:(index + 1) * bs]})
    w = np.zeros(3)
    for _ in range(2):  # two epochs
        for k in range(3):
            xb, yb = xdata[k * bs:(k + 1) * bs], ydata[k * bs:(k + 1) * bs]
            expected_cost = ((xb @ w - yb) ** 2).mean()
            w = w - lr * 2 * xb.T @ (xb @ w - yb) / bs
            np.testing.assert_allclose(train(k), expected_cost, rtol=1e-12)
    np.testing.assert_allclose(W.get_value(), w, rtol=1e-12)


# -- input defaults and names ----------------------------------------------------------------


def test_in_default_is_copied_and_checked_when_compiling():
    v = T.dvector("v")
    d = np.zeros(2)
    g = th.function([th.In(v, value=d)], v + 1)
    d[0] = 9
    np.testing.assert_array_equal(g(), [1.0, 1.0])
    with pytest.raises(TypeError, match=r"default value of input 0 \('v'\)"):
        th.function([th.In(v, value="abc")], v + 1)
    with pytest.raises(TypeError, match=r"default value of input 0 \('v'\): expected a 1-d"):
        th.function([th.In(v, value=1.0)], v + 1)


def test_two_inputs_with_one_name_are_rejected():
    a1, a2 = T.dscalar("a"), T.dscalar("a")
    with pytest.raises(ValueError, match="inputs 0 and 1 are both named 'a'"):
        th.function([a1, a2], a1 + a2)
    f = th.function([a1, th.In(a2, name="b")], a1 - a2)
    assert f(a=3.0, b=1.0) == 2.0


# -- run-time errors point at the user's line ----------------------------------------------


def test_runtime_error_names_the_node_and_the_users_line():
    x, y = T.dvector("x"), T.dvector("y")
    expr = (x + y) * 2  # the line the error must show
    f = th.function([x, y], expr, backend="numpy")  # bare NumPy errors, located by function()
    with pytest.raises(ValueError, match=r"(?s)broadcast.*Apply node that caused the error: "
                                         r"add\(input 0 \('x'\) \(shape \(3,\), dtype float64\), "
                                         r"input 1 \('y'\) \(shape \(4,\).*"
                                         r"test_function_semantics.py.*expr = \(x \+ y\) \* 2"):
        f(np.ones(3), np.ones(4))
    np.testing.assert_array_equal(f(np.ones(3), np.ones(3)), [4.0, 4.0, 4.0])
    g = th.function([x, y], expr)  # the default backend: located by it or by function()
    with pytest.raises(ValueError) as info:
        g(np.ones(3), np.ones(4))
    message = str(info.value)
    assert "expr = (x + y) * 2" in message and message.lower().count("built at:") == 1


@pytest.mark.parametrize("backend", ["numpy", "c", "opencl"])
def test_broadcast_errors_name_the_users_inputs_and_shapes(backend):
    ok, why = backends()[backend].available()
    if not ok:
        pytest.skip(f"backend {backend!r} is not available: {why}")
    a, b = T.dmatrix("a"), T.dvector()  # b has no name: it is input 1
    w = th.shared(np.ones(3), name="w")
    expr = T.exp(a * b) + w  # the failing line
    f = th.function([a, b], expr, backend=backend)
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones(4))
    message = str(info.value)
    assert "Inputs involved: input 0 ('a') with shape (2, 3), input 1 with shape (4,)\n" \
        in message
    assert "a value computed from input 1 (shape (1, 4)" in message
    assert "expr = T.exp(a * b) + w  # the failing line" in message
    for internal in (".0 (shape", "DimShuffle", "step", "TensorType"):
        assert internal not in message
    with pytest.raises(ValueError, match=r"(?s)add\(a value computed from input 0 \('a'\) and "
                                         r"input 1 \(shape \(2, 4\), dtype float64\), a value "
                                         r"computed from shared variable 'w' \(shape \(1, 3\).*"
                                         r"Inputs involved: input 0 \('a'\) with shape \(2, 4\), "
                                         r"input 1 with shape \(4,\), shared variable 'w' with "
                                         r"shape \(3,\)\n"):
        f(np.ones((2, 4)), np.ones(4))  # a * b works; adding w fails


def test_a_backend_error_the_reference_does_not_repeat_names_the_call_inputs():
    x = T.dvector("x")
    f = th.function([x, T.dscalar()], x * 2, backend="numpy", on_unused_input="ignore")
    backend_error = ValueError("shapes ((3,),) cannot be broadcast together (step 1)")
    located = f._locate_error(backend_error, (np.ones(3), np.array(1.0)))
    assert str(located) == ("shapes ((3,),) cannot be broadcast together (step 1)\n"
                            "The call's inputs: input 0 ('x') with shape (3,), input 1 with "
                            "shape ()")


def test_input_errors_and_located_errors_are_not_wrapped_again():
    x = T.dvector("x")
    f = th.function([x], x * 2)
    with pytest.raises(TypeError) as info:
        f(np.ones((2, 2)))
    assert "Apply node" not in str(info.value)

    class Located(Op):
        def make_node(self, v):
            return Apply(self, [v], [v.type()])

        def perform(self, node, inputs):
            raise located(ValueError("Located failed.\nThe node was built at: somewhere"))

    g = th.function([x], Located()(x))
    with pytest.raises(ValueError) as info:
        g(np.ones(2))
    assert str(info.value) == "Located failed.\nThe node was built at: somewhere"
