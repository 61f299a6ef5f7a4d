"""The rewrite engine and the standard rewrites: each fires where it should, keeps values equal
to the un-rewritten graph, keeps the user's traces, and respects the time budget."""

import inspect
import warnings

import numpy as np
import pytest

import theanine.tensor as T
import theanine.tensor.nnet as nnet
from theanine.compile.function import function
from theanine.compile.mode import Mode
from theanine.config import config
from theanine.graph.basic import Apply, Constant, Op
from theanine.graph.fgraph import FunctionGraph
from theanine.rewrite import (
    GraphRewriter,
    RewriteWarning,
    format_rewrites,
    list_rewrites,
    node_rewriter,
    register_rewrite,
    rewrite_graph,
)
from theanine.rewrite.engine import apply_node_rewriters
from theanine.tensor.elemwise import DimShuffle, Elemwise
from theanine.tensor.scalar_ops import cast_op

pytestmark = pytest.mark.filterwarnings("error::theanine.rewrite.RewriteWarning")


def rewritten(inputs, outputs, mode="FAST_RUN", **kw) -> FunctionGraph:
    fg = FunctionGraph(inputs, outputs if isinstance(outputs, list) else [outputs])
    rewrite_graph(fg, mode, **kw)
    return fg


def names(fg: FunctionGraph) -> list[str]:
    return [n.op.scalar_op.name if isinstance(n.op, Elemwise) else type(n.op).__name__
            for n in fg.nodes]


def assert_same_values(inputs, output, *values, mode="FAST_RUN"):
    """The rewritten function returns what the un-rewritten graph computes (dtype included)."""
    ref = function(inputs, output, mode=Mode("NONE"))(*values)
    got = function(inputs, output, mode=mode)(*values)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, equal_nan=True)
    return got


# -- merge and constant folding --------------------------------------------------------------

def test_merge_shares_equal_nodes_and_constants():
    x, y = T.dvector("x"), T.dvector("y")
    fg = rewritten([x, y], (x * y) + T.exp(x * y) * T.constant(2.0) + T.constant(2.0),
                   mode="FAST_COMPILE")
    assert names(fg).count("mul") == 2  # x*y once, exp(.)*2 once
    consts = [v for v in fg.clients if isinstance(v, Constant)]
    assert len(consts) == 1
    assert_same_values([x, y], (x * y) + T.exp(x * y), [1.0, 2.0], [3.0, 4.0])


def test_constant_folding_computes_constant_subgraphs():
    x = T.dvector("x")
    expr = x * (T.constant(2.0) + T.exp(T.constant(0.0)))
    fg = rewritten([x], expr)
    assert names(fg) == ["mul"]
    (c,) = [v for v in fg.nodes[0].inputs if isinstance(v, Constant)]
    np.testing.assert_array_equal(c.data, [3.0])


def test_constant_folding_keeps_large_outputs_symbolic():
    from theanine.tensor.allocation import zeros

    fg = rewritten([], [zeros((2000, 1000)), zeros((2, 3))])
    assert names(fg) == ["Alloc"]
    assert fg.nodes[0].outputs[0] is fg.outputs[0]
    np.testing.assert_array_equal(fg.outputs[1].data, np.zeros((2, 3)))
    big = T.constant(np.zeros(1_000_001))  # no static hint: checked after computing
    assert names(rewritten([], T.ones_like(big))) == ["ones_like"]


# -- canonicalize ----------------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda x: x * 1, lambda x: 1 * x, lambda x: x + -0.0, lambda x: -0.0 + x, lambda x: x - 0,
    lambda x: x / 1, lambda x: T.neg(T.neg(x)), lambda x: x ** 1, lambda x: (x + -0.0) * 1 - 0,
], ids=["x*1", "1*x", "x+(-0)", "(-0)+x", "x-0", "x/1", "--x", "x**1", "chain"])
def test_identities_are_removed(build):
    x = T.dvector("x")
    fg = rewritten([x], build(x))
    assert fg.nodes == [] and fg.outputs[0] is fg.inputs[0]
    got = assert_same_values([x], build(x), [1.5, -2.0, 0.0, -0.0])
    np.testing.assert_array_equal(np.signbit(got), [False, True, False, True])


