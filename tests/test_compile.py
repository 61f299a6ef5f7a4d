"""function(): inputs, defaults, keywords, outputs, shared variables, updates, givens, modes
and the errors a user sees."""

import functools
import subprocess
import sys

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.compile.function import UnusedInputError


def test_single_and_list_outputs():
    x = T.dvector("x")
    assert isinstance(th.function([x], x * 2)([1, 2]), np.ndarray)
    out = th.function([x], [x * 2, x.sum()])([1, 2])
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_array_equal(out[0], [2, 4])
    assert out[1].shape == () and out[1] == 3


def test_defaults_and_keywords():
    x, y = T.dscalar("x"), T.dscalar("y")
    f = th.function([x, th.In(y, value=10.0)], x - y)
    assert f(1) == -9
    assert f(1, 2) == -1
    assert f(y=3, x=1) == -2
    g = th.function([x, th.Param(y, default=1.0, name="offset")], x + y)
    assert g(1, offset=5) == 6


def test_call_errors_name_the_input():
    x, y = T.dvector("x"), T.dmatrix("y")
    f = th.function([x, y], x + y)
    with pytest.raises(TypeError, match=r"input 1 \('y'\): expected a 2-d array"):
        f([1.0], [1.0])
    with pytest.raises(TypeError, match=r"missing input 1 \('y'\)"):
        f([1.0])
    with pytest.raises(TypeError, match="unknown keyword argument 'z'"):
        f([1.0], [[1.0]], z=1)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        f([1.0], [[1.0]], [1])
    with pytest.raises(TypeError, match="both by position and by keyword"):
        f([1.0], x=[1.0])


def test_lossless_conversions_are_accepted_lossy_rejected():
    x = T.fvector("x")
    f = th.function([x], x * 2)
    assert f([1, 2]).dtype == np.float32  # ints convert exactly
    with pytest.raises(TypeError, match=r"input 0 \('x'\): expected dtype float32.*allow_input"):
        f(np.array([0.1, 0.2], dtype="float64"))
    g = th.function([x], x * 2, allow_input_downcast=True)
    np.testing.assert_allclose(g(np.array([0.1])), [0.2], rtol=1e-6)
    i = T.ivector("i")
    with pytest.raises(TypeError, match="expected dtype int32"):
        th.function([i], i + 1)([1.5])


def test_static_shape_is_checked_at_call():
    x = T.tensor("float64", shape=(2, None), name="x")
    f = th.function([x], x + 1)
    with pytest.raises(ValueError, match=r"input 0 \('x'\): expected shape \(2, \?\), got "
                                         r"\(3, 1\)"):
        f(np.ones((3, 1)))


def test_shared_values_and_updates_are_applied_after_outputs():
    s = th.shared(np.array([1.0, 2.0]), name="s")
    t = th.shared(np.array([10.0, 20.0]), name="t")
    x = T.dvector("x")
    # swap s and t: both updates must read the old values
    f = th.function([x], s + x, updates=[(s, t), (t, s)])
    np.testing.assert_array_equal(f([0.0, 0.0]), [1, 2])
    np.testing.assert_array_equal(s.get_value(), [10, 20])
    np.testing.assert_array_equal(t.get_value(), [1, 2])


def test_shared_get_set_value_copy_and_borrow():
    v = np.zeros(3)
    s = th.shared(v)
    v[0] = 5
    assert s.get_value()[0] == 0  # copied on construction
    b = th.shared(v, borrow=True)
    assert b.get_value(borrow=True) is v
    got = s.get_value()
    got[1] = 7
    assert s.get_value()[1] == 0
    s.set_value([1, 2, 3])
    np.testing.assert_array_equal(s.get_value(), [1, 2, 3])
    with pytest.raises(TypeError, match="expected a 1-d array"):
        s.set_value(np.zeros((2, 2)))


def test_shared_broadcastable_and_type():
    b = th.shared(np.ones((3, 1)), name="b", broadcastable=(False, True))
    assert b.broadcastable == (False, True)
    assert str(b.type) == "TensorType(float64, col)"
    assert th.shared(np.array([1.3, 2.4])).dtype == "float64"
    assert th.shared(np.array([1, 2], dtype="float32")).dtype == "float32"
    with pytest.raises(ValueError, match="broadcastable"):
        th.shared(np.ones((3, 2)), broadcastable=(False,))


def test_outputs_do_not_alias_inputs_or_shared_storage():
    x = T.dvector("x")
    s = th.shared(np.array([1.0, 2.0]))
    f = th.function([x], [x, s, x.T])
    xv = np.array([3.0, 4.0])
    a, b, c = f(xv)
    a[0] = b[0] = c[1] = -1
    assert xv[0] == 3 and xv[1] == 4 and s.get_value()[0] == 1


