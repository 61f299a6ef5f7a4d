"""ifelse edge cases on every backend: results that share memory (a constant, one value twice,
a view of an input) come back as new writable arrays; nodes both branches share; laziness
kept inside loops (the loop rewrites do not hoist a branch's work) and nested; pickling and
DebugMode; gradients that skip the untaken branch; second derivatives; many ifelses compile
in linear time."""

import gc
import pickle
import time

import numpy as np
import pytest
from test_ifelse import BACKENDS, explode

import theanine as theano
import theanine.tensor as T
from theanine.compile.mode import Mode
from theanine.ifelse import ifelse


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_sharing_memory_come_back_as_new_arrays(backend):
    c, x = T.iscalar("c"), T.dvector("x")
    e = T.exp(x)
    outs = ifelse(c, [e, e, T.constant(np.zeros(3))], [x[::-1], x, x])
    f = theano.function([c, x], outs, backend=backend)
    xv = np.array([0.0, 1.0, 2.0])
    for cv in (0, 1):
        got = f(cv, xv)
        for r in got:
            r[:] = -7.0  # writable, and no other result nor the input changes with it
        got = f(cv, xv)
        want = [np.exp(xv), np.exp(xv), np.zeros(3)] if cv else [xv[::-1], xv, xv]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w)
        got[0][:] = 5.0
        np.testing.assert_allclose(got[1], want[1])
    np.testing.assert_allclose(xv, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_node_both_branches_read_runs_once_outside(backend):
    a, b, x = T.dscalar("a"), T.dscalar("b"), T.dvector("x")
    s = T.exp(x).sum()
    inner = ifelse(T.gt(b, 0), s, explode(x).sum())
    outer = ifelse(T.gt(a, 0), inner * 10, s + 1)
    f = theano.function([a, b, x], outer, backend=backend)
    np.testing.assert_allclose(f(1.0, 1.0, np.zeros(3)), 30.0)
    np.testing.assert_allclose(f(-1.0, -1.0, np.zeros(3)), 4.0)
    with pytest.raises(RuntimeError, match="not chosen ran"):
        f(1.0, -1.0, np.zeros(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_rewrites_leave_a_branch_lazy(backend):
    """x[i] reads only non-sequences: hoisting it out of the loop would run it eagerly."""
    x, i = T.dvector("x"), T.iscalar("i")
    out, _ = theano.scan(lambda v: ifelse(T.lt(i, x.shape[0]), x[i] + v, v * 0),
                         sequences=x)
    f = theano.function([x, i], out, backend=backend)
    xv = np.arange(3.0)
    np.testing.assert_allclose(f(xv, 1), xv + 1.0)
    np.testing.assert_allclose(f(xv, 10), np.zeros(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ifelse_in_a_scan_step_is_lazy_and_a_scan_in_a_branch_runs(backend):
    x, c = T.dvector("x"), T.iscalar("c")
    out, _ = theano.scan(lambda v, acc: ifelse(T.ge(v, 0), acc + v, explode(acc).sum() + acc),
                         sequences=x, outputs_info=T.constant(0.0))
    cumsum, _ = theano.scan(lambda v, acc: acc + v, sequences=x, outputs_info=T.constant(0.0))
    f = theano.function([x], out, backend=backend)
    g = theano.function([c, x], ifelse(c, cumsum, -x), backend=backend)
    xv = np.arange(4.0)
    np.testing.assert_allclose(f(xv), np.cumsum(xv))
    np.testing.assert_allclose(g(1, xv), np.cumsum(xv))
    np.testing.assert_allclose(g(0, xv), -xv)
    with pytest.raises(RuntimeError, match="not chosen ran"):
        f(np.array([1.0, -1.0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pickled_functions_with_ifelse_run(backend):
    c, x = T.iscalar("c"), T.dvector("x")
    nested = ifelse(c, ifelse(T.gt(c, 1), x.sum(), x.prod()) * 2, x.max())
    loop, _ = theano.scan(lambda v, acc: ifelse(T.ge(v, 0), acc + v, acc * 2), sequences=x,
                          outputs_info=T.constant(1.0))
    f = theano.function([c, x], [nested, loop], backend=backend)
    xv = np.array([1.0, -1.0, 2.0])
    before = [f(cv, xv) for cv in (0, 1, 2)]
    g = pickle.loads(pickle.dumps(f))
    for cv, want in zip((0, 1, 2), before):
        for got, w in zip(g(cv, xv), want):
            np.testing.assert_allclose(got, w)
    np.testing.assert_allclose(before[1][0], -4.0)  # prod, doubled
    np.testing.assert_allclose(before[2][0], 4.0)  # sum, doubled
    np.testing.assert_allclose(before[0][1], [2.0, 4.0, 6.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_debug_mode_checks_ifelse_and_its_gradient(backend):
    c, x = T.iscalar("c"), T.dvector("x")
    z = ifelse(c, x.sum() * 2, x.prod())
    lazy = ifelse(c, T.sum(x), explode(x).sum())
    f = theano.function([c, x], [z, T.grad(z, x), lazy], mode=Mode(debug=True),
                        backend=backend)
    xv = np.arange(1.0, 4.0)
    got = f(1, xv)
    np.testing.assert_allclose(got[0], 12.0)
    np.testing.assert_allclose(got[1], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(got[2], 6.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_through_ifelse(backend):
    """T.hessian builds a scan over the gradient: an ifelse's gradient inside a loop."""
    a, x = T.dscalar("a"), T.dvector("x")
    z = ifelse(T.gt(a, 0), (x ** 3).sum(), (T.sin(x) * x).sum())
    h = theano.function([a, x], T.hessian(z, x), backend=backend)
    xv = np.array([0.3, -0.2, 0.9])
    np.testing.assert_allclose(h(1.0, xv), np.diag(6 * xv), rtol=1e-10)
    np.testing.assert_allclose(h(-1.0, xv), np.diag(2 * np.cos(xv) - xv * np.sin(xv)),
                               rtol=1e-10)


def test_many_ifelses_compile_in_linear_time():
    """A chain of n ifelses and its gradient: compiling 8n takes well under 64x as long as n
    (capturing branches, then merging ifelses on one condition, were each once quadratic).
    The best of two compiles with the collector paused, so a loaded machine's noise stays
    far from the bound."""
    def compile_time(n: int) -> float:
        c, y = T.dscalar("c"), T.dvector("y")
        v = y
        for k in range(n):
            v = ifelse(T.gt(c, k), v * 1.01, v - 1)
        outputs = [v, T.grad(v.sum(), y)]
        took = []
        for _ in range(2):
            gc.collect()
            gc.disable()
            try:
                tic = time.perf_counter()
                f = theano.function([c, y], outputs, backend="numpy")
                took.append(time.perf_counter() - tic)
            finally:
                gc.enable()
        want = np.ones(2)
        for k in range(n):
            want = want * 1.01 if n / 2 > k else want - 1
        np.testing.assert_allclose(f(n / 2, np.ones(2))[0], want)
        return min(took)

    small, large = compile_time(40), compile_time(320)
    assert large < 24 * small + 0.5, (small, large)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_runs_only_the_chosen_branch(backend):
    """The untaken branch's forward and backward work is skipped in the gradient too: x[i]
    with i out of bounds would raise."""
    x, i = T.dvector("x"), T.iscalar("i")
    z = ifelse(T.lt(i, x.shape[0]), x[i] ** 2, T.constant(0.0, dtype="float64"))
    w = ifelse(T.ge(i, x.shape[0]), T.sum(x) * 3, x[i - 1] * T.sum(x))
    g = theano.function([x, i], T.grad(z, x), backend=backend)
    both = theano.function([x, i], [z, w, *T.grad(z + w, [x])], backend=backend)
    xv = np.arange(3.0)
    np.testing.assert_allclose(g(xv, 1), [0.0, 2.0, 0.0])
    np.testing.assert_allclose(g(xv, 7), [0.0, 0.0, 0.0])
    zv, wv, gv = both(xv, 7)
    np.testing.assert_allclose([zv, wv], [0.0, 9.0])
    np.testing.assert_allclose(gv, [3.0, 3.0, 3.0])
    zv, wv, gv = both(xv, 2)
    np.testing.assert_allclose([zv, wv], [4.0, 3.0])
    np.testing.assert_allclose(gv, [1.0, 1.0 + 3.0, 1.0 + 4.0])
