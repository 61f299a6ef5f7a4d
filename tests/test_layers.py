"""The package's layers import downward only: graph building (theanine.graph, theanine.tensor,
theanine.gradient, theanine.scan_module, whose loops gradients build, and theanine.ifelse)
never imports the compiler, rewrites, code generators or backends, so building a graph cannot
start a compiler and the layers above can change without touching it.
Two functions are the documented exceptions: `Variable.eval` and `verify_grad` compile; and one
compatibility alias module for ported programs, theanine.tensor.shared_randomstreams (Theano's
name for the random streams, which sit above, in theanine.random_streams)."""

from __future__ import annotations

import ast
import os

import numpy as np

import theanine as th
import theanine.tensor as T
from theanine.graph.basic import SharedValue

CORE = os.path.join(os.path.dirname(__file__), os.pardir, "core")
GRAPH_LAYER = ["graph", "tensor", "scan_module", "gradient.py", "ifelse.py"]  # relative to core/
# what graph-building code may import from theanine: itself, the config and the plugin manager
ALLOWED = ("theanine.graph", "theanine.tensor", "theanine.scan_module", "theanine.gradient",
           "theanine.ifelse",
           "theanine.config", "theanine.plugins.manager")
MAY_COMPILE = {"Variable.eval", "verify_grad"}  # where importing theanine.compile is allowed
# (file under core/, scope) -> the one module above the graph layer it may import
ALIASES = {("tensor/shared_randomstreams.py", "<module>"): "theanine.random_streams"}


def _sources() -> list[str]:
    paths = []
    for entry in GRAPH_LAYER:
        path = os.path.join(CORE, entry)
        if entry.endswith(".py"):
            paths.append(path)
            continue
        paths += sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py"))
    return paths


def _package(path: str) -> str:
    """The dotted package of a module file under core/ (core/ is installed as theanine)."""
    rel = os.path.relpath(os.path.dirname(path), CORE)
    return "theanine" if rel == "." else "theanine." + rel.replace(os.sep, ".")


def _imported(node: ast.AST, package: str) -> list[str]:
    """The theanine modules an import statement (or importlib.import_module call with a
    literal or f-string name) names; relative imports resolved against `package`."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = package.rsplit(".", node.level - 1)[0] if node.level else ""
        module = ".".join(p for p in (base, node.module or "") if p)
        if module == "theanine":  # from theanine import compile
            return [f"theanine.{a.name}" for a in node.names]
        return [module]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" \
            and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
        if isinstance(arg, ast.JoinedStr) and arg.values and \
                isinstance(arg.values[0], ast.Constant):
            return [arg.values[0].value]  # the literal prefix
    return []


def _imports(path: str) -> list[tuple[str, str, int]]:
    """(module, qualified name of the enclosing function or "<module>", line) for every
    import in the file."""
    tree = ast.parse(open(path).read(), path)
    package = _package(path)
    found = []

    def walk(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = [*scope, child.name]
            for module in _imported(child, package):
                found.append((module, ".".join(scope) or "<module>", child.lineno))
            walk(child, inner)

    walk(tree, [])
    return found


def _violations(module: str, where: str, path: str = "") -> bool:
    if not (module == "theanine" or module.startswith("theanine.")):
        return False
    rel = os.path.relpath(path, CORE).replace(os.sep, "/") if path else ""
    if ALIASES.get((rel, where)) == module:
        return False
    if module.startswith(ALLOWED) or module == "theanine":
        return False
    return not (module.startswith("theanine.compile") and where in MAY_COMPILE)


def test_graph_building_never_imports_upward():
    bad = [f"{os.path.relpath(path, CORE)}:{line} in {where}: imports {module}"
           for path in _sources() for module, where, line in _imports(path)
           if _violations(module, where, path)]
    assert not bad, "graph, tensor and gradient code imports a layer above it:\n" + \
        "\n".join(bad)


def test_the_checker_sees_lazy_and_module_level_imports(tmp_path):
    """The walk finds imports inside methods and at module level, with their scope."""
    src = tmp_path / "mod.py"
    src.write_text("import theanine.compile.function\n"
                   "class Variable:\n"
                   "    def eval(self):\n"
                   "        from theanine.compile.function import function\n"
                   "    def other(self):\n"
                   "        from theanine.compile.shared import SharedVariable\n"
                   "def helper():\n"
                   "    importlib.import_module(f'theanine.rewrite.{name}')\n")
    found = [(m, w) for m, w, _ in _imports(str(src)) if _violations(m, w)]
    assert ("theanine.compile.function", "<module>") in found
    assert ("theanine.compile.shared", "Variable.other") in found
    assert ("theanine.rewrite.", "helper") in found
    assert not any(w == "Variable.eval" for _, w in found)


def test_shared_variables_are_recognised_without_the_compiler():
    """graph.basic.SharedValue: what jacobian code uses to leave shared variables implicit."""
    w = th.shared(np.array([1.0, 2.0]), name="w")
    x = T.vector("x")
    assert isinstance(w, SharedValue)
    assert not isinstance(x, SharedValue) and not isinstance(T.constant(1.0), SharedValue)
    j = th.function([x], T.jacobian((x * w) ** 2, x))(np.array([1.0, 1.0]))
    np.testing.assert_allclose(j, np.diag([2.0, 8.0]))


def test_the_alias_exceptions_are_exactly_the_listed_imports(tmp_path):
    """An alias may import theanine.random_streams from its listed scope only: another scope,
    another module above, or another file is still a violation."""
    alias = os.path.join(CORE, "tensor", "shared_randomstreams.py")
    assert not _violations("theanine.random_streams", "<module>", alias)
    assert _violations("theanine.compile.shared", "<module>", alias)
    assert _violations("theanine.random_streams", "helper", alias)
    assert _violations("theanine.random_streams", "<module>", os.path.join(CORE, "tensor",
                                                                          "math.py"))