def test_updates_errors():
    x = T.dvector("x")
    s = th.shared(np.zeros(2), name="s")
    with pytest.raises(TypeError, match="updates must target shared variables"):
        th.function([x], x, updates=[(x, x + 1)])
    with pytest.raises(TypeError, match=r"update of shared variable s must have its type.*float32"):
        th.function([x], x, updates=[(s, T.cast(x, "float32"))])
    with pytest.raises(ValueError, match="updated twice"):
        th.function([x], x, updates=[(s, x), (s, x + 1)])
    with pytest.raises(TypeError, match="shared variables are implicit inputs"):
        th.function([s], s + 1)


def test_unused_input_and_missing_input():
    x, y = T.dvector("x"), T.dvector("y")
    with pytest.raises(UnusedInputError, match=r"input 1 \(y\) is not used"):
        th.function([x, y], x * 2)
    assert th.function([x, y], x * 2, on_unused_input="ignore")([1.0], [2.0])[0] == 2
    with pytest.raises(ValueError, match=r"(?s)Input y .* not given.*test_compile.py"):
        th.function([x], x + y)


def test_givens_substitute_a_variable():
    x, y = T.dscalar("x"), T.dscalar("y")
    s = th.shared(np.float64(3.0))
    f = th.function([y], x * 2, givens={x: y + s})
    assert f(1.0) == 8


def test_eval_and_unknown_mode():
    x = T.dscalar("x")
    assert (x ** 2).eval({x: 3}) == 9
    with pytest.raises(ValueError, match="unknown mode"):
        th.function([x], x, mode="FASTEST")


def test_debug_mode_catches_nan_and_names_the_line():
    num, den = T.dscalar("num"), T.dscalar("den")
    fast = th.function([num, den], num / den)
    assert np.isnan(fast(0, 0))
    divide = th.function([num, den], num / den, mode="DebugMode")
    assert divide(10, 2) == 5
    with pytest.raises(th.DebugModeError, match=r"(?s)NaN in the output of true_div\(num, den\)"
                                                r".*test_compile.py.*num / den"):
        divide(0, 0)


def test_debug_mode_catches_an_op_returning_the_wrong_dtype():
    from theanine.graph.basic import Apply, Op

    class BadOp(Op):
        def make_node(self, x):
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs):
            return (inputs[0].astype("float32"),)

    x = T.dvector("x")
    f = th.function([x], BadOp()(x), mode="DebugMode")
    with pytest.raises(th.DebugModeError, match="dtype float32"):
        f([1.0])


def test_config_floatx_and_flags():
    assert th.config.floatX == "float64"
    old = th.config.floatX
    th.config.floatX = "float32"
    try:
        assert T.scalar().dtype == "float32"
        assert T.matrix().dtype == "float32"
        assert T.dmatrix().dtype == "float64"
    finally:
        th.config.floatX = old
    with pytest.raises(ValueError, match="floatX"):
        th.config.floatX = "float8"
    with pytest.raises(AttributeError, match="no option"):
        th.config.flotX = "float32"
    code = "import theanine as th; print(th.config.device, th.config.floatX)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"THEANINE_FLAGS": "device=cpu,floatX=float32", "PATH": ""},
                         check=True).stdout
    assert out.split() == ["cpu", "float32"]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"THEANINE_FLAGS": "floatX=float9", "PATH": ""})
    assert bad.returncode != 0 and "THEANINE_FLAGS" in bad.stderr


def test_config_sections_take_theanos_grouped_flags():
    """`config.warn.subtensor_merge_bug` and `config.scan.allow_gc`, as ported programs set them,
    from code and from the flags; misspelt ones are refused by name."""
    old = th.config.warn.subtensor_merge_bug
    th.config.warn.subtensor_merge_bug = False
    try:
        assert th.config.warn.subtensor_merge_bug is False
        th.config.warn.subtensor_merge_bug = "true"
        assert th.config.warn.subtensor_merge_bug is True
    finally:
        th.config.warn.subtensor_merge_bug = old
    with pytest.raises(AttributeError, match="config.warn has no option 'subtensor_bug'"):
        th.config.warn.subtensor_bug = False
    with pytest.raises(ValueError, match="boolean"):
        th.config.scan.allow_gc = "maybe"
    code = "import theanine as th; print(th.config.scan.allow_gc, th.config.floatX)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"THEANO_FLAGS": "scan.allow_gc=False,floatX=float32", "PATH": ""},
                         check=True).stdout
    assert out.split() == ["False", "float32"]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"THEANO_FLAGS": "scan.alow_gc=False", "PATH": ""})
    assert bad.returncode != 0 and "THEANO_FLAGS" in bad.stderr and "alow_gc" in bad.stderr


def test_per_call_overhead_is_small_relative_to_numpy():
    """Not a timing assertion: checks the hot path does no per-node Python work besides the
    op calls, by counting the generated executor's statements."""
    a, b = T.dvector("a"), T.dvector("b")
    f = th.function([a, b], a ** 2 + b ** 2 + 2 * a * b, backend="numpy")
    src = f._run.source
    assert src.count(" = f") == len(f.fgraph.nodes)


