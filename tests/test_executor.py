"""The reference executor's memory reuse never changes a result: checked on a known aliasing
trap and on random expression graphs (with their gradients) in DebugMode, which compares the
executor's outputs with a node-by-node run of the NumPy reference; and the invariant reuse relies
on: an op output that may share an input's memory says so in `view_of`."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theanine as th
import theanine.tensor as T
from theanine.gradient import zero_grad
from theanine.graph.basic import Constant, GraphError
from theanine.graph.traversal import toposort
from theanine.tensor.join import Join
from theanine.tensor.math import ELEMWISE
from theanine.tensor.subtensor import AdvancedSubtensor

UNARY = [T.tanh, T.sin, T.sigmoid, T.neg, T.sqr, lambda v: T.exp(T.tanh(v)), T.softplus]
BINARY = [T.add, T.sub, T.mul, T.maximum, lambda a, b: a / (1 + T.sqr(b))]


def test_a_buffer_read_later_through_a_view_is_not_overwritten():
    x, m = T.dmatrix("x"), T.dvector("m")
    cost = T.sum(x - m.dimshuffle(0, "x"))
    gx, gm = th.function([x, m], T.grad(cost, [x, m]))(np.ones((2, 3)), np.zeros(2))
    np.testing.assert_array_equal(gx, np.ones((2, 3)))
    np.testing.assert_array_equal(gm, [-3.0, -3.0])


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_elementwise_output_reuses_a_dying_buffer_and_stays_correct(backend):
    a, b = T.dvector("a"), T.dvector("b")
    f = th.function([a, b], a ** 2 + b ** 2 + 2 * a * b, backend=backend)
    assert backend != "numpy" or "out=" in f._run.source
    av, bv = np.arange(5.0), np.arange(5.0) + 1
    np.testing.assert_array_equal(f(av, bv), (av + bv) ** 2)
    np.testing.assert_array_equal(av, np.arange(5.0))  # inputs untouched


@st.composite
def expressions(draw):
    x, y, z = T.dmatrix("x"), T.drow("y"), T.dvector("z")
    pool = [x, y, z.dimshuffle("x", 0)]
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.booleans()):
            op = draw(st.sampled_from(UNARY))
            pool.append(op(draw(st.sampled_from(pool))))
        else:
            op = draw(st.sampled_from(BINARY))
            pool.append(op(draw(st.sampled_from(pool)), draw(st.sampled_from(pool))))
    out = pool[-1]
    if draw(st.booleans()):
        out = out.sum(axis=draw(st.sampled_from([0, 1])))
    return (x, y, z), out


@given(expressions(), st.integers(0, 2 ** 16))
def test_random_graphs_and_gradients_match_the_reference(expr, seed):
    (x, y, z), out = expr
    cost = T.sum(out)
    grads = T.grad(cost, [x, y, z], disconnected_inputs="ignore")
    f = th.function([x, y, z], [out, *grads], mode="DebugMode")
    rng = np.random.default_rng(seed)
    xv, yv, zv = rng.normal(size=(3, 4)), rng.normal(size=(1, 4)), rng.normal(size=4)
    fast = th.function([x, y, z], [out, *grads])
    for a, b in zip(f(xv, yv, zv), fast(xv, yv, zv)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# -- the view_of invariant: an output that may share an input's memory is declared -----------
VIEWS = {
    "reshape": (lambda a: T.reshape(a, (4, 3)).T, lambda a: a.reshape(4, 3).T, (3, 4)),
    "split": (lambda a: T.split(a, [1, 2], 2, axis=0)[0], lambda a: a[:1], (3, 4)),
    "specify_shape": (lambda a: T.specify_shape(a, (3, 4)), lambda a: a, (3, 4)),
    "zero_grad": (zero_grad, lambda a: a, (3, 4)),
    "subtensor": (lambda a: a[::-1], lambda a: a[::-1], (3, 4)),
    "transpose": (lambda a: a.T, lambda a: a.T, (4, 4)),
    "squeeze": (lambda a: T.squeeze(a[:1], 0), lambda a: a[0], (3, 4)),
}


@pytest.mark.parametrize("name", sorted(VIEWS))
@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_view_read_after_its_base_dies_in_an_elementwise_op(name, backend):
    # exp(x) is fresh; the view of it is computed first, tanh is the last direct reader of
    # exp(x) and could write into its buffer, and only then is the view read
    make, ref, shape = VIEWS[name]
    x = T.dmatrix("x")
    a = T.exp(x)
    f = th.function([x], make(a) + T.tanh(a), backend=backend)
    assert backend != "numpy" or "out=" in f._run.source
    xv = np.random.default_rng(1).normal(size=shape)
    np.testing.assert_allclose(f(xv), ref(np.exp(xv)) + np.tanh(np.exp(xv)), rtol=1e-13)


def _nodes_alias_only_as_declared(outputs, values):
    """Run each node through py_fn (0-d inputs as arrays and as NumPy scalars) and check that
    an output sharing memory with an input is declared in the op's view_of."""
    env = dict(values)
    for node in toposort(outputs):
        ins = [v.data if isinstance(v, Constant) else env[v] for v in node.inputs]
        fn = node.op.py_fn(node)
        for args in (ins, [a[()] if np.ndim(a) == 0 else a for a in ins]):
            res = fn(*args)
            res = res if len(node.outputs) > 1 else (res,)
            for j, r in enumerate(res):
                for i, a in enumerate(args):
                    if isinstance(a, np.ndarray) and np.shares_memory(r, a):
                        assert node.op.view_of.get(j) == i, f"{node.op} output {j} aliases {i}"
        env.update(zip(node.outputs, node.op.perform(node, ins), strict=True))


def test_no_op_output_aliases_an_input_undeclared():
    x, v, i = T.dmatrix("x"), T.dvector("v"), T.lscalar("i")
    values = {x: np.arange(1.0, 7.0).reshape(2, 3), v: np.array([0.5, 0.25, 0.75]),
              i: np.array(1)}
    outs = [T.sum(x, axis=()), T.max(x, axis=()), T.argmax(x, axis=()), Join(0)(x),
            T.concatenate([x, x]), T.stack([x]), T.broadcast_to(v, (2, 3)), T.alloc(x, 2, 3),
            T.reshape(x, (3, 2)), T.flatten(x), T.squeeze(x[0:1]), T.expand_dims(x, 0),
            T.specify_shape(x, (2, 3)), zero_grad(x), x[i], x[[0, 1]], x[x > 2], x[True],
            *T.split(x, [1, 2], 2, axis=1), T.set_subtensor(x[0], 1.0), T.cast(x, "float64"),
            T.nnet.softmax(x), T.dot(x, v), T.shape(x), T.size(x), T.arange(3),
            *T.grad(T.sum(T.nnet.softmax(x) * T.outer(v, v)[:2]), [x, v])]
    outs += [op(*[v] * op.scalar_op.nin) for name, op in ELEMWISE.items()
             if name not in ("and_", "or_", "xor", "invert")]
    with np.errstate(all="ignore"):
        _nodes_alias_only_as_declared(outs, values)


def test_advanced_subtensor_needs_an_array_index_to_be_a_copy():
    x, i = T.dmatrix("x"), T.lscalar("i")
    with pytest.raises(GraphError, match=r"AdvancedSubtensor\[\?\] of x needs an integer-array "
                                         "or boolean index input"):
        AdvancedSubtensor(("?",))(x, i)
    with pytest.raises(GraphError, match="needs an integer-array or boolean index input"):
        AdvancedSubtensor((0,))(x)