@pytest.mark.parametrize("build, ref", [
    (lambda x: x + 0, lambda a: a + 0.0), (lambda x: 0 + x, lambda a: 0.0 + a),
    (lambda x: x - -0.0, lambda a: a - -0.0), (lambda x: x + T.zeros((3,)), lambda a: a + 0.0),
], ids=["x+0", "0+x", "x-(-0)", "x+zeros"])
def test_adding_a_zero_that_changes_the_sign_of_zero_is_kept(build, ref):
    """NumPy: (-0.0) + 0.0 is +0.0, so x + 0 is not x for floats (it is for ints)."""
    x = T.dvector("x")
    a = np.array([-0.0, 0.0, 2.0])
    got = function([x], build(x))(a)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref(a)))
    assert not np.signbit(got[0])
    i = T.lvector("i")
    assert rewritten([i], i + 0).nodes == [] and rewritten([i], 0 + i - 0).nodes == []


def test_non_identities_are_kept():
    x = T.dvector("x")
    assert names(rewritten([x], 0 - x)) == ["sub"]
    assert names(rewritten([x], 1 / x)) == ["true_div"]
    assert names(rewritten([x], x * 2)) == ["mul"]


def test_identity_keeps_dtype_with_a_cast():
    x = T.bvector("x")
    expr = x * T.constant(1.0)  # int8 * float64 -> float64
    fg = rewritten([x], expr)
    assert names(fg) == ["cast_float64"]
    assert fg.outputs[0].type == expr.type
    assert_same_values([x], expr, np.array([1, -3], dtype="int8"))


def test_identity_keeps_broadcast_shape_with_second():
    x = T.dvector("x")
    expr = x * T.constant(np.ones(3))  # static shape (3,): x of length 1 broadcasts
    fg = rewritten([x], expr)
    assert names(fg) == ["second"]
    assert fg.outputs[0].type == expr.type
    out = assert_same_values([x], expr, [2.0])
    np.testing.assert_array_equal(out, [2.0, 2.0, 2.0])


def test_x_over_x_is_not_rewritten_and_stays_nan():
    x = T.dvector("x")
    fg = rewritten([x], x / x)
    assert names(fg) == ["true_div"]
    with np.errstate(all="ignore"):
        out = function([x], x / x, mode="FAST_RUN")(np.array([0.0, np.inf, 2.0]))
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 1.0


def test_dimshuffle_chains_merge_and_identities_vanish():
    x = T.dmatrix("x")
    expr = x.dimshuffle(1, "x", 0).dimshuffle(2, 0, 1)  # -> dimshuffle(0, 1, 'x')
    fg = rewritten([x], expr)
    assert names(fg) == ["DimShuffle"]
    assert fg.nodes[0].op.new_order == (0, 1, "x")
    assert_same_values([x], expr, np.arange(6.0).reshape(2, 3))
    back = x.dimshuffle(1, 0).dimshuffle(1, 0)
    assert rewritten([x], back).outputs[0] is not None
    assert rewritten([x], back).nodes == []
    identity = DimShuffle(2, (0, 1))(x)
    assert rewritten([x], identity).nodes == []


def test_useless_cast_is_removed():
    x = T.dvector("x")
    expr = Elemwise(cast_op("float64"))(x) * 2
    assert names(rewritten([x], expr)) == ["mul"]


# -- stabilize -------------------------------------------------------------------------------

def test_log_sigmoid_becomes_softplus_and_stays_finite():
    x = T.dvector("x")
    expr = T.log(T.sigmoid(x))
    fg = rewritten([x], expr)
    assert "sigmoid" not in names(fg) and "softplus" in names(fg)
    pts = np.array([-800.0, -1.0, 0.0, 30.0])
    out = function([x], expr, mode="FAST_RUN")(pts)
    np.testing.assert_allclose(out, -np.logaddexp(0, -pts))
    assert out[0] == -800.0
    with np.errstate(divide="ignore"):
        assert function([x], expr, mode="FAST_COMPILE")(pts)[0] == -np.inf


