"""The conformance suite (theanine.testing) over every available backend, the meta-tests that
every op and public function of the library has a conformance case, and tests of the kit
itself: a backend that computes something else, changes its inputs or declares a dtype
unsupported is caught (or skipped with the reason)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theanine.tensor as T
from theanine.backend import backends
from theanine.backends.numpy.backend import NumpyBackend
from theanine.graph.basic import Op
from theanine.op_table import OpTable
from theanine.tensor.linalg import Dot
from theanine.testing import meta
from theanine.testing.cases import all_cases
from theanine.testing.compare import (
    ConformanceError,
    PreparedComparison,
    Unsupported,
    compare_backend,
    mismatch,
)
from theanine.testing.strategies import Domain, arrays, broadcast_shapes, dtypes
from theanine.testing.test_suite import (  # noqa: F401 (run here; the meta-test included)
    test_bad_call,
    test_case,
    test_draw_distribution,
    test_draw_identity,
    test_every_op_has_a_case,
    test_every_op_has_an_implementation,
    test_random_graph,
    test_random_scan,
)

pytest_plugins = ["pytester"]




def test_meta_tests_notice_a_missing_case():
    without = [c for c in all_cases() if c.name not in ("log10", "softmax")]
    assert {"log10", "Softmax"} <= set(meta.uncovered_ops(without))
    assert {"log10", "softmax"} <= set(meta.uncovered_functions(without))


def test_library_op_classes_are_found():
    classes = meta.library_op_classes()
    assert {"Dot", "Reduce", "Subtensor", "StopGradient", "Gemm"} <= set(classes)
    assert "Elemwise" not in classes and "_SoftmaxBase" not in classes


@pytest.mark.parametrize("name", sorted(backends()))
def test_every_registered_backend_with_a_table_implements_every_library_op(name):
    """Available here or not: the table is a declaration, read without running anything."""
    backend = backends()[name]
    if backend.impls is None:
        pytest.skip(f"backend {name!r} has no op table")
    assert meta.unimplemented_ops(backend) == []


def test_the_table_meta_test_notices_a_missing_or_generic_entry():
    class Partial(NumpyBackend):
        impls = OpTable("partial")

    run = NumpyBackend.impls[Op].fn
    Partial.impls.add(Op, run)
    Partial.impls.add(Dot, run)
    missing = meta.unimplemented_ops(Partial())
    assert "Dot" not in missing and {"Reshape", "Gemm", "Softmax"} <= set(missing)
    assert len(missing) == len(meta.library_op_classes()) - 1
    assert meta.unimplemented_ops(type("NoTable", (NumpyBackend,), {"impls": None})()) == []


# -- the kit catches a misbehaving backend -------------------------------------------------------
class _Tampering(NumpyBackend):
    """The reference backend with its results changed by `tamper(inputs, outputs)`."""

    def __init__(self, name, tamper, capabilities=None):
        self.name, self.tamper, self.capabilities = name, tamper, capabilities

    def compile(self, fgraph):
        run = super().compile(fgraph)
        return lambda *args: self.tamper(args, list(run(*args)))


@pytest.fixture
def install(monkeypatch):
    def add(tamper, capabilities=None, name="tampering"):
        monkeypatch.setitem(backends(), name, _Tampering(name, tamper, capabilities))
        return name

    return add


def _exp_graph(dtype="float32"):
    x = T.tensor(dtype, shape=(None, None), name="x")
    value = np.linspace(-1, 2, 6, dtype=dtype).reshape(2, 3)
    return [x], [T.exp(x)], [value]


def _scale(factor, which=0):
    def tamper(args, outs):
        outs[which] = outs[which] * np.asarray(factor, outs[which].dtype)
        return outs

    return tamper


def test_a_backend_agreeing_with_the_reference_passes(install):
    compare_backend(install(_scale(1 + 3e-7)), *_exp_graph(), label="exp")


def test_a_wrong_output_is_reported_with_case_dtype_and_shapes(install):
    with pytest.raises(ConformanceError, match=r"(?s)exp \[float32\].*output 0 \[.*dtype "
                                               r"float32\]: \d of 6 elements differ.*"
                                               r"float32\[2, 3\]"):
        compare_backend(install(_scale(1 + 3e-5)), *_exp_graph(), label="exp [float32]")


def test_a_wrong_gradient_is_reported(install):
    with pytest.raises(ConformanceError, match="gradient wrt input 0 \\(x\\)"):
        compare_backend(install(_scale(1 + 1e-9, which=1)), *_exp_graph("float64"))


def test_a_wrong_dtype_is_reported(install):
    def widen(args, outs):
        return [o.astype(np.float64) for o in outs]

    with pytest.raises(ConformanceError, match="dtype differs: expected float32"):
        compare_backend(install(widen), *_exp_graph(), grad=False)


def test_a_backend_writing_into_its_inputs_is_caught(install):
    def scribble(args, outs):
        args[0][...] = 0
        return outs

    with pytest.raises(ConformanceError, match="input 0 \\(x\\) was modified in place"):
        compare_backend(install(scribble), *_exp_graph(), grad=False)


def test_a_result_sharing_memory_with_an_input_is_caught(install):
    def hand_back_input(args, outs):
        return [args[0]]

    with pytest.raises(ConformanceError, match="result 0 shares memory with input 0"):
        compare_backend(install(hand_back_input), *_exp_graph(), grad=False)


def test_a_backend_reusing_a_returned_buffer_is_caught(install):
    kept = {}

    def reuse(args, outs):
        buf = kept.setdefault("buf", np.empty_like(outs[0]))
        buf[...] = outs[0]
        return [buf]

    inputs, outputs, values = _exp_graph()
    prepared = PreparedComparison(install(reuse), inputs, outputs, grad=False)
    prepared.check(values)
    with pytest.raises(ConformanceError, match="result 0 of the previous call changed"):
        prepared.check([values[0] + 1])


def test_declared_capabilities_skip_instead_of_failing(install):
    no_f64 = install(_scale(1), {"dtypes": {"float32", "bool", "int64"}}, name="no-float64")
    compare_backend(no_f64, *_exp_graph("float32"))
    with pytest.raises(Unsupported, match="'no-float64' does not support dtype float64"):
        compare_backend(no_f64, *_exp_graph("float64"))
    no_exp = install(_scale(1), {"unsupported_ops": {"exp": "no exp kernel"}}, name="no-exp")
    with pytest.raises(Unsupported, match="does not support exp: no exp kernel"):
        compare_backend(no_exp, *_exp_graph())


@pytest.mark.parametrize("expected, actual, dtype, problem", [
    ([1.0, np.nan, np.inf], [1.0 + 1e-6, np.nan, np.inf], "float32", None),
    ([1.0, np.nan], [1.0, 1.0], "float64", "1 of 2 elements differ"),
    ([np.inf], [-np.inf], "float64", "1 of 1 elements differ"),
    ([3, 4], [3, 5], "int32", "must agree exactly"),
    ([1000.0, 0.0], [1000.0, 1e-3], "float32", "1 of 2"),
])
def test_mismatch(expected, actual, dtype, problem):
    e, a = np.array(expected, dtype), np.array(actual, dtype)
    found = mismatch(e, a, dtype, scaled=False)
    assert (found is None) if problem is None else (problem in found)


def test_scaled_tolerance_allows_rounding_relative_to_the_largest_value():
    e = np.array([1000.0, 0.0], "float32")
    assert mismatch(e, np.array([1000.0, 1e-3], "float32"), "float32", scaled=True) is None


# -- strategies ----------------------------------------------------------------------------------
@given(broadcast_shapes([(None, None, None), (None, 1), (None,), ()]))
def test_broadcast_shapes_broadcast_together(shapes):
    assert [len(s) for s in shapes] == [3, 2, 1, 0] and shapes[1][1] == 1
    np.broadcast_shapes(*shapes)


@given(st.data())
def test_arrays_have_the_dtype_shape_and_domain_asked_for(data):
    dtype = data.draw(dtypes(with_float16=True, with_complex=True))
    shape = data.draw(st.tuples(*[st.integers(0, 3)] * data.draw(st.integers(0, 3))))
    a = data.draw(arrays(dtype, shape, Domain(-2, 3, specials=True)))
    assert a.dtype == dtype and a.shape == shape
    parts = [a.real, a.imag] if a.dtype.kind == "c" else [a]
    for p in parts:
        finite = p[np.isfinite(p)].astype(np.float64)
        assert ((finite >= -2) & (finite <= 3)).all()


# -- the pytest plugin ---------------------------------------------------------------------------
def _run_suite(pytester, *args):
    return pytester.runpytest_inprocess("--pyargs", "theanine.testing", "-p",
                                        "theanine.testing.pytest_plugin", "--theanine-jobs", "1",
                                        "-p", "no:cacheprovider", *args)


def test_plugin_prints_the_coverage_matrix_with_skip_reasons(pytester, install):
    name = install(_scale(1), {"dtypes": {"float32", "bool", "int64"}}, name="no-float64")
    result = _run_suite(pytester, "--theanine-backend", name, "-k", "test_case and sqrt-float")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.re_match_lines([r".*op x dtype coverage.*",
                                  r"backend 'no-float64' vs the numpy reference",
                                  r"sqrt\s+ok\s+s1$", r"1 ok, 0 failed, 1 skipped",
                                  r"\s+s1: backend 'no-float64' does not support dtype float64"])


def test_plugin_reports_failures_in_the_matrix(pytester, install):
    name = install(_scale(2), name="doubling")
    result = _run_suite(pytester, "--theanine-backend", name, "-k", "test_case and exp2-float64")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([r"exp2\s+FAIL$", r"0 ok, 1 failed, 0 skipped"])


def test_plugin_rejects_an_unknown_backend(pytester):
    result = _run_suite(pytester, "--theanine-backend", "no-such-backend")
    result.stderr.re_match_lines([r".*unknown backend\(s\) no-such-backend; registered: .*"])


def test_plugin_report_feeds_the_coverage_matrix(pytester, install, capsys):
    from theanine.__main__ import main

    install(_scale(1), {"dtypes": {"float32"}}, name="float32-only")
    install(_scale(2), name="doubling")
    report = pytester.path / "report.json"
    result = _run_suite(pytester, "--theanine-backend", "float32-only", "--theanine-backend",
                        "doubling", "--theanine-report", str(report), "-k",
                        "test_case and sqrt-float")
    result.assert_outcomes(passed=1, skipped=1, failed=2)
    assert main(["info", "--coverage", "--results", str(report), "--format", "md"]) == 1
    out = capsys.readouterr().out
    assert "| sqrt | float32-only | ok | n/a1 |" in out
    assert "| sqrt | doubling | FAIL | FAIL |" in out
    assert "- n/a1: backend 'float32-only' does not support dtype float64" in out
    assert "1 supported, 1 unsupported, 2 failing" in out


# -- the checks of random draws ------------------------------------------------------------------
def test_ks_statistic_and_critical_value_match_hand_computed_ones():
    from theanine.testing.random_cases import ks_critical, ks_statistic

    def cdf(v):
        return np.clip(v, 0, 1)

    # at 0.7 the empirical cdf jumps to 1 where F is 0.7; just before 0.4 it is 1/3 vs 0.4
    assert ks_statistic(np.array([0.4, 0.1, 0.7]), cdf, cdf) == pytest.approx(0.3)
    assert ks_statistic(np.array([0.9, 0.9, 0.9]), cdf, cdf) == pytest.approx(0.9)
    # Kolmogorov's 5% and 0.1% points: 1.3581 / sqrt(n), 1.9495 / sqrt(n) for large n
    assert ks_critical(10**8, 0.05) * 10**4 == pytest.approx(1.3581, abs=1e-4)
    assert ks_critical(10**8, 0.001) * 10**4 == pytest.approx(1.9495, abs=1e-4)


def test_sample_checks_accept_the_distribution_and_refuse_others():
    from theanine.testing.random_cases import SAMPLE_SIZE, sample_problem

    rng = np.random.default_rng(5)
    n = SAMPLE_SIZE
    assert sample_problem("uniform", (-3.0, 2.0), rng.uniform(-3, 2, n)) is None
    assert sample_problem("normal", (2.5, 0.5), rng.normal(2.5, 0.5, n)) is None
    assert sample_problem("binomial", (1, 0.1), rng.random(n) < 0.1) is None
    assert sample_problem("binomial", (10, 0.3), rng.binomial(10, 0.3, n)) is None
    assert "variance" in sample_problem("binomial", (10, 0.3), np.minimum(rng.poisson(3, n), 10))
    assert "mean" in sample_problem("uniform", (0.0, 1.0), rng.uniform(0, 1, n) ** 0.95)
    assert "outside [0.0, 1.0]" in sample_problem("uniform", (0.0, 1.0), rng.uniform(0, 1.01, n))
    assert "variance" in sample_problem("normal", (0.0, 1.0), rng.normal(0, 1.02, n))
    # mean 0 and variance 1, the wrong shape: only the KS test sees it
    flat = rng.uniform(-3 ** 0.5, 3 ** 0.5, n)
    assert "KS statistic" in sample_problem("normal", (0.0, 1.0), flat)
    assert "mean" in sample_problem("binomial", (1, 0.5), rng.random(n) < 0.52)
    assert "not finite" in sample_problem("normal", (0.0, 1.0), np.full(n, np.nan))


def test_identity_check_wants_uniform_bits_and_normal_rounding():
    from theanine.testing.random_cases import identity_problem

    e = np.array([0.25, 0.5, 3.0], np.float32)
    assert identity_problem("uniform", "float32", e, e.copy()) is None
    off = e.copy()
    off[1] = np.nextafter(off[1], np.float32(1))
    assert "1 of 3 elements differ from philox (must agree bit for bit); first at (1,)" in \
        identity_problem("uniform", "float32", e, off)
    assert identity_problem("normal", "float32", e, e * np.float32(1 + 1e-6)) is None
    assert "within 2e-06" in identity_problem("normal", "float32", e, e * np.float32(1 + 1e-5))
    assert "got float64[3]" in identity_problem("uniform", "float32", e, e.astype(np.float64))


def _nudge_floats(args, outs):
    return [np.nextafter(o, np.inf).astype(o.dtype) if o.dtype.kind == "f" else o for o in outs]


def test_draw_checks_catch_a_backend_with_other_numbers(install):
    from theanine.testing.test_suite import _identity_functions, _samples

    name = install(_nudge_floats, name="nudging")
    try:
        with pytest.raises(AssertionError, match=r"uniform draws \[float32\] on backend "
                                                 r"'nudging', x of shape \(317, 331\).*output 0"):
            test_draw_identity(name, "uniform", "float32")
    finally:
        _identity_functions.pop((name, "float32"), None)

    def biased(args, outs):
        return [np.minimum(o * o.dtype.type(1.02), 1) for o in outs]

    name = install(biased, name="biased")
    try:
        with pytest.raises(AssertionError, match=r"uniform\(0.0, 1.0\): mean"):
            test_draw_distribution(name, "uniform", "float64")
    finally:
        _samples.pop((name, "float64"), None)


def test_plugin_reports_each_random_check_as_a_row(pytester):
    result = _run_suite(pytester, "--theanine-backend", "numpy", "-k",
                        "test_draw_identity and uniform-float32 or "
                        "test_draw_distribution and binomial-float32")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([r"draw identity \(uniform\)\s+ok$",
                                  r"draw distribution \(binomial\)\s+ok$"])


def test_draw_checks_skip_a_backend_declaring_the_dtype_unsupported(install):
    name = install(_scale(1), {"dtypes": {"float32", "bool", "int64", "uint64"}},
                   name="no-float64")
    for check, variant in ((test_draw_identity, "normal"), (test_draw_distribution, "uniform")):
        with pytest.raises(pytest.skip.Exception, match="does not support dtype float64"):
            check(name, variant, "float64")
