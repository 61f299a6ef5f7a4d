"""The conformance suite: every registered case for each of its dtypes (forward and gradient,
drawn shapes, layouts and values) and random expression graphs, run on each selected backend
against the NumPy reference.

    pytest --pyargs theanine.testing --theanine-backend c

and careless calls (bad dtypes, shapes, strings, NaN, ...) of compiled functions, which must be
answered as NumPy does or refused naming the input; random draws are held to Philox's bits and to
their distributions (theanine.testing.random_cases).

A project's own tests can import these test functions into a test module (with
`pytest_plugins = ["theanine.testing.pytest_plugin"]` there).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from theanine import function
from theanine.testing import meta
from theanine.testing.bad_inputs import BAD_CALL_GRAPHS, check_bad_call
from theanine.testing.compare import PreparedComparison, Unsupported, check_supported, mismatch
from theanine.testing.random_cases import (
    DISTRIBUTIONS,
    IDENTITY,
    IDENTITY_SHAPES,
    distribution_samples,
    identity_expected,
    identity_graph,
    identity_inputs,
    identity_problem,
    sample_problem,
)
from theanine.testing.scan_cases import finite_difference_problem, scan_programs
from theanine.testing.strategies import FLOATS, expression_graphs

pytest_plugins = ["theanine.testing.pytest_plugin"]

# compiling happens before the examples run, so per-example time is small but varies with
# the machine: no deadline
SUITE_SETTINGS = {"deadline": None,
                  "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture,
                                            HealthCheck.data_too_large,
                                            HealthCheck.large_base_example]}
_SEEDS = st.integers(0, 2**32 - 1)


def _prepare(backend: str, inputs, outputs, **kw) -> PreparedComparison:
    try:
        return PreparedComparison(backend, inputs, outputs, **kw)
    except Unsupported as e:
        pytest.skip(str(e))


def test_case(conformance_backend: str, conformance_case) -> None:
    """One case at one dtype: a graph compiled once, checked on several draws."""
    case, dtype = conformance_case
    inputs, outputs = case.graph(dtype)
    prepared = _prepare(conformance_backend, inputs, outputs, grad=case.grad,
                        label=f"case {case.name!r} [{dtype}]", accumulates=case.accumulates)

    @settings(**SUITE_SETTINGS)
    @given(data=st.data())
    def check(data):
        values = case.draw_values(data, dtype)
        prepared.check(values, np.random.default_rng(data.draw(_SEEDS, label="seed")))

    check()


@pytest.mark.parametrize("conformance_dtype", FLOATS)
@settings(**SUITE_SETTINGS)
@given(data=st.data())
def test_random_graph(conformance_backend: str, conformance_dtype: str, data) -> None:
    """A random expression (elementwise, reductions, transposes, dot) and its gradient: the
    reference matches NumPy, and the backend matches the reference."""
    graph = data.draw(expression_graphs(dtypes=(conformance_dtype,)), label="graph")
    prepared = _prepare(conformance_backend, graph.inputs, graph.outputs,
                        label=f"random graph {graph.text} [{conformance_dtype}]",
                        accumulates=True)
    with np.errstate(all="ignore"):
        reference = prepared.ref_forward(*graph.values)
    for k, (e, r) in enumerate(zip(graph.expected, reference)):
        problem = mismatch(e, np.asarray(r), graph.outputs[k].dtype, scaled=True)
        assert problem is None, f"reference backend vs NumPy on {graph.text}: {problem}"
    prepared.check(graph.values, np.random.default_rng(data.draw(_SEEDS, label="seed")))


@pytest.mark.parametrize("conformance_dtype", FLOATS)
@settings(**SUITE_SETTINGS, max_examples=4)  # each example compiles a loop and its BPTT
@given(data=st.data())
def test_random_scan(conformance_backend: str, conformance_dtype: str, data) -> None:
    """A random scan (drawn taps, step, go_backwards, truncate_gradient, n_steps) and its
    gradient: the reference matches a NumPy loop and, in float64 without truncation, finite
    differences; the backend matches the reference."""
    scan = data.draw(scan_programs(conformance_dtype), label="scan")
    prepared = _prepare(conformance_backend, scan.inputs, scan.outputs,
                        label=f"random {scan.text} [{conformance_dtype}]")
    reference = prepared.ref_forward(*scan.values)
    for k, (e, r) in enumerate(zip(scan.expected, reference)):
        problem = mismatch(e, np.asarray(r), scan.outputs[k].dtype, scaled=False)
        assert problem is None, f"reference backend vs a NumPy loop on {scan.text}: {problem}"
    rng = np.random.default_rng(data.draw(_SEEDS, label="seed"))
    if conformance_dtype == "float64" and scan.exact_gradient:
        projs = [rng.uniform(0.5, 1.5, np.shape(r)) for r in reference]
        grads = prepared.ref_full(*scan.values, *projs)[len(reference):]
        problem = finite_difference_problem(
            lambda vals: sum(float((np.asarray(o) * p).sum())
                             for o, p in zip(prepared.ref_forward(*vals), projs)),
            grads, scan.values, prepared.wrt)
        assert problem is None, f"reference backend on {scan.text}: {problem}"
    prepared.check(scan.values, rng)


_bad_call_functions: dict = {}


@pytest.mark.parametrize("bad_call_graph", sorted(BAD_CALL_GRAPHS))
@settings(**SUITE_SETTINGS)
@given(data=st.data())
def test_bad_call(conformance_backend: str, bad_call_graph: str, data) -> None:
    """A generated careless call (wrong or lossy dtype, rank, static shape, strings, dates,
    None, NaN/inf, empty, non-contiguous, lists): NumPy's answer, or an error naming the input;
    never a crash, a wrap-around or a wrong answer. Each graph is compiled once per backend."""
    key = (conformance_backend, bad_call_graph)
    if key not in _bad_call_functions:
        inputs, output, reference = BAD_CALL_GRAPHS[bad_call_graph]()
        _bad_call_functions[key] = (function(inputs, output, backend=conformance_backend),
                                    inputs, reference)
    f, inputs, reference = _bad_call_functions[key]
    check_bad_call(f, inputs, reference, data)


_identity_functions: dict = {}


@pytest.mark.parametrize("conformance_dtype", FLOATS)
@pytest.mark.parametrize("conformance_variant", IDENTITY)
def test_draw_identity(conformance_backend: str, conformance_variant: str,
                       conformance_dtype: str) -> None:
    """The backend's uniform (normal) draws are Philox's bits (to the rounding of log, sqrt
    and cos), fused with broadcasting, transposing and masking work, for empty sizes, sizes
    that are no multiple of four and sizes split across threads. One function per backend and
    dtype draws both kinds."""
    kind, dtype = conformance_variant, conformance_dtype
    key = (conformance_backend, dtype)
    if key not in _identity_functions:
        inputs, by_kind = identity_graph(dtype)
        outputs = [o for kind_outputs in by_kind.values() for o in kind_outputs]
        try:
            check_supported(conformance_backend, outputs)
        except Unsupported as e:
            pytest.skip(str(e))
        _identity_functions[key] = (function(inputs, outputs, backend=conformance_backend),
                                    by_kind)
    f, by_kind = _identity_functions[key]
    first = sum(len(by_kind[k]) for k in IDENTITY[:IDENTITY.index(kind)])
    for k, shape in enumerate(IDENTITY_SHAPES):
        x, state = identity_inputs(dtype, shape, k)
        got = f(x, state)[first:first + len(by_kind[kind])]
        for j, (e, a) in enumerate(zip(identity_expected(kind, dtype, x, state), got)):
            problem = identity_problem(kind, dtype, e, a)
            assert problem is None, (
                f"{kind} draws [{dtype}] on backend {conformance_backend!r}, x of shape "
                f"{shape}, state {state.tolist()}: output {j} ({by_kind[kind][j]}): {problem}")


_samples: dict = {}


@pytest.mark.parametrize("conformance_dtype", FLOATS)
@pytest.mark.parametrize("conformance_variant", sorted(DISTRIBUTIONS))
def test_draw_distribution(conformance_backend: str, conformance_variant: str,
                           conformance_dtype: str) -> None:
    """RandomStream's draws (a fixed seed) have their distribution's mean and variance and
    pass a Kolmogorov-Smirnov test, for several parameters. One compiled function per backend
    and dtype draws the samples of every distribution."""
    key = (conformance_backend, conformance_dtype)
    if key not in _samples:
        try:
            _samples[key] = distribution_samples(*key)
        except Unsupported as e:
            pytest.skip(str(e))
    name = conformance_variant
    problems = [f"{name}{params}: {problem}" for params in DISTRIBUTIONS[name].params
                if (problem := sample_problem(name, params, _samples[key][name, params]))]
    assert not problems, (f"random draws [{conformance_dtype}] on backend "
                          f"{conformance_backend!r}: " + "; ".join(problems))


def test_every_op_has_a_case() -> None:
    """Every op and public function of the library and of the installed op plugins appears in
    a conformance case (an op without one would go untested on every backend)."""
    ops, functions = meta.uncovered_ops(), meta.uncovered_functions()
    assert not ops and not functions, (
        f"no conformance case for ops {ops} / functions {functions}: register a "
        "theanine.testing.cases.Case for each (a plugin through theanine_register_cases)")


def test_every_op_has_an_implementation(conformance_backend: str) -> None:
    """The backend's op table (if it has one) gives every library op an entry of its own, not
    only the generic one that runs perform (meant for users' ops)."""
    from theanine.backend import backends

    backend = backends()[conformance_backend]
    if backend.impls is None:
        pytest.skip(f"backend {conformance_backend!r} has no op table")
    missing = meta.unimplemented_ops(backend)
    assert not missing, (
        f"backend {conformance_backend!r} has no implementation of ops {missing}: register one "
        "for each in its op table (@table.register(OpClass))")
