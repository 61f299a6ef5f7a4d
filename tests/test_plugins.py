"""Plugins: the reference backend arrives through the entry point, THEANINE_PLUGINS filters,
a broken plugin is reported and skipped, `theanine info` shows it all, and the kernel and op
hooks reach the renderer and `theanine.tensor`."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import BackendUnavailable, backends, get_backend
from theanine.plugins import hookimpl, hookspecs


def _run(code: str, env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)


def test_numpy_backend_is_registered_through_the_entry_point():
    from theanine.plugins.manager import get_plugin_state

    state = get_plugin_state()
    assert state.loaded["numpy"] == "theanine.backends.numpy.plugin"
    assert backends()["numpy"].name == "numpy"
    assert get_backend("cpu").name in backends()
    x = T.dscalar("x")
    assert th.function([x], x * 2, backend="numpy")(2.0) == 4.0


def test_unknown_device_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="no backend serves device 'tpu'"):
        get_backend("tpu")


def test_theanine_plugins_limits_what_loads(tmp_path):
    out = _run("""
        import theanine as th
        from theanine.backend import backends, get_backend, BackendUnavailable
        print(sorted(backends()))
        try:
            get_backend("cpu")
        except BackendUnavailable as e:
            print("ERR", e)
    """, {"THEANINE_PLUGINS": "nothing"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[]" in out.stdout and "ERR No theanine backends are registered" in out.stdout


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path):
    # A throwaway distribution on sys.path whose entry point raises on import.
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[theanine]\nbroken = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('kaboom')\n")
    out = _run("""
        import theanine as th, theanine.tensor as T
        from theanine.info import info_lines
        x = T.dscalar()
        print(th.function([x], x + 1)(1.0))
        print("\\n".join(info_lines()))
    """, {"PYTHONPATH": str(tmp_path)}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2.0" in out.stdout
    assert "broken       FAILED   RuntimeError: kaboom" in out.stdout
    assert "numpy        devices=cpu,numpy" in out.stdout


def test_info_command_runs():
    out = subprocess.run([sys.executable, "-m", "theanine", "info"], capture_output=True,
                         text=True, check=True)
    assert "theanine 0.1.0" in out.stdout and "numpy" in out.stdout
    assert f"hook specs version {hookspecs.HOOKSPEC_VERSION}" in out.stdout


# -- the kernel and op hooks ---------------------------------------------------------------------
def _cube_op():
    from theanine.tensor.elemwise import Elemwise, ScalarOp
    from theanine.tensor.scalar_ops import ufunc_rule

    return Elemwise(ScalarOp("test_cube", 1, lambda x: x * x * x, ufunc_rule(np.square),
                             lambda i, o, g: [g * 3 * i[0] * i[0]]))


class _CubePlugin:
    """A plugin object registered by hand: an op with a kernel."""

    def __init__(self, op, kernel_name="test_cube"):
        self.op, self.kernel_name = op, kernel_name

    @hookimpl
    def theanine_register_ops(self, register):
        register("test_cube", self.op, ops=[self.op])

    @hookimpl
    def theanine_register_kernels(self, register):
        register(self.kernel_name, lambda ctx, x: f"/* cube */ ({x} * {x} * {x})")


@pytest.fixture
def plugin(monkeypatch):
    """Register a plugin object for one test; the kernel and op registries are re-collected."""
    from theanine.plugins.manager import get_plugin_state, reset_collected

    state = get_plugin_state()
    pm = state.pm
    monkeypatch.setattr(state, "failed", dict(state.failed))
    added = []

    def add(obj):
        pm.register(obj, name=f"test-plugin-{len(added)}")
        added.append(obj)
        reset_collected()

    yield add
    for obj in added:
        pm.unregister(obj)
    reset_collected()


def test_a_plugin_kernel_is_fused_by_the_c_backend(plugin):
    op = _cube_op()
    x = T.fvector("x")
    graph = op(x * 2) + 1
    without = th.function([x], graph, backend="c")
    assert "Elemwise" in [type(s.node.op).__name__ for s in without._run.steps
                          if not hasattr(s, "kernel")]
    plugin(_CubePlugin(op))
    f = th.function([x], graph, backend="c")
    assert [type(s).__name__ for s in f._run.steps] == ["KernelStep"]
    assert "/* cube */" in f._run.source
    v = np.array([-1.5, 0.0, 2.0, 3.0], dtype="float32")
    np.testing.assert_array_equal(f(v), (v * 2) ** 3 + 1)
    assert T.test_cube is op
    assert T.plugin_op_keys()["test_cube"] == {"test_cube"}


def test_a_plugin_kernel_may_not_replace_a_builtin_one(plugin):
    from theanine.codegen.scalar_kernels import plugin_kernels
    from theanine.plugins.manager import get_plugin_state

    plugin(_CubePlugin(_cube_op(), kernel_name="exp"))
    assert "exp" not in plugin_kernels()
    assert get_plugin_state().failed["test-plugin-0"] == (
        "theanine_register_kernels: ValueError: plugin 'test-plugin-0' registers a kernel for "
        "scalar op 'exp', which theanine's built-in 'exp' already has")


def test_a_kernel_registered_twice_is_an_error_naming_both_plugins(plugin):
    from theanine.codegen.scalar_kernels import plugin_kernels
    from theanine.plugins.manager import get_plugin_state

    op = _cube_op()
    plugin(_CubePlugin(op))
    plugin(_CubePlugin(op))
    kernel = plugin_kernels()["test_cube"]
    failed = get_plugin_state().failed
    loser = ({"test-plugin-0", "test-plugin-1"} - {kernel.plugin}).pop()
    assert failed[loser] == (
        f"theanine_register_kernels: ValueError: plugin {loser!r} registers a kernel for "
        f"scalar op 'test_cube', which plugin {kernel.plugin!r} already registered")


def test_a_plugin_kernel_serves_only_the_op_the_plugin_registered(plugin):
    """Another op that merely shares the plugin op's name runs its own implementation."""
    from theanine.tensor.elemwise import Elemwise, ScalarOp
    from theanine.tensor.scalar_ops import ufunc_rule

    op = _cube_op()
    plugin(_CubePlugin(op))
    other = Elemwise(ScalarOp("test_cube", 1, lambda x: x + 10, ufunc_rule(np.square),
                              lambda i, o, g: [g]))
    x = T.fvector("x")
    f = th.function([x], [op(x), other(x)], backend="c")
    v = np.array([-1.5, 0.0, 2.0], dtype="float32")
    cube, plus_ten = f(v)
    np.testing.assert_array_equal(cube, v ** 3)
    np.testing.assert_array_equal(plus_ten, v + 10)
    assert "/* cube */" in f._run.source
    assert [s.node.op for s in f._run.steps if not hasattr(s, "kernel")] == [other]


