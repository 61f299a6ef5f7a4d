"""The loop rewrites (rewrite/scan.py): each gives the same numbers as the loop left alone, and
each moves what it should (checked on the compiled graph): x_t @ W becomes one product before
the loop, W.T one transpose, the BPTT weight sums one product after the loop, h[-1] keeps one
step, and outputs nobody reads are dropped."""

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T
from theanine.compile.mode import get_mode
from theanine.scan_module.op import Scan
from theanine.tensor.linalg import Dot

BACKENDS = ["numpy", "c"]


def compile_both(inputs, outputs, backend, updates=None):
    """(rewritten, left alone): the same function with and without the scan rewrites."""
    fast = theano.function(inputs, outputs, backend=backend, updates=updates)
    plain = theano.function(inputs, outputs, backend=backend, updates=updates,
                            mode=get_mode("FAST_RUN").excluding("scan"))
    return fast, plain


def scans(f) -> list:
    return [n for n in f.maker.fgraph.nodes if isinstance(n.op, Scan)]


def inner_dots(node) -> list:
    return [n for n in node.op.inner_nodes() if isinstance(n.op, Dot)]


def rnn(seed=0, n=7, b=3, k=4, h=5):
    rng = np.random.RandomState(seed)
    x = T.dtensor3("x")
    W = theano.shared(rng.randn(k, h) * 0.3, name="W")
    U = theano.shared(rng.randn(h, h) * 0.3, name="U")
    bias = theano.shared(rng.randn(h) * 0.1, name="b")
    h0 = T.zeros((x.shape[1], h))
    hs, _ = theano.scan(lambda xt, hp: T.tanh(T.dot(xt, W) + T.dot(hp, U) + bias),
                        sequences=x, outputs_info=h0, name="rnn")
    return x, (W, U, bias), hs, rng.randn(n, b, k)


def numpy_rnn(X, W, U, bias):
    h = np.zeros((X.shape[1], W.shape[1]))
    out = []
    for xt in X:
        h = np.tanh(xt @ W + h @ U + bias)
        out.append(h)
    return np.array(out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rnn_forward_moves_the_input_product_out(backend):
    x, params, hs, X = rnn()
    fast, plain = compile_both([x], hs, backend)
    ref = numpy_rnn(X, *(p.get_value() for p in params))
    np.testing.assert_allclose(fast(X), ref, rtol=1e-10)
    np.testing.assert_allclose(plain(X), ref, rtol=1e-10)
    (loop,) = scans(fast)
    assert len(inner_dots(loop)) == 1  # h @ U stays; x_t @ W ran once before the loop
    assert len(inner_dots(scans(plain)[0])) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_bptt_weight_sums_become_one_product(backend):
    x, params, hs, X = rnn(seed=1)
    cost = (hs[-1] ** 2).sum() + (hs ** 2).mean()
    grads = T.grad(cost, list(params))
    fast, plain = compile_both([x], grads, backend)
    for got, want in zip(fast(X), plain(X)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # against finite differences of NumPy's loop for W
    W, U, bias = (p.get_value() for p in params)

    def f(Wv):
        hv = numpy_rnn(X, Wv, U, bias)
        return (hv[-1] ** 2).sum() + (hv ** 2).mean()

    eps, gW = 1e-6, np.zeros_like(W)
    for i in np.ndindex(W.shape):
        d = np.zeros_like(W)
        d[i] = eps
        gW[i] = (f(W + d) - f(W - d)) / (2 * eps)
    np.testing.assert_allclose(fast(X)[0], gW, rtol=1e-6, atol=1e-8)
    back = [n for n in scans(fast) if n.op.name == "grad of rnn"]
    assert len(back) == 1
    # the products with transposed inputs (the weight sums) left the backward loop
    for d in inner_dots(back[0]):
        assert d.inputs[0].owner is None or "Transpose" not in str(d.inputs[0].owner.op)
    plain_back = [n for n in scans(plain) if n.op.name == "grad of rnn"][0]
    assert len(inner_dots(back[0])) < len(inner_dots(plain_back))


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_state_only_keeps_one_step(backend):
    x, params, hs, X = rnn(seed=2)
    last, two = hs[-1], hs[-2:]
    fast, plain = compile_both([x], [last, two], backend)
    ref = numpy_rnn(X, *(p.get_value() for p in params))
    got = fast(X)
    np.testing.assert_allclose(got[0], ref[-1], rtol=1e-10)
    np.testing.assert_allclose(got[1], ref[-2:], rtol=1e-10)
    (loop,) = scans(fast)
    assert loop.op.keep[0] == 2
    assert scans(plain)[0].op.keep[0] is None


def test_whole_trace_read_keeps_every_step():
    x, _, hs, X = rnn(seed=3)
    f, _ = compile_both([x], [hs[-1], hs[0]], "numpy")
    assert scans(f)[0].op.keep[0] is None
    got = f(X)
    np.testing.assert_allclose(got[0], f(X)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_invariant_work_runs_once(backend):
    a = T.dvector("a")
    M = T.dmatrix("M")
    out, _ = theano.scan(lambda s, m: T.dot(m.T, s) + T.exp(m).sum(), outputs_info=a,
                         non_sequences=M, n_steps=4)
    fast, plain = compile_both([a, M], out, backend)
    rng = np.random.RandomState(4)
    av, Mv = rng.randn(3), rng.randn(3, 3) * 0.3
    s, want = av, []
    for _ in range(4):
        s = Mv.T @ s + np.exp(Mv).sum()
        want.append(s)
    np.testing.assert_allclose(fast(av, Mv), np.array(want), rtol=1e-10)
    np.testing.assert_allclose(plain(av, Mv), np.array(want), rtol=1e-10)
    inner = [str(n.op) for n in scans(fast)[0].op.inner_nodes()]
    assert "Transpose" not in inner and not any(o.startswith("Sum") for o in inner), inner


def test_unread_outputs_are_dropped():
    x = T.dvector("x")
    (s, sq), _ = theano.scan(lambda v, acc: [acc + v, v ** 2], sequences=x,
                             outputs_info=[T.constant(0.0), None])
    f, _ = compile_both([x], s, "numpy")
    (loop,) = scans(f)
    assert loop.op.n_nit == 0 and len(loop.outputs) == 1
    np.testing.assert_allclose(f(np.arange(5.0)), np.cumsum(np.arange(5.0)))


def test_sequence_elementwise_with_taps_moves_out():
    x = T.dvector("x")
    out, _ = theano.scan(lambda a, b, acc: acc + T.exp(a) * b, sequences=dict(
        input=x, taps=[0, 2]), outputs_info=T.constant(0.0))
    fast, plain = compile_both([x], out, "numpy")
    xv = np.linspace(-1, 1, 9)
    want = np.cumsum(np.exp(xv[:-2]) * xv[2:])
    np.testing.assert_allclose(fast(xv), want, rtol=1e-12)
    np.testing.assert_allclose(plain(xv), want, rtol=1e-12)
    inner = [str(n.op) for n in scans(fast)[0].op.inner_nodes()]
    assert inner == ["add"], inner


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_of_a_loop_that_runs_no_step(backend):
    """No step: zero gradients (with and without the rewrites), and the backward loop's
    outputs not fed back take their shapes from a probe of the step."""
    x, params, hs, _ = rnn(seed=5)
    cost = (hs ** 2).sum() + (hs[-1:] ** 2).sum()
    fast, plain = compile_both([x], T.grad(cost, list(params)), backend)
    for f in (fast, plain):
        got = f(np.zeros((0, 3, 4)))
        for g, p in zip(got, params):
            assert g.shape == p.get_value().shape and not g.any()