def test_log_one_minus_sigmoid_becomes_softplus():
    x = T.fvector("x")
    expr = T.log(1 - T.sigmoid(x))
    fg = rewritten([x], expr)
    assert names(fg) == ["softplus", "neg"] and fg.outputs[0].type == expr.type
    out = function([x], expr)(np.array([800.0, 0.0], dtype="float32"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-800.0, -np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("build", [lambda x: T.log(1 + x), lambda x: T.log(x + 1)],
                         ids=["log(1+x)", "log(x+1)"])
def test_log1p(build):
    x = T.dvector("x")
    fg = rewritten([x], build(x))
    assert names(fg) == ["log1p"]
    out = function([x], build(x))(np.array([1e-20, 3.0]))
    np.testing.assert_allclose(out, [1e-20, np.log(4.0)], rtol=1e-15)


def test_log1p_is_not_used_for_integer_sums():
    x = T.bvector("x")
    assert names(rewritten([x], T.log(x + 1))) == ["add", "log"]


def test_expm1():
    x = T.dvector("x")
    expr = T.exp(x) - 1
    assert names(rewritten([x], expr)) == ["expm1"]
    np.testing.assert_allclose(function([x], expr)(np.array([1e-20])), [1e-20], rtol=1e-15)


def test_log_softmax():
    x = T.dmatrix("x")
    expr = T.log(nnet.softmax(x))
    assert names(rewritten([x], expr)) == ["LogSoftmax"]
    out = function([x], expr)(np.array([[0.0, -1000.0]]))
    np.testing.assert_allclose(out, [[0.0, -1000.0]])


# -- specialize ------------------------------------------------------------------------------

@pytest.mark.parametrize("exponent, op", [(2, "sqr"), (0.5, "sqrt"), (-1, "reciprocal")])
def test_pow_specializations(exponent, op):
    x = T.fvector("x")
    expr = x ** exponent
    fg = rewritten([x], expr)
    assert names(fg) == [op] and fg.outputs[0].type == expr.type
    assert_same_values([x], expr, np.array([0.25, 4.0], dtype="float32"))


def test_pow_specialization_casts_integer_bases():
    i = T.ivector("i")
    expr = i ** 0.5
    fg = rewritten([i], expr)
    assert names(fg) == ["cast_float64", "sqrt"]
    assert_same_values([i], expr, np.array([4, 9], dtype="int32"))
    assert names(rewritten([i], i ** -1)) == ["pow"]  # integer result: no reciprocal
    assert names(rewritten([i], i ** 3)) == ["pow"]


# -- engine: traces, budget, modes, registration ---------------------------------------------

def test_new_nodes_keep_the_trace_of_the_node_they_replace():
    x = T.dvector("x")
    line = inspect.currentframe().f_lineno + 1
    expr = T.log(T.sigmoid(x))
    fg = rewritten([x], expr)
    for node in fg.nodes:
        assert node.trace[0][:2] == (__file__, line)
        assert all(o.trace[0][:2] == (__file__, line) for o in node.outputs)


def test_time_budget_stops_a_pass_and_keeps_the_graph_valid():
    x = T.dvector("x")
    expr = x
    for _ in range(30):
        expr = expr * 1
    old = config.rewrite_time_budget
    config.rewrite_time_budget = 1e-9
    try:
        with pytest.warns(RewriteWarning, match="'canonicalize' stopped after"):
            fg = rewritten([x], expr)
    finally:
        config.rewrite_time_budget = old
    assert names(fg).count("mul") == 30
    assert rewritten([x], expr).nodes == []
    assert_same_values([x], expr, [1.0, 2.0])


def test_modes_select_passes():
    x = T.dvector("x")
    expr = T.log(T.sigmoid(x * 1))
    assert names(rewritten([x], expr, mode="NONE")) == ["DimShuffle", "mul", "sigmoid", "log"]
    assert names(rewritten([x], expr, mode="FAST_COMPILE")) == ["sigmoid", "log"]
    assert "softplus" in names(rewritten([x], expr, mode="FAST_RUN"))
    assert names(rewritten([x], expr, exclude=["stabilize"])) == ["sigmoid", "log"]
    assert names(rewritten([x], x ** 2, mode="FAST_COMPILE", include=["specialize"])) == ["sqr"]
    with pytest.raises(ValueError, match="mode must be one of FAST_RUN, FAST_COMPILE, NONE"):
        rewritten([x], expr, mode="FAST")


class Twice(Op):
    """A test-only op (so a registered rewrite cannot touch other tests' graphs)."""

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        return (inputs[0] * 2,)


def test_register_node_rewrite_and_graph_pass():
    @node_rewriter([Twice])
    def twice_to_add(fgraph, node):
        (x,) = node.inputs
        return [x + x]

    register_rewrite(twice_to_add, "canonicalize", name="test_twice_to_add")
    x = T.dvector("x")
    assert names(rewritten([x], Twice()(x))) == ["add"]
    assert names(rewritten([x], Twice()(x), exclude=["test_twice_to_add"])) == ["Twice"]
    assert ("canonicalize", "test_twice_to_add", ("fast_compile", "fast_run")) \
        in list_rewrites()
    assert "test_twice_to_add" in format_rewrites()
    with pytest.raises(ValueError, match="already registered"):
        register_rewrite(twice_to_add, "canonicalize", name="test_twice_to_add")

    seen = []

    class Probe(GraphRewriter):
        name = "test_probe"

        def apply(self, fgraph, budget):
            seen.append(names(fgraph))
            return False

    register_rewrite(Probe(), "test_probe", position=3.5)  # between stabilize and specialize
    rewritten([x], T.log(T.sigmoid(x)) + x ** 2)
    assert seen == []  # opt-in only
    rewritten([x], T.log(T.sigmoid(x)) + x ** 2, include=["test_probe"])
    assert "softplus" in seen[0] and "pow" in seen[0]


def test_register_rewrite_errors():
    with pytest.raises(ValueError, match="say which pass"):
        register_rewrite(lambda fgraph, node: None, "fast_run")
    with pytest.raises(TypeError, match="expected a NodeRewriter"):
        register_rewrite(42, "canonicalize")


def test_failing_or_ill_typed_rewrites_are_skipped_with_a_warning():
    x = T.dvector("x")

    @node_rewriter(["exp"])
    def broken(fgraph, node):
        raise RuntimeError("boom")

    @node_rewriter(["exp"])
    def wrong_rank(fgraph, node):
        return [T.dmatrix()]

    @node_rewriter(["exp"])
    def as_dict(fgraph, node):
        return {node.outputs[0]: T.cast(node.inputs[0], "float32")}  # cast back to float64

    for rw, match in [(broken, "'broken' failed .* boom"), (wrong_rank, "not interchangeable")]:
        fg = FunctionGraph([x], [T.exp(x)])
        with pytest.warns(RewriteWarning, match=match):
            assert apply_node_rewriters(fg, [rw], 10.0, "test") is False
        assert names(fg) == ["exp"]
    fg = FunctionGraph([x], [T.exp(x)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert apply_node_rewriters(fg, [as_dict], 10.0, "test") is True
    assert names(fg) == ["cast_float32", "cast_float64"]
    assert fg.outputs[0].type == T.exp(x).type


# -- shape -----------------------------------------------------------------------------------

def test_shape_of_an_op_output_does_not_compute_the_output():
    x, s = T.dmatrix("x"), T.dscalar("s")
    expr = (T.exp(x) + s).shape  # broadcasting a scalar cannot fail: no need to compute
    fg = rewritten([x, s], expr)
    assert set(names(fg)) == {"ShapeI", "MakeVector"}
    out = function([x, s], expr)(np.ones((2, 3)), 1.0)
    np.testing.assert_array_equal(out, [2, 3])
    assert out.dtype == np.int64


def test_shape_of_an_op_that_checks_shapes_still_checks():
    """(x + y).shape must fail like x + y when the lengths do not broadcast."""
    x, y = T.dmatrix("x"), T.dvector("y")
    for expr in [(x + y).shape, (T.exp(x) + y).shape[1], T.dot(x, y).shape]:
        f = function([x, y], expr)
        with pytest.raises(ValueError):
            f(np.ones((2, 3)), np.ones(4))
    f = function([x, y], [(x + y).shape, T.dot(x, y).shape])
    a, b = f(np.ones((2, 3)), np.ones(3))
    np.testing.assert_array_equal(a, [2, 3])
    np.testing.assert_array_equal(b, [2])
    u, v = T.dvector("u"), T.dvector("v")
    np.testing.assert_array_equal(function([u, v], (u + v).shape)(np.ones(1), np.ones(0)), [0])


def test_elemwise_infer_shape_broadcasts_length_one_and_zero():
    """NumPy broadcasting: lengths 1 and 0 give 0 (a maximum would give 1)."""
    u, v = T.dvector("u"), T.dvector("v")
    node = (u + v).owner
    a, b = T.lscalar("a"), T.lscalar("b")
    (entry,) = node.op.infer_shape(node, [(a,), (b,)])[0]
    f = function([a, b], entry)
    for la, lb in [(1, 0), (0, 1), (3, 1), (1, 3), (1, 1), (0, 0), (4, 4)]:
        assert f(la, lb) == np.broadcast_shapes((la,), (lb,))[0]


def test_long_shape_chains_resolve_in_one_sweep():
    x, y = T.dmatrix("x"), T.dscalar("y")
    h = x
    for _ in range(150):
        h = T.exp(h) + y
    old = config.rewrite_time_budget
    config.rewrite_time_budget = 5.0  # a pass that re-sorted the graph per step would not fit
    try:
        fg = rewritten([x, y], h.shape)
    finally:
        config.rewrite_time_budget = old
    assert "exp" not in names(fg)
    np.testing.assert_array_equal(function([x, y], h.shape)(np.ones((2, 3)), 1.0), [2, 3])


def test_static_shapes_become_constants():
    x = T.tensor("float64", shape=(2, None), name="x")
    y = T.tensor("float64", shape=(4, 5), name="y")
    fg = rewritten([x, y], [T.exp(x).shape[0] * 1, y.shape])
    assert names(fg) == []
    assert fg.outputs[0].data == 2
    np.testing.assert_array_equal(fg.outputs[1].data, [4, 5])