def test_a_failing_registration_is_reported_and_the_others_still_register(plugin):
    from theanine.plugins.manager import get_plugin_state

    class Shadowing:
        @hookimpl
        def theanine_register_ops(self, register):
            register("exp", lambda x: x)

    plugin(Shadowing())
    plugin(_CubePlugin(_cube_op()))
    assert "test_cube" in T.plugin_ops() and "exp" not in T.plugin_ops()
    assert "would shadow theanine.tensor.exp" in get_plugin_state().failed["test-plugin-0"]
    assert not hasattr(T, "no_such_function")


def test_a_backend_plugin_registering_something_else_is_reported(plugin):
    from theanine.plugins.manager import get_plugin_state

    class NotABackend:
        @hookimpl
        def theanine_register_backends(self, register):
            register("numpy")

    plugin(NotABackend())
    assert "numpy" in backends()
    assert get_plugin_state().failed["test-plugin-0"] == (
        "theanine_register_backends: TypeError: register() expects a theanine Backend, got "
        "'numpy'")


def test_a_plugin_kernel_is_printed_by_every_dialect(plugin):
    from theanine.backends.cpu_c.dialect import CDialect
    from theanine.backends.cuda.dialect import CUDADialect
    from theanine.backends.opencl.dialect import OpenCLDialect
    from theanine.codegen.cstyle import CStyleRenderer
    from theanine.codegen.ir import Call, Load

    class Erf:
        @hookimpl
        def theanine_register_kernels(self, register):
            register("test_erf", lambda ctx, x: f"{ctx.math('erf')}({x}) + {ctx.literal(1)}",
                     dtypes=("float32",))

    plugin(Erf())
    call = Call("float32", "test_erf", (Load("int8", 0),))
    printed = {type(d).__name__: CStyleRenderer(d).expr(call, ["v"])
               for d in (CDialect(), CUDADialect(), OpenCLDialect(fp64=True))}
    assert printed == {"CDialect": "(erff(((float)(v))) + 1.0f)",
                       "CUDADialect": "(erff(((float)(v))) + 1.0f)",
                       "OpenCLDialect": "(erf(((float)(v))) + 1.0f)"}
    renderer = CStyleRenderer(CDialect())
    assert renderer.supports("test_erf", ["int8"], "float32")
    assert not renderer.supports("test_erf", ["float64"], "float64")


