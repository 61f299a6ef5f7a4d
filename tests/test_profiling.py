"""The profiler (theanine.compile.profiling): function(profile=...) and config.profile record
calls, compile time by stage and rewrite pass, and each step's time on every backend;
summary() prints Theano's sections; an unprofiled function carries no timing code."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends, get_backend
from theanine.compile import ProfileStats, profiling
from theanine.compile.profiling import FusedKernel
from theanine.config import config

BACKENDS = ["numpy", "c", "opencl"]
N_CALLS = 4


def _backend(name: str) -> str:
    if name == "opencl":
        ok, why = backends()["opencl"].available()
        if not ok:
            pytest.skip(f"OpenCL backend unavailable: {why}")
    return name


def _training_step(backend: str, profile):
    """A logistic layer's cost and its SGD update: a product, fused elementwise work, a
    reduction and (on C and the GPU) a Gemm."""
    x = T.dmatrix("x")
    W = th.shared(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    cost = T.sum(T.nnet.sigmoid(T.dot(x, W)) ** 2)
    return th.function([x], cost, updates=[(W, W - 0.1 * T.grad(cost, W))], backend=backend,
                       profile=profile, name="train")


def _nodes(entry) -> list:
    return list(entry.nodes) if isinstance(entry, FusedKernel) else [entry]


@pytest.mark.parametrize("backend", BACKENDS)
def test_profile_records_calls_steps_and_compile_time(backend):
    backend = _backend(backend)
    p = ProfileStats(atexit_print=False)
    f = _training_step(backend, p)
    plain = _training_step(backend, None)
    assert f.profile is p and plain.profile is None
    data = np.arange(12.0).reshape(4, 3) / 10
    for _ in range(N_CALLS):
        np.testing.assert_allclose(f(data), plain(data), rtol=1e-12)
    assert p.fct_callcount == N_CALLS and p.fct_call_time > 0
    [table] = p.tables
    assert table.backend == backend
    # every node of the compiled graph is timed, in exactly one step, each run every call
    timed = [n for e in table.entries for n in _nodes(e)]
    assert sorted(map(id, timed)) == sorted(map(id, f.fgraph.nodes))
    assert set(p.apply_callcount.values()) == {N_CALLS}
    times = list(p.apply_time.values())
    assert all(t >= 0 for t in times) and sum(times) > 0
    assert sum(times) <= p.fct_call_time * 1.1 + 1e-3
    if backend != "numpy":  # the lowered program's fused kernels are steps of their own
        assert any(isinstance(e, FusedKernel) and len(e.nodes) > 1 for e in table.entries)
        assert len(table.entries) == len(f.fgraph.nodes) - sum(
            len(e.nodes) - 1 for e in table.entries if isinstance(e, FusedKernel))
    # compile time: the rewrite passes by name and the backend's stages, inside the total
    passes = {name for stage, name in p.phases if stage == "rewrite"}
    assert {"canonicalize", "specialize", "merge1"} <= passes
    assert ("codegen", "") in p.phases
    expected = {"numpy": set(), "c": {("compiler", "cache"), ("load", "")},
                "opencl": {("compiler", "opencl kernels")}}[backend]
    assert expected <= set(p.phases)
    assert all(t >= 0 for t in p.phases.values())
    assert sum(p.phases.values()) <= p.compile_time
    assert any(s.applied > 0 for s in p.rewrites.values())
    assert all(s.calls >= s.applied for s in p.rewrites.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_summary_prints_theano_sections(backend):
    backend = _backend(backend)
    p = ProfileStats(atexit_print=False, message="train step")
    f = _training_step(backend, p)
    f(np.ones((4, 3)))
    out = io.StringIO()
    p.summary(file=out, n_ops_to_print=2, n_apply_to_print=3)
    text = out.getvalue()
    for line in ["Function profiling", "Message: train step",
                 "Time in 1 calls to Function.__call__", "Total compile time",
                 "Rewrites time", "canonicalize", "Code generation time", "\nClass\n---",
                 "\nOps\n---", "\nApply\n------", "<% time> <sum %> <apply time> "
                 "<time per call> <#call> <id> <Apply name>", f"{backend} steps timed by"]:
        assert line in text, line
    apply_lines = text.split("<Apply name>\n")[1].splitlines()
    shown = [ln for ln in apply_lines if ln.strip() and not ln.strip().startswith("...")]
    assert len(shown) == 3 and all(ln.strip().endswith(")") for ln in shown)
    assert f"remaining {len(p.apply_time) - 3} Apply instances" in text
    assert "Dot" in text
    if backend != "numpy":
        assert "FusedKernel{" in text
    # the cumulative share of the full Apply section ends at 100%
    full = io.StringIO()
    p.summary(file=full, n_apply_to_print=100)
    last = full.getvalue().split("<Apply name>\n")[1].splitlines()[-3]
    assert last.split()[1] == "100.0%"


def test_profile_argument_forms():
    x = T.dvector("x")
    assert th.function([x], x * 2, backend="numpy").profile is None
    f = th.function([x], x * 2, backend="numpy", profile=True, name="double")
    f.profile.atexit_print = False
    assert isinstance(f.profile, ProfileStats) and f.profile.message == "double"
    g = th.function([x], x + 1, backend="numpy", profile="by name")
    g.profile.atexit_print = False
    assert g.profile.message == "by name"
    shared = ProfileStats(atexit_print=False)
    a = th.function([x], x * 2, backend="numpy", profile=shared)
    b = th.function([x], x + 1, backend="numpy", profile=shared)
    a([1.0]), b([1.0]), b([2.0])
    assert shared.fct_callcount == 3 and len(shared.tables) == 2
    with pytest.raises(TypeError, match="profile"):
        th.function([x], x, backend="numpy", profile=3)
    assert th.compile.profiling is profiling


def test_config_profile():
    x = T.dvector("x")
    assert config.profile is False
    config.profile = True
    try:
        f = th.function([x], x * 2, backend="numpy", name="flagged")
    finally:
        config.profile = False
    f.profile.atexit_print = False
    f([1.0, 2.0])
    assert f.profile.fct_callcount == 1 and f.profile.message == "flagged"
    with pytest.raises(ValueError):
        config.profile = "sometimes"


@pytest.mark.parametrize("var", ["THEANO_FLAGS", "THEANINE_FLAGS"])
def test_config_profile_prints_at_exit(var):
    code = ("import numpy as np, theanine as th, theanine.tensor as T\n"
            "x = T.dvector('x')\n"
            "f = th.function([x], T.exp(x) * 2, backend='numpy', name='at_exit_fn')\n"
            "f(np.ones(3)); f(np.ones(3))\n"
            "assert f.profile is not None\n")
    env = {**os.environ, var: "profile=True"}
    env.pop("THEANINE_FLAGS" if var == "THEANO_FLAGS" else "THEANO_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Function profiling" in r.stderr
    assert "Message: at_exit_fn" in r.stderr
    assert "Time in 2 calls to Function.__call__" in r.stderr
    assert "exp" in r.stderr.split("\nApply\n")[1]


def test_exit_print_follows_theanos_profiling_flags(tmp_path):
    """config.profiling.destination (a file here), n_apply and n_ops shape what is printed at
    exit; profile_optimizer and profile_memory are accepted as in Theano."""
    dest = tmp_path / "profile.txt"
    code = ("import numpy as np, theanine as th, theanine.tensor as T\n"
            "x = T.dvector('x')\n"
            "f = th.function([x], T.exp(x) * 2 + 1, backend='numpy', name='to_file')\n"
            "f(np.ones(3))\n")
    env = {**os.environ, "THEANINE_FLAGS": f"profile=True,profiling.n_apply=1,"
           f"profiling.n_ops=1,profiling.destination={dest},profile_optimizer=True,"
           "profile_memory=False"}
    env.pop("THEANO_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Function profiling" not in r.stderr
    text = dest.read_text()
    assert "Message: to_file" in text
    n_nodes = 3  # exp, mul, add (no fusion on the reference)
    assert f"remaining {n_nodes - 1} Apply instances" in text
    assert "remaining 0 Classes" in text and f"remaining {n_nodes - 1} Ops" in text
    with pytest.raises(ValueError):
        config.profiling.n_apply = 0


def test_c_compiler_time_is_gcc_when_it_runs(tmp_path, monkeypatch):
    """Compiling into an empty cache runs gcc, whose time is its own phase; a second compile
    of the same graph finds the program in the cache and runs no compiler."""
    monkeypatch.setenv("THEANINE_CACHE_DIR", str(tmp_path / "cache"))
    x = T.dvector("x")
    first, second = ProfileStats(atexit_print=False), ProfileStats(atexit_print=False)
    th.function([x], T.tanh(x) * 3, backend="c", profile=first)
    th.function([x], T.tanh(x) * 3, backend="c", profile=second)
    assert first.phases[("compiler", "gcc")] > first.phases[("compiler", "cache")]
    assert ("compiler", "gcc") not in second.phases and ("compiler", "cache") in second.phases
    out = io.StringIO()
    first.summary(file=out)
    assert "Compiler time" in out.getvalue() and "gcc:" in out.getvalue()


def test_no_timing_code_when_off():
    x = T.dmatrix("x")
    y = T.sum(T.exp(x) * 2, axis=1)
    off = th.function([x], y, backend="c")
    p = ProfileStats(atexit_print=False)
    on = th.function([x], y, backend="c", profile=p)
    assert "clock_gettime" not in off._run.source and "th_step_timed" not in off._run.source
    assert "clock_gettime" in on._run.source
    assert on._run.source.count("th_step_timed(state,") == len(on._run.steps)
    np.testing.assert_allclose(on(np.eye(3)), off(np.eye(3)))
    ref_off = th.function([x], y, backend="numpy")
    ref_on = th.function([x], y, backend="numpy", profile=ProfileStats(atexit_print=False))
    assert "clock()" not in ref_off._run.source and "clock()" in ref_on._run.source


def test_c_profiled_loop_and_branch_run_correctly():
    """Timing wraps the top-level steps only; loop bodies and branches (child functions of
    the same C unit) are timed within their step and still compute the same values."""
    from theanine.ifelse import ifelse

    s = T.dvector("s")
    c = T.dscalar("c")
    out, _ = th.scan(lambda v, acc: acc + v * 2, sequences=s, outputs_info=T.constant(0.0))
    y = ifelse(T.gt(c, 0), out[-1], T.sum(s)) * out[0]  # the loop runs outside the branch
    p = ProfileStats(atexit_print=False)
    f = th.function([s, c], y, backend="c", profile=p)
    plain = th.function([s, c], y, backend="c")
    for cv in (1.0, -1.0):
        np.testing.assert_allclose(f(np.arange(5.0), cv), plain(np.arange(5.0), cv))
    assert set(p.apply_callcount.values()) == {2}
    assert {"Scan", "LazyIfElse"} <= set(p.class_time)


def test_opencl_timer_follows_the_queue(monkeypatch):
    """Device event timestamps when the queue was made with PROFILING_ENABLE, else the host
    clock after a synchronize; the summary says which."""
    _backend("opencl")
    rt = get_backend("opencl").runtime()
    cl = rt.cl
    rt.synchronize()
    for props, timer in [(cl.command_queue_properties.PROFILING_ENABLE, "OpenCL event"),
                         (0, "host clock")]:
        monkeypatch.setattr(rt, "queue", cl.CommandQueue(rt.ctx, properties=props))
        p = ProfileStats(atexit_print=False)
        f = _training_step("opencl", p)
        for _ in range(N_CALLS):
            f(np.ones((4, 3)))
        rt.synchronize()
        [table] = p.tables
        assert table.timer.startswith(timer)
        times = list(p.apply_time.values())
        assert all(t >= 0 for t in times) and sum(times) > 0
        assert set(p.apply_callcount.values()) == {N_CALLS}
        out = io.StringIO()
        p.summary(file=out)
        assert f"opencl steps timed by {timer}" in out.getvalue()
