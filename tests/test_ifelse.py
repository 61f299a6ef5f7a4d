"""theanine.ifelse.ifelse: the chosen branch's value on every backend, lazily (a branch whose
op raises when run is harmless while not chosen, also nested, inside a scan's step and under
DebugMode), its gradient against finite differences, and its errors."""

import re

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T
from theanine.backend import backends
from theanine.compile.mode import Mode
from theanine.graph.basic import Apply, GraphError, Op
from theanine.ifelse import LazyIfElse, ifelse

BACKENDS = ["numpy", "c"] + (["opencl"] if backends()["opencl"].available()[0] else [])


class Explode(Op):
    """An op whose perform raises: running it means the branch holding it ran."""

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        raise RuntimeError("the branch that was not chosen ran")


def explode(x):
    return Explode()(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_chosen_branch_runs(backend):
    a, x = T.dscalar("a"), T.dvector("x")
    then_safe = ifelse(T.gt(a, 0), T.mean(x) * 2, explode(x).sum())
    else_safe = ifelse(T.gt(a, 0), explode(x).sum(), T.sum(x ** 2))
    f = theano.function([a, x], [then_safe], backend=backend)
    g = theano.function([a, x], [else_safe], backend=backend)
    xv = np.arange(4.0)
    np.testing.assert_allclose(f(1.0, xv)[0], 3.0)
    np.testing.assert_allclose(g(-1.0, xv)[0], 14.0)
    with pytest.raises(RuntimeError, match="not chosen ran"):
        f(-1.0, xv)
    with pytest.raises(RuntimeError, match="not chosen ran"):
        g(1.0, xv)
    assert any(isinstance(n.op, LazyIfElse) for n in f.maker.fgraph.nodes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_and_lists_match_numpy(backend, rng):
    c = T.iscalar("c")
    x, y = T.dmatrix("x"), T.dmatrix("y")
    single = ifelse(c, T.dot(x, y), x - y)
    pair = ifelse(T.eq(c, 0), [x, y * 2], [T.exp(y), x])
    f = theano.function([c, x, y], [single, *pair], backend=backend)
    xv, yv = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    for cv in (0, 1, 7):
        got = f(cv, xv, yv)
        want = [xv @ yv if cv else xv - yv, *((xv, yv * 2) if cv == 0 else (np.exp(yv), xv))]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    got = f(0, xv, yv)[1]
    got[:] = 0  # the result is a copy: the input is untouched
    np.testing.assert_allclose(xv, f(0, xv, yv)[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_ifelse_is_lazy(backend):
    a, b, x = T.dscalar("a"), T.dscalar("b"), T.dvector("x")
    inner = ifelse(T.gt(b, 0), T.sum(x), explode(x).sum())
    outer = ifelse(T.gt(a, 0), inner * 10, explode(x * 2).sum())
    f = theano.function([a, b, x], outer, backend=backend)
    np.testing.assert_allclose(f(1.0, 1.0, np.ones(3)), 30.0)
    with pytest.raises(RuntimeError):
        f(1.0, -1.0, np.ones(3))
    with pytest.raises(RuntimeError):
        f(-1.0, 1.0, np.ones(3))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_ifelse_inside_a_scan_step_is_lazy(backend):
    x = T.dvector("x")

    def step(v, acc):
        return ifelse(T.ge(v, 0), acc + v, explode(acc).sum() + acc)

    out, _ = theano.scan(step, sequences=x, outputs_info=T.constant(0.0))
    f = theano.function([x], out, backend=backend)
    np.testing.assert_allclose(f(np.arange(4.0)), [0, 1, 3, 6])
    with pytest.raises(RuntimeError):
        f(np.array([1.0, -1.0]))


def test_debug_mode_runs_only_the_chosen_branch():
    a, x = T.dscalar("a"), T.dvector("x")
    z = ifelse(T.gt(a, 0), T.sum(x), explode(x).sum())
    f = theano.function([a, x], z, mode=Mode(debug=True))
    np.testing.assert_allclose(f(1.0, np.ones(3)), 3.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_against_finite_differences(backend, rng):
    a, x = T.dscalar("a"), T.dvector("x")
    z = ifelse(T.gt(a, 0), T.sum(T.sin(x) * a), T.sum(x ** 3) - a)
    g = theano.function([a, x], T.grad(z, [a, x]), backend=backend)
    f = theano.function([a, x], z, backend="numpy")
    xv = rng.normal(size=4)
    for av in (0.7, -0.7):
        ga, gx = g(av, xv)
        eps = 1e-6
        num_x = [(f(av, xv + eps * e) - f(av, xv - eps * e)) / (2 * eps) for e in np.eye(4)]
        num_a = (f(av + eps, xv) - f(av - eps, xv)) / (2 * eps)
        np.testing.assert_allclose(gx, num_x, rtol=1e-6)
        np.testing.assert_allclose(ga, num_a, rtol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda x, v: ifelse(v, x, x), "the condition must be a scalar"),
    (lambda x, v: ifelse(x.sum(), x, v), "branch value 0 is TensorType(float64, matrix) "
                                        "in the then branch but TensorType(float64, "
                                        "vector)"),
    (lambda x, v: ifelse(x.sum(), [x, x], [x]), "the then branch has 2 values but the else "
                                                "branch has 1"),
    (lambda x, v: ifelse(x.sum(), x, T.cast(x, "float32")), "float64, matrix) in the "
                                                            "then branch but "
                                                            "TensorType(float32"),
])
def test_errors_name_the_branch_and_types(build, message):
    x, v = T.dmatrix("x"), T.dvector("v")
    with pytest.raises(GraphError, match=re.escape(message)):
        build(x, v)


def test_conditions_tutorial_times_both_ways():
    """Theano's conditions tutorial: switch computes both means, ifelse one (smaller mats)."""
    import time

    a, b = T.scalar("a"), T.scalar("b")
    x, y = T.matrix("x"), T.matrix("y")
    z_switch = T.switch(T.lt(a, b), T.mean(x), T.mean(y))
    z_lazy = ifelse(T.lt(a, b), T.mean(x), T.mean(y))
    f_switch = theano.function([a, b, x, y], z_switch, mode=theano.Mode(linker="vm"))
    f_lazy = theano.function([a, b, x, y], z_lazy, mode=theano.Mode(linker="vm"))
    m1, m2 = np.ones((200, 100)), np.full((200, 100), 2.0)
    assert f_switch(0.0, 1.0, m1, m2) == f_lazy(0.0, 1.0, m1, m2) == 1.0
    assert f_switch(1.0, 0.0, m1, m2) == f_lazy(1.0, 0.0, m1, m2) == 2.0
    tic = time.perf_counter()
    f_lazy(0.0, 1.0, m1, m2)
    assert time.perf_counter() - tic >= 0