def test_debug_mode_accepts_stabilized_results_but_not_wrong_ones():
    """log(sigmoid(x)) is rewritten to -softplus(-x): at x = -800 the original graph gives -inf
    and the rewritten one -800. DebugMode accepts that; a backend differing from the reference
    is still an error."""
    x = T.dvector("x")
    f = th.function([x], T.log(T.nnet.sigmoid(x)), mode="DebugMode")
    np.testing.assert_allclose(f(np.array([-800.0, 0.0])), [-800.0, -np.log(2.0)])
    from theanine.compile.debugmode import debug_executor

    g = th.function([x], x * 2, mode="FAST_COMPILE")
    finite = debug_executor(g.fgraph, g.fgraph, lambda v: (np.where(np.isfinite(v), v * 2, 0),))
    old = th.config.debug_check_nan
    th.config.debug_check_nan = False
    try:
        with pytest.raises(th.DebugModeError, match="differs between the backend and the NumPy"):
            finite(np.array([1.0, np.inf]))
    finally:
        th.config.debug_check_nan = old


def test_missing_input_error_and_theano_dot():
    """A function reading an input it is not given raises MissingInputError (Theano's name, a
    GraphError); `theanine.dot` is tensor.dot, as `theano.dot` is."""
    x, y = T.dvector("x"), T.dvector("y")
    with pytest.raises(th.MissingInputError, match="Input y") as e:
        th.function([x], x + y)
    assert isinstance(e.value, th.graph.GraphError)
    a, b = T.dmatrix("a"), T.dmatrix("b")
    av, bv = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(th.function([a, b], th.dot(a, b))(av, bv), av @ bv)


def test_scalar_upcast_is_the_dtype_of_a_sum():
    """`theanine.scalar.upcast` (hmc.py's call) names the dtype elementwise `+` gives."""
    for dts in [("int8", "float32"), ("int64", "float32"), ("float32", "float64"),
                ("int32", "int64", "uint8"), ("bool", "int8")]:
        xs = [T.tensor(d, shape=(), name=f"x{i}") for i, d in enumerate(dts)]
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        assert th.scalar.upcast(*dts) == total.dtype
        assert th.scalar.upcast(*dts) == str(functools.reduce(np.add, [np.zeros(1, d)
                                                                       for d in dts]).dtype)


def test_theanos_random_modules_need_no_import_of_their_own():
    """A fresh program reaches T.shared_randomstreams and theano.sandbox.rng_mrg after only
    `import theano` (the Loop tutorial's and hmc.py's use), and draws from them."""
    code = ("import theanine as theano, theanine.tensor as T\n"
            "d = T.shared_randomstreams.RandomStreams(1234).binomial(size=(4,))\n"
            "u = theano.sandbox.rng_mrg.MRG_RandomStreams(1).uniform(size=(3,))\n"
            "a, b = theano.function([], [d, u])()\n"
            "print(sorted(set(a.tolist()) | {0, 1}), b.shape, float(b.min()) >= 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": ""}, check=True).stdout
    assert out.split("\n")[0] == "[0, 1] (3,) True"


def test_config_on_unused_input_is_functions_default_and_theanos_flags_exist():
    x, y = T.dvector("x"), T.dvector("y")
    old = th.config.on_unused_input
    try:
        th.config.on_unused_input = "ignore"
        np.testing.assert_array_equal(th.function([x, y], x * 2)([1.0], [5.0]), [2.0])
        with pytest.raises(UnusedInputError):
            th.function([x, y], x * 2, on_unused_input="raise")
    finally:
        th.config.on_unused_input = old
    with pytest.raises(UnusedInputError):
        th.function([x, y], x * 2)
    with pytest.raises(ValueError, match="config.on_unused_input must be one of"):
        th.config.on_unused_input = "sometimes"
    th.config.exception_verbosity = "high"
    th.config.exception_verbosity = "low"
    assert th.config.allow_gc is True and th.config.openmp is False


def test_ordered_updates_merge_and_refuse_non_shared_keys():
    """theanine.OrderedUpdates, as Theano programs build them: shared keys only, `+` merges
    and keeps the order, a variable updated twice raises; function() applies them."""
    a, b = th.shared(1.0, name="a"), th.shared(10.0, name="b")
    ups = th.OrderedUpdates()
    ups[a] = a + 1
    more = th.OrderedUpdates([(b, b * 2)])
    merged = ups + more
    assert list(merged) == [a, b] and isinstance(merged, th.OrderedUpdates)
    th.function([], [], updates=merged)()
    assert (a.get_value(), b.get_value()) == (2.0, 20.0)
    with pytest.raises(TypeError, match="keys must be shared variables"):
        ups[T.dscalar("x")] = 1.0
    with pytest.raises(KeyError, match="updated twice"):
        ups + {a: a * 3}
