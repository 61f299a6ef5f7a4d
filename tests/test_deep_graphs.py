"""Graph walks are iterative: a graph's depth is never limited by Python's recursion limit
(fusion, rewrites, gradient, printing, compilation on every backend)."""

import io
import sys

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.codegen.fusion import KernelStep, lower
from theanine.codegen.ir import topo_exprs
from theanine.graph.fgraph import FunctionGraph
from theanine.printing import debugprint, pp
from theanine.rewrite.db import NodeRewriter
from theanine.rewrite.engine import apply_node_rewriters


def _chain(x, steps: int):
    """sin(y) + 0.25 and tanh(y) * 1.5 by turns: two nodes a step, nothing to simplify."""
    y = x
    for i in range(steps):
        y = T.tanh(y) * 1.5 if i % 2 else T.sin(y) + 0.25
    return y


def _chain_reference(v: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The chain's value and its derivative (chain rule, step by step) in NumPy."""
    y, dy = v.copy(), np.ones_like(v)
    for i in range(steps):
        if i % 2:
            t = np.tanh(y)
            y, dy = t * 1.5, dy * 1.5 * (1 - t * t)
        else:
            y, dy = np.sin(y) + 0.25, dy * np.cos(y)
    return y, dy


def test_fusion_lowers_a_10000_deep_chain_into_one_kernel():
    """Before: _ExprBuilder.expr recursed once per node (RecursionError past ~450 nodes)."""
    x = T.dvector("x")
    y = x
    for i in range(10000):
        y = T.tanh(y) if i % 2 else T.sin(y)
    steps = lower(FunctionGraph([x], [y]), lambda node: True, lambda node: False)
    assert [type(s) for s in steps] == [KernelStep]
    calls = [e.op for e in topo_exprs(steps[0].kernel.outputs) if hasattr(e, "args")]
    assert calls == ["sin", "tanh"] * 5000


def test_a_rewrite_may_bring_in_a_deep_replacement():
    """Before: importing the new nodes of a replacement recursed once per node."""
    x = T.dvector("x")
    fg = FunctionGraph([x], [T.exp(x)])
    deep = _chain(x, 2500)
    rewriter = NodeRewriter(lambda fgraph, node: [deep], ["exp"], name="to_deep")
    assert apply_node_rewriters(fg, [rewriter], 60.0, "test")
    assert fg.outputs[0] is deep
    assert len(fg.nodes) == 3 * 2500  # each step: an op, a broadcast constant, an op
    assert all(fg.clients[o] for n in fg.nodes for o in n.outputs)


@pytest.mark.parametrize("backend", ["numpy", "c", "opencl"])
def test_a_deep_chain_and_its_gradient_match_numpy(backend):
    """A 600-node chain and its gradient in one function (about 2.5 s to compile on c; the
    gradient's fused kernel is over 3,000 nodes deep). Before: RecursionError on c and
    opencl."""
    ok, why = backends()[backend].available()
    if not ok:
        pytest.skip(f"{backend} backend unavailable: {why}")
    steps = 300
    x = T.dvector("x")
    y = _chain(x, steps)
    f = th.function([x], [y, T.grad(T.sum(y), x)], backend=backend)
    v = np.linspace(-2.0, 2.0, 7)
    value, slope = f(v)
    want_value, want_slope = _chain_reference(v, steps)
    np.testing.assert_allclose(value, want_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(slope, want_slope, rtol=1e-9, atol=1e-12)


def test_printing_and_gradient_of_a_chain_deeper_than_the_recursion_limit():
    x = T.dvector("x")
    steps = sys.getrecursionlimit()
    y = _chain(x, steps)
    assert pp(y).count("sin(") == steps // 2
    assert debugprint(y, file=io.StringIO()).getvalue().count("|sin [id") == steps // 2
    g = T.grad(T.sum(y), x)
    assert debugprint(g, file=io.StringIO()).getvalue().count("|cos [id") == steps // 2
