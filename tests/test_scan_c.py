"""Loops on the C backend: th_scan runs the inner graph, rendered into the same C program, once
per step. Every program's values and gradients equal the NumPy reference's (with and without
the loop rewrites); the errors are the reference's; and loop bodies of RNNs and their BPTT
call no Python (`loop_host_nodes` is empty)."""

import re
import sys

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T
from theanine.compile.mode import get_mode
from theanine.scan_module import until

MODES = {"rewritten": None, "plain": "plain"}


def both(inputs, outputs, mode=None, updates=None):
    """(c, numpy): the graph compiled on each backend."""
    m = get_mode("FAST_RUN").excluding("scan") if mode == "plain" else None
    return [theano.function(inputs, outputs, backend=b, mode=m, updates=updates)
            for b in ("c", "numpy")]


def check_same(inputs, outputs, *values, rtol=1e-12, mode=None):
    fc, fn = both(inputs, outputs, mode)
    assert "th_scan(" in fc._run.source  # the loop runs in C
    got, want = fc(*values), fn(*values)
    for g, w in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)
    return fc


def taps_program():
    x, h0 = T.dvector("x"), T.dvector("h0")
    out, _ = theano.scan(lambda a, b, c, s2, s1: s1 * 0.5 + s2 * 0.25 + a * b - c,
                         sequences=dict(input=x, taps=[-2, 0, 1]),
                         outputs_info=dict(initial=h0, taps=[-3, -1]))
    return [x, h0], out, (np.linspace(-1, 1, 9), np.array([0.3, -0.2, 0.1]))


def states_and_outputs_program():
    x = T.dmatrix("x")
    W = T.dmatrix("W")

    def step(xt, h, c, W):
        c2 = T.tanh(T.dot(xt, W) + c)
        h2 = h * 0.9 + c2
        return h2, c2, (h2 ** 2).sum()

    (hs, cs, norms), _ = theano.scan(step, sequences=x, non_sequences=W,
                                     outputs_info=[T.zeros(3), T.zeros(3), None])
    rng = np.random.RandomState(1)
    return [x, W], [hs, cs, norms], (rng.randn(6, 4), rng.randn(4, 3) * 0.5)


def backwards_program():
    x = T.dvector("x")
    out, _ = theano.scan(lambda a, s: s * 0.8 + a, sequences=x, outputs_info=T.constant(0.0),
                         go_backwards=True)
    return [x], out, (np.arange(7.0),)


def nested_program():
    x = T.dmatrix("x")

    def row_cumsum(row):
        inner, _ = theano.scan(lambda v, acc: acc + v, sequences=row,
                               outputs_info=T.constant(0.0))
        return inner

    out, _ = theano.scan(row_cumsum, sequences=x)
    return [x], out, (np.arange(12.0).reshape(3, 4),)


def slicing_program():
    """An LSTM-style body: column slices of one product, masks with new axes."""
    x, m = T.dtensor3("x"), T.dmatrix("m")
    U = T.dmatrix("U")

    def step(m_, x_, h_, c_):
        pre = T.dot(h_, U) + x_
        i, f = T.nnet.sigmoid(pre[:, :2]), T.nnet.sigmoid(pre[:, 2:4])
        c = f * c_ + i * T.tanh(pre[:, 4:6])
        c = m_[:, None] * c + (1.0 - m_)[:, None] * c_
        h = T.tanh(c) * m_[:, None]
        return h, c

    zeros = T.alloc(0.0, x.shape[1], 2)
    (hs, cs), _ = theano.scan(step, sequences=[m, x], outputs_info=[zeros, zeros])
    rng = np.random.RandomState(2)
    mask = (rng.rand(5, 3) > 0.3).astype(float)
    return [x, m, U], [hs, cs], (rng.randn(5, 3, 6), mask, rng.randn(2, 6) * 0.5)


PROGRAMS = [taps_program, states_and_outputs_program, backwards_program, nested_program,
            slicing_program]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_values_and_gradients_match_the_reference(program, mode):
    inputs, outputs, values = program()
    outs = outputs if isinstance(outputs, list) else [outputs]
    check_same(inputs, outs, *values, mode=MODES[mode])
    cost = sum((o ** 2).sum() for o in outs if o.dtype.startswith("float"))
    floats = [v for v in inputs if v.dtype.startswith("float")]
    check_same(inputs, T.grad(cost, floats), *values, rtol=1e-10, mode=MODES[mode])


def test_until_stops_the_loop():
    x = T.dscalar("x")
    out, _ = theano.scan(lambda s: (s * 2, until(s * 2 > x)), outputs_info=T.constant(1.0),
                         n_steps=50)
    fc = check_same([x], out, 100.0)
    np.testing.assert_allclose(fc(100.0), [2, 4, 8, 16, 32, 64, 128])


def test_last_steps_kept_in_a_ring():
    x = T.dvector("x")
    out, _ = theano.scan(lambda a, s2, s1: s1 + s2 * 0.5 + a, sequences=x,
                         outputs_info=dict(initial=T.constant(np.array([1.0, 2.0])),
                                           taps=[-2, -1]))
    fc = check_same([x], [out[-1], out[-3:]], np.linspace(0, 1, 11))
    (loop,) = [n for n in fc.maker.fgraph.nodes if "Scan" in str(n.op)]
    assert loop.op.keep == (3,)
    # fewer steps than kept entries: the ring holds them all
    check_same([x], [out[-1], out[-3:]], np.array([0.5, 0.25]))


