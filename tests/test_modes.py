"""Modes are rewrite queries, as in Theano: `including`, `excluding` and `requiring` return new
modes; the tag vocabulary is checked in one place; backends add their own tags ('gemm');
lowering honours an excluded 'fusion'; modes pickle with their functions."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.codegen.fusion import KernelStep, NodeStep, lower
from theanine.compile.mode import Mode, get_mode
from theanine.graph.fgraph import FunctionGraph
from theanine.rewrite import rewrite_graph
from theanine.rewrite.query import RewriteQuery
from theanine.tensor.elemwise import Elemwise

needs_c = pytest.mark.skipif(not backends()["c"].available()[0], reason="no C backend here")


def op_names(f) -> list[str]:
    return [n.op.scalar_op.name if isinstance(n.op, Elemwise) else type(n.op).__name__
            for n in f.fgraph.nodes]


def test_including_excluding_requiring_return_new_modes():
    fast = get_mode("FAST_RUN")
    no_fusion = fast.excluding("fusion")
    assert no_fusion is not fast and fast.query == RewriteQuery(frozenset({"fast_run"}))
    assert no_fusion.query.exclude == {"fusion"} and no_fusion.query.include == {"fast_run"}
    both = no_fusion.including("specialize").requiring("fast_run")
    assert both.query == RewriteQuery(frozenset({"fast_run", "specialize"}),
                                      frozenset({"fusion"}), frozenset({"fast_run"}))
    assert repr(no_fusion) == "Mode(FAST_RUN.excluding('fusion'))"
    debug = get_mode("DebugMode").excluding("stabilize")
    assert debug.debug and debug.query.include == {"fast_run"}


def test_an_unknown_tag_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown rewrite tag 'fuson'; known tags: .*"
                                         r"canonicalize, .*fast_compile, fast_run, fusion, "
                                         r"gemm, .*stabilize.*or a rewrite's name"):
        get_mode("FAST_RUN").excluding("fuson")
    with pytest.raises(ValueError, match="unknown rewrite tags 'a', 'b'"):
        Mode("FAST_COMPILE").including("a", "b")
    with pytest.raises(ValueError, match="unknown rewrite tag 'nope'"):
        get_mode("FAST_RUN").requiring("nope")
    with pytest.raises(ValueError, match="unknown rewrite tag 'nope'"):
        rewrite_graph(FunctionGraph([], [T.constant(1.0)]), "FAST_RUN", exclude=["nope"])
    # a rewrite's name is a tag of that rewrite alone
    assert get_mode("FAST_RUN").excluding("local_pow_specialize").query.exclude \
        == {"local_pow_specialize"}


def test_excluding_fusion_gives_every_elementwise_node_its_own_kernel():
    x, y, z = T.dvector("x"), T.dvector("y"), T.dvector("z")
    fg = FunctionGraph([x, y, z], [T.exp(x + y) * z, T.sum(T.exp(x) * y)])
    fused = lower(fg, lambda node: True, lambda node: True)
    assert [type(s).__name__ for s in fused] == ["KernelStep", "KernelStep"]
    fg.excluded_tags = get_mode("FAST_RUN").excluding("fusion").query.exclude
    unfused = lower(fg, lambda node: True, lambda node: True)
    kernels = [s for s in unfused if isinstance(s, KernelStep)]
    # add, exp, mul; exp, mul, and the sum alone (no elementwise work inside the reduction)
    assert len(kernels) == 6 and not [s for s in unfused if isinstance(s, NodeStep)]
    assert all(len(s.nodes) <= 1 for s in kernels)


@needs_c
def test_excluding_fusion_on_the_c_backend():
    x, y, z = T.dvector("x"), T.dvector("y"), T.dvector("z")
    out = T.exp(x + y) * z
    fused = th.function([x, y, z], out, backend="c")
    unfused = th.function([x, y, z], out, backend="c",
                          mode=get_mode("FAST_RUN").excluding("fusion"))
    kinds = [[type(s).__name__ for s in f._run.steps] for f in (fused, unfused)]
    assert kinds == [["KernelStep"], ["KernelStep"] * 3]
    v = [np.array([0.5, -1.0]), np.array([2.0, 0.25]), np.array([3.0, -4.0])]
    ref = np.exp(v[0] + v[1]) * v[2]
    for f in (fused, unfused):
        np.testing.assert_allclose(f(*v), ref, rtol=1e-15)
    # the mode travels with a pickled function, and so does its query
    again = pickle.loads(pickle.dumps(unfused))
    assert again.mode.query == unfused.mode.query
    assert [type(s).__name__ for s in again._run.steps] == ["KernelStep"] * 3
    np.testing.assert_allclose(again(*v), ref, rtol=1e-15)


def test_requiring_keeps_only_the_rewrites_with_every_tag():
    x = T.dvector("x")
    out = T.log(T.nnet.sigmoid(x)) + x ** 2
    full = th.function([x], out, backend="numpy")
    assert "softplus" in op_names(full) and "sqr" in op_names(full)
    stabilize_only = th.function([x], out, backend="numpy",
                                 mode=get_mode("FAST_RUN").requiring("stabilize"))
    assert "softplus" in op_names(stabilize_only) and "pow" in op_names(stabilize_only)
    specialize_only = th.function([x], out, backend="numpy",
                                  mode=get_mode("FAST_RUN").requiring("specialize"))
    assert "sigmoid" in op_names(specialize_only) and "sqr" in op_names(specialize_only)
    v = np.array([-3.0, 0.5])
    ref = np.log(1 / (1 + np.exp(-v))) + v ** 2
    for f in (full, stabilize_only, specialize_only):
        np.testing.assert_allclose(f(v), ref, rtol=1e-14)


def test_including_adds_rewrites_to_a_mode():
    x = T.dvector("x")
    assert "pow" in op_names(th.function([x], x ** 2, mode="FAST_COMPILE"))
    assert op_names(th.function([x], x ** 2,
                                mode=get_mode("FAST_COMPILE").including("specialize"))) \
        == ["sqr"]
    # NONE: nothing runs, however the mode is narrowed
    assert "pow" in op_names(th.function([x], x ** 2, mode=Mode("NONE").excluding("merge")))


def _gemm_graph():
    z, x, y = T.dmatrix("z"), T.dmatrix("x"), T.dmatrix("y")
    return [z, x, y], z + T.dot(x, y)


def _has_gemm(f) -> bool:
    return "Gemm" in op_names(f)


@needs_c
def test_gemm_is_a_tag_of_the_backends_that_declare_it():
    inputs, out = _gemm_graph()
    assert "gemm" in backends()["c"].rewrite_tags and not backends()["numpy"].rewrite_tags
    assert _has_gemm(th.function(inputs, out, backend="c"))
    assert not _has_gemm(th.function(inputs, out, backend="numpy"))
    assert not _has_gemm(th.function(inputs, out, backend="c",
                                     mode=get_mode("FAST_RUN").excluding("gemm")))
    with_gemm = th.function(inputs, out, backend="numpy",
                            mode=get_mode("FAST_RUN").including("gemm"))
    assert _has_gemm(with_gemm)
    rng = np.random.default_rng(0)
    z, x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 5)), rng.normal(size=(5, 4))
    np.testing.assert_allclose(with_gemm(z, x, y), z + x @ y, rtol=1e-14)


def test_config_mode_from_flags_is_checked_naming_the_variable():
    code = "import theanine as th; print(th.config.mode)"
    env = {k: v for k, v in os.environ.items() if k not in ("THEANINE_FLAGS", "THEANO_FLAGS")}
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env={**env, "THEANINE_FLAGS": "mode=FAST_COMPILE"})
    assert ok.returncode == 0 and ok.stdout.split() == ["FAST_COMPILE"], ok.stderr
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "THEANINE_FLAGS": "mode=FASTEST"})
    assert bad.returncode != 0 and "THEANINE_FLAGS: unknown mode 'FASTEST'" in bad.stderr
    with pytest.raises(ValueError, match="unknown mode 'FASTEST'"):
        th.config.mode = "FASTEST"
