"""The numpy and C backends run nodes through their op tables (keyed by Op class, along the
MRO): a jacobian is a scan over its gradient graph in the outer function's backend, a user's
op runs its perform wherever it is defined, and a table with no entry for an op fails
compilation naming the op and the backend."""

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.backends.cpu_c.backend import CBackend
from theanine.backends.numpy.backend import NumpyBackend
from theanine.graph.basic import Apply, Op
from theanine.op_table import MissingImplementation, OpTable
from theanine.scan_module.op import Scan

needs_c = pytest.mark.skipif(not backends()["c"].available()[0], reason="C backend unavailable")


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_c)])
def test_a_jacobian_is_a_scan_over_its_gradient_graph_in_the_outer_backend(backend):
    x = T.dvector("x")
    f = th.function([x], th.jacobian(T.sin(x) * x[0], x), backend=backend)
    xv = np.array([0.5, -1.0, 2.0])
    want = np.diag(np.cos(xv) * xv[0])
    want[:, 0] += np.sin(xv)
    np.testing.assert_allclose(f(xv), want, rtol=1e-12)
    assert [n.op.name for n in f.fgraph.nodes if isinstance(n.op, Scan)] == ["jacobian"]


class _Twice(Op):
    """A user's op with only perform (Theano's DoubleOp), in a module named like theanine's."""

    __module__ = "theanine.tensor.user_defined"

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        return (inputs[0] * 2,)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("c", marks=needs_c)])
def test_a_user_op_runs_its_perform_whatever_its_module(backend):
    x = T.dvector("x")
    f = th.function([x], _Twice()(x) + 1, backend=backend)
    np.testing.assert_array_equal(f(np.array([1.0, 2.5])), [3.0, 6.0])
    assert backends()[backend].impls.lookup(_Twice).op_class is Op


class _BareC(CBackend):
    name = "c-bare"
    impls = OpTable("c-bare")


class _BareNumpy(NumpyBackend):
    name = "numpy-bare"
    impls = OpTable("numpy-bare")


@pytest.mark.parametrize("backend", [_BareNumpy, pytest.param(_BareC, marks=needs_c)])
def test_an_op_without_an_entry_fails_compilation_by_name(backend):
    x = T.dmatrix("x")
    with pytest.raises(MissingImplementation,
                       match=rf"backend '{backend.name}' has no implementation of op Reshape"):
        th.function([x], x.reshape((-1,)), backend=backend())


class _GenericOnlyC(CBackend):
    """A C backend that forgot every library op: its table has only the generic entry (for
    users' ops)."""

    name = "c-generic-only"
    impls = OpTable("c-generic-only")


_GenericOnlyC.impls.add(Op, CBackend.impls[_Twice].fn)


@needs_c
def test_the_generic_entry_never_serves_a_library_op():
    from theanine.tensor.shape_ops import Reshape

    x = T.dmatrix("x")
    with pytest.raises(MissingImplementation,
                       match=r"backend 'c-generic-only' has no implementation of op Reshape"):
        th.function([x], x.reshape((-1,)), backend=_GenericOnlyC())
    assert _GenericOnlyC.impls.lookup(Reshape) is None
    assert _GenericOnlyC.impls.lookup(_Twice).op_class is Op  # a user's op still runs


def test_an_entry_added_to_a_fallback_table_is_seen_by_the_tables_over_it():
    from theanine.tensor.linalg import Dot

    base = OpTable("base-for-test")
    child = OpTable("child-for-test", fallback=base)
    base.add(Op, lambda: None, how="generic")
    assert child.lookup(_Twice).how == "generic" and child.lookup(Dot) is None
    base.add(_Twice, lambda: None, how="twice")
    base.add(Dot, lambda: None, how="dot")
    assert child.lookup(_Twice).how == "twice" and child.lookup(Dot).how == "dot"
    child.add(Dot, lambda: None, how="child dot")
    assert child.lookup(Dot).how == "child dot" and base.lookup(Dot).how == "dot"


@needs_c
def test_a_subclass_of_a_library_op_inherits_its_c_entry():
    from theanine.tensor.linalg import Dot

    class MyDot(Dot):
        pass

    a, b = T.dmatrix("a"), T.dmatrix("b")
    f = th.function([a, b], MyDot()(a, b), backend="c")
    assert "th_dot(" in f._run.source and f._run.host_count == 0
    av, bv = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(f(av, bv), av @ bv)