def test_no_step_and_float32():
    x = T.fmatrix("x")
    out, _ = theano.scan(lambda a, s: s + T.exp(a), sequences=x,
                         outputs_info=T.zeros(3, dtype="float32"))
    check_same([x], out, np.zeros((0, 3), "float32"))
    fc = check_same([x], [out, T.grad(out.sum(), x)], np.ones((4, 3), "float32"), rtol=1e-6)
    assert fc(np.ones((4, 3), "float32"))[0].dtype == np.float32


ERRORS = [
    (lambda x: theano.scan(lambda a, b: a + b, sequences=dict(input=x, taps=[0, 5]),
                           name="taps")[0], (np.ones(3),),
     "scan 'taps': n_steps must be >= 0, got -2"),
    (lambda x: theano.scan(lambda a: a, sequences=x, n_steps=5, name="short")[0],
     (np.ones(3),), "scan 'short': sequence 0 has 3 entries but 5 steps"),
    (lambda x: theano.scan(lambda s: T.concatenate([s, s]), outputs_info=x, n_steps=2,
                           name="grows")[0], (np.ones(2),),
     "scan 'grows': state 0 has shape (2,) (its initial state's) but the step function "
     "returned shape (4,) at step 0"),
]


@pytest.mark.parametrize("build, values, message", ERRORS)
def test_errors_are_the_references(build, values, message):
    x = T.dvector("x")
    out = build(x)
    for f in both([x], out):
        with pytest.raises(ValueError, match=re.escape(message)):
            f(*values)


def rnn_training_step():
    rng = np.random.RandomState(3)
    x, y = T.ftensor3("x"), T.ftensor3("y")
    params = [theano.shared((rng.randn(*s) * 0.3).astype("float32"), name=n)
              for n, s in (("W", (4, 5)), ("U", (5, 5)), ("b", (5,)))]
    W, U, b = params
    hs, _ = theano.scan(lambda xt, hp: T.tanh(T.dot(xt, W) + T.dot(hp, U) + b), sequences=x,
                        outputs_info=T.zeros((x.shape[1], 5), dtype="float32"), name="rnn")
    cost = ((hs - y) ** 2).mean()
    grads = T.grad(cost, params)
    values = (rng.randn(8, 3, 4).astype("float32"), rng.randn(8, 3, 5).astype("float32"))
    return [x, y], cost, params, grads, values


def test_rnn_training_step_matches_and_calls_no_python_per_step():
    inputs, cost, params, grads, values = rnn_training_step()
    start = [p.get_value() for p in params]
    results = []
    for backend in ("c", "numpy"):
        for p, v in zip(params, start):
            p.set_value(v)
        f = theano.function(inputs, cost, backend=backend,
                            updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])
        results.append([f(*values)] + [p.get_value() for p in params])
        if backend == "c":
            assert f._run.loop_host_nodes == []
            loops = [n for n in f.maker.fgraph.nodes if "Scan" in str(n.op)]
            assert len(loops) == 2  # the forward loop and BPTT's
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_lstm_body_calls_no_python_per_step():
    inputs, outputs, values = slicing_program()
    cost = sum((o ** 2).sum() for o in outputs)
    f = theano.function(inputs, T.grad(cost, [inputs[0], inputs[2]]), backend="c")
    assert f._run.loop_host_nodes == []


def python_calls(f, *values) -> int:
    """How many Python functions run during one call of `f`."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += event == "call"

    sys.setprofile(profile)
    try:
        f(*values)
    finally:
        sys.setprofile(None)
    return count


def test_rnn_training_step_calls_python_a_fixed_number_of_times():
    """No Python runs per step, not even a fallback the C entries take at run time (the bias
    gradient's sum over the batch): a loop of 32 steps calls Python as often as one of 4."""
    inputs, cost, params, grads, values = rnn_training_step()
    f = theano.function(inputs, cost, backend="c",
                        updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])
    rng = np.random.RandomState(0)
    short, long = ([rng.randn(n, 3, k).astype("float32") for k in (4, 5)] for n in (4, 32))
    f(*short)
    assert python_calls(f, *short) == python_calls(f, *long)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("g_shape,x_shape", [((5,), ()), ((4, 3), (1, 3)), ((4, 3), (4, 1)),
                                              ((2, 4, 3), (4, 3)), ((2, 4, 3), (1, 3)),
                                              ((4, 3), (4, 3))])
def test_sum_to_shape_of_matches_numpy(dtype, g_shape, x_shape):
    """The C sum over one broadcast axis (and the NumPy fallback for several) give NumPy's
    sum, 0-d results included."""
    from theanine.tensor.elemwise import SumToShapeOf

    g = T.TensorType(dtype, (None,) * len(g_shape))("g")
    x = T.TensorType(dtype, (None,) * len(x_shape))("x")
    f = theano.function([g, x], SumToShapeOf()(g, x), backend="c")
    gv = np.random.RandomState(1).randn(*g_shape).astype(dtype)
    lead = len(g_shape) - len(x_shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(x_shape)
                                      if s == 1 and g_shape[lead + i] != 1)
    want = gv.sum(axis=axes, keepdims=True).reshape(x_shape) if axes else gv
    got = f(gv, np.zeros(x_shape, dtype))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6)
