"""What the op library defines versus what the conformance cases exercise (the op keys: Op
class names and elementwise scalar op names, and the public functions that have no case) and
what each backend's op table implements."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (the cases need hypothesis; the op-table helpers work without it)
    from theanine.backend import Backend
    from theanine.op_table import Impl
    from theanine.testing.cases import Case

# the modules whose public functions build ops (their `__all__`), plus theanine.gradient's helpers
FUNCTION_MODULES = ("math", "reduction", "linalg", "shape_ops", "join", "allocation", "subtensor",
                    "nnet", "nnet.bn", "signal.pool")
GRADIENT_FUNCTIONS = ("zero_grad", "disconnected_grad", "jacobian", "hessian")
# public functions that build no op, with the reason
NO_OP_FUNCTIONS = {"ndim": "returns a Python int; the number of dimensions is always static"}
# op classes exercised through their scalar ops rather than by class
COVERED_BY_SCALAR_OPS = {"Elemwise"}
# op classes that compiling makes of another (function() makes every IfElse a LazyIfElse)
COMPILED_FORMS = {"IfElse": "LazyIfElse"}


def library_op_classes() -> dict[str, type]:
    """Every public Op class of the library (theanine.op_table.library_op_classes: the
    modules of theanine.tensor and theanine.gradient), by class name."""
    from theanine.op_table import library_op_classes as classes

    return {cls.__name__: cls for cls in classes()
            if not cls.__name__.startswith("_") and cls.__name__ not in COVERED_BY_SCALAR_OPS}


def library_op_keys() -> set[str]:
    """The op keys every backend must run: Op class names, every SCALAR_OPS name, the cast
    to every dtype (cast scalar ops are created on demand, one per target dtype) and the ops
    that installed op plugins build."""
    from theanine.tensor import plugin_op_keys
    from theanine.tensor.scalar_ops import SCALAR_OPS
    from theanine.tensor.type import DTYPES

    scalar = {n for n in SCALAR_OPS if not n.startswith("cast_")}
    plugin = set().union(*plugin_op_keys().values())
    return set(library_op_classes()) | scalar | {f"cast_{d}" for d in DTYPES} | plugin


def covered_keys(cases: Iterable[Case] | None = None) -> set[str]:
    """Op keys exercised by `cases` (default: all registered) over all their dtypes."""
    from theanine.testing.cases import all_cases, case_dtypes, covered_op_keys

    keys: set[str] = set()
    for case in all_cases() if cases is None else cases:
        for dtype in case_dtypes(case, extended=False):
            keys |= covered_op_keys(case, dtype)
    return keys | {COMPILED_FORMS[k] for k in keys if k in COMPILED_FORMS}


def uncovered_ops(cases: Iterable[Case] | None = None) -> list[str]:
    """Op keys of the library that no case exercises."""
    return sorted(library_op_keys() - covered_keys(cases))


def declared_ops(backend: Backend) -> dict[str, Impl | None]:
    """For each library op class, by name, the entry `backend`'s op table runs it with (None:
    compiling it fails; the generic `Op` entry never serves library ops); {} when the backend
    has no table (it compiles whole graphs its own way)."""
    table = backend.impls
    if table is None:
        return {}
    return {name: table.lookup(cls) for name, cls in sorted(library_op_classes().items())}


def unimplemented_ops(backend: Backend) -> list[str]:
    """Library op classes that `backend`'s op table has no entry for."""
    return [name for name, impl in declared_ops(backend).items() if impl is None]


def public_functions() -> dict[str, object]:
    """The public op-building functions (by name; Theano aliases of one function appear once),
    op plugins' functions included."""
    import theanine.gradient
    import theanine.tensor

    seen, out = set(), {}
    for modname in FUNCTION_MODULES:
        module = importlib.import_module(f"theanine.tensor.{modname}")
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or name in NO_OP_FUNCTIONS or id(obj) in seen:
                continue
            seen.add(id(obj))
            out[name] = obj
    for name in GRADIENT_FUNCTIONS:
        out[name] = getattr(theanine.gradient, name)
    for name, fn in theanine.tensor.plugin_ops().items():
        if id(fn) not in seen:
            seen.add(id(fn))
            out[name] = fn
    return out


def uncovered_functions(cases: Iterable[Case] | None = None) -> list[str]:
    """Public functions that appear in no case's `functions` (aliases count for their target)."""
    import theanine.gradient
    import theanine.tensor
    from theanine.testing.cases import all_cases

    modules = [importlib.import_module(f"theanine.tensor.{m}") for m in FUNCTION_MODULES]
    plugin = theanine.tensor.plugin_ops()
    named = set()
    for case in all_cases() if cases is None else cases:
        for name in case.functions:
            if name in plugin:
                named.add(id(plugin[name]))
                continue
            owner = next((m for m in modules if name in m.__all__), theanine.gradient)
            named.add(id(getattr(owner, name)))
    return sorted(name for name, obj in public_functions().items() if id(obj) not in named)


__all__ = ["FUNCTION_MODULES", "GRADIENT_FUNCTIONS", "NO_OP_FUNCTIONS", "library_op_classes",
           "library_op_keys", "covered_keys", "uncovered_ops", "public_functions",
           "uncovered_functions", "unimplemented_ops"]