def test_a_plugin_registered_c_implementation_is_used(plugin):
    from theanine.graph.basic import Apply, Op

    class Halve(Op):
        """A user's op: perform is its definition."""

        def make_node(self, x):
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs):
            return (inputs[0] / 2,)

    rendered, called = [], []

    def halve_in_numpy(x):
        called.append(x.shape)
        return np.multiply(x, 0.5)

    def c_entry(emitter, k, node):
        """np.multiply by 0.5, called from the compiled program"""
        rendered.append(k)
        emitter.host_call(k, node, halve_in_numpy)

    class ImplPlugin:
        @hookimpl
        def theanine_register_impls(self, register):
            register("c", Halve, c_entry)

    c = backends()["c"]
    assert c.impls.lookup(Halve).op_class is Op  # without the plugin: perform on the host
    plugin(ImplPlugin())
    entry = c.impls.lookup(Halve)
    assert (entry.fn, entry.how, entry.plugin) == (
        c_entry, "np.multiply by 0.5, called from the compiled program", "test-plugin-0")
    x = T.dvector("x")
    f = th.function([x], Halve()(x) + 1, backend="c")
    np.testing.assert_array_equal(f(np.array([2.0, 5.0])), [2.0, 3.5])
    assert len(rendered) == 1 and called == [(2,)]
    assert backends()["numpy"].impls.lookup(Halve).op_class is Op  # a table of its own


def test_an_implementation_for_an_unknown_backend_is_reported(plugin):
    from theanine.graph.basic import Apply, Op
    from theanine.plugins.manager import get_plugin_state

    class Halve(Op):
        def make_node(self, x):
            return Apply(self, [x], [x.type()])

    class Misspelt:
        @hookimpl
        def theanine_register_impls(self, register):
            register("cpu_c", Halve, lambda emitter, k, node: None)

    plugin(Misspelt())
    assert backends()["c"].impls.lookup(Halve).op_class is Op
    failure = get_plugin_state().failed["test-plugin-0"]
    assert failure.startswith("theanine_register_impls: ValueError: register('cpu_c', ...): no "
                              "backend has an op table named 'cpu_c'; tables: ")
    assert "c, " in failure and "gpu" in failure


def test_the_kit_plugin_leaves_pytest_alone_without_hypothesis(tmp_path):
    """Installing theanine registers the kit with every pytest run (entry point `pytest11`);
    without hypothesis (theanine installed without its test extra) other projects' tests
    must still run."""
    (tmp_path / "test_other.py").write_text("def test_other():\n    assert 1 + 1 == 2\n")
    script = (
        "import importlib.util, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'hypothesis':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'hypothesis' else real(n, *a)\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:hypothesispytest',\n"
        "                      'test_other.py']))\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


class _RewriteAndCasePlugin:
    """A plugin object adding one rewrite and one conformance case."""

    @hookimpl
    def theanine_register_rewrites(self, register):
        from theanine.rewrite import node_rewriter

        @node_rewriter(["exp"])
        def test_plugin_rewrite(fgraph, node):
            return None

        register(test_plugin_rewrite, "canonicalize")

    @hookimpl
    def theanine_register_cases(self, register):
        from theanine.testing.cases import Case, free

        register(Case("test_plugin_case", T.exp, (free(1),), ("float64",)))


def test_reset_forgets_plugin_rewrites_and_cases(plugin):
    from theanine.plugins.manager import get_plugin_state, reset_collected, reset_plugins
    from theanine.rewrite import list_rewrites
    from theanine.rewrite.engine import load_plugin_rewrites
    from theanine.testing import cases

    def present() -> tuple[bool, bool]:
        return (any(name == "test_plugin_rewrite" for _, name, _ in list_rewrites()),
                "test_plugin_case" in cases._REGISTRY)

    plugin(_RewriteAndCasePlugin())
    load_plugin_rewrites()
    assert "test_plugin_case" in [c.name for c in cases.all_cases()]
    assert present() == (True, True)
    reset_collected()
    assert present() == (False, False)
    # collected again after a reset: registered anew, not refused as registered twice
    load_plugin_rewrites()
    cases.all_cases()
    assert present() == (True, True)
    assert not any("test_plugin" in why or "twice" in why or "already registered" in why
                   for why in get_plugin_state().failed.values())
    reset_plugins()  # a fresh plugin manager: the hand-registered plugin is gone with it
    load_plugin_rewrites()
    cases.all_cases()
    assert present() == (False, False)
