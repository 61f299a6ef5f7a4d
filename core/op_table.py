"""A backend's op-implementation table: Op class -> how that backend runs it.

Each backend owns one table (`Backend.impls`) and its modules fill it with
`@table.register(OpClass)`; what an implementation is (a C emitter, a GPU step planner, a
Python callable) is the backend's own contract. Lookup follows the op class's MRO, so a
subclass inherits its base's entry unless it has one of its own. An op with no entry fails
compilation with `MissingImplementation`, naming the op and the backend. Plugins add entries
through the `theanine_register_impls` hook (collected on first lookup, forgotten by
`reset_plugins()`), and the conformance meta-test and `theanine info --coverage` read the same
tables, so what a backend declares and what is checked never disagree.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from theanine.graph.basic import Op
from theanine.plugins.manager import PluginCollected

F = TypeVar("F", bound=Callable)


class MissingImplementation(NotImplementedError):
    """A backend has no implementation of an op (no entry for its class or any base)."""


@dataclass(frozen=True)
class Impl:
    """One entry: the implementation (what it is, and how it is called, is the table's
    backend's contract), one line saying how it runs the op (for coverage reports), and the
    plugin that registered it ("" for the backend itself)."""

    op_class: type
    fn: Callable
    how: str
    plugin: str = ""


def _first_line(fn: Callable) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else getattr(fn, "__name__", repr(fn))


_TABLES: weakref.WeakSet[OpTable] = weakref.WeakSet()


@functools.cache
def library_op_classes() -> frozenset[type]:
    """The Op classes of theanine's own op library: every Op subclass the modules of
    theanine.tensor (its subpackages too: nnet, signal) and theanine.gradient, the loops and
    the conditional hold."""
    import theanine.tensor

    names = [m.name for m in pkgutil.walk_packages(theanine.tensor.__path__, "theanine.tensor.")]
    modules = [importlib.import_module(n) for n in [*names, "theanine.gradient",
                                                    "theanine.scan_module.op",
                                                    "theanine.ifelse"]]
    return frozenset(obj for m in modules for obj in vars(m).values()
                     if isinstance(obj, type) and issubclass(obj, Op) and obj is not Op)


def _known_tables() -> set[str]:
    """The names a plugin may register entries under: every table's and every backend's."""
    from theanine.backend import backends

    return {t.backend for t in _TABLES} | set(backends())


class OpTable:
    """The op implementations of backend `backend` (a name, used in messages and by plugins
    to say which table they add to). `fallback`, when given, is a table consulted for op
    classes this one has no entry for (a GPU backend's table over the shared GPU one)."""

    def __init__(self, backend: str, fallback: OpTable | None = None):
        self.backend = backend
        self.fallback = fallback
        self._own: dict[type, Impl] = {}
        self._plugins = PluginCollected(self._collect_plugins, self._forget_plugins)
        _TABLES.add(self)

    # -- filling -------------------------------------------------------------------------------
    def register(self, *op_classes: type, how: str | None = None) -> Callable[[F], F]:
        """Decorator: `fn` implements every class in `op_classes` (and their subclasses that
        have no entry of their own). `how` defaults to the first line of fn's docstring."""

        def deco(fn: F) -> F:
            for cls in op_classes:
                self.add(cls, fn, how=how)
            return fn

        return deco

    def add(self, op_class: type, fn: Callable, how: str | None = None,
            plugin: str = "") -> None:
        """Give `op_class` the implementation `fn`; an entry it already has is an error."""
        if not isinstance(op_class, type):
            raise TypeError(f"{self.backend} op table: expected an Op class, got {op_class!r}")
        if not callable(fn):
            raise TypeError(f"{self.backend} op table: the implementation of "
                            f"{op_class.__name__} must be callable, got {fn!r}")
        if op_class in self._own:
            old = self._own[op_class]
            by = f"plugin {old.plugin!r}" if old.plugin else "the backend"
            raise ValueError(f"{self.backend} op table: {op_class.__name__} already has an "
                             f"implementation (registered by {by})")
        self._own[op_class] = Impl(op_class, fn, how or _first_line(fn), plugin)

    def _collect_plugins(self) -> list[type]:
        from theanine.plugins.manager import call_hook

        added: list[type] = []

        def registrar(plugin: str) -> Callable[..., None]:
            def register(backend: str, op_class: type, fn: Callable,
                         how: str | None = None) -> None:
                known = _known_tables()
                if backend not in known:
                    raise ValueError(f"register({backend!r}, ...): no backend has an op table "
                                     f"named {backend!r}; tables: {', '.join(sorted(known))}")
                if backend == self.backend:
                    self.add(op_class, fn, how=how, plugin=plugin)
                    added.append(op_class)

            return register

        call_hook("theanine_register_impls", registrar, by_plugin=True)
        return added

    def _forget_plugins(self, added: list[type]) -> None:
        for cls in added:
            self._own.pop(cls, None)

    # -- reading -------------------------------------------------------------------------------
    def _entry(self, cls: type) -> Impl | None:
        """The entry registered for exactly `cls`, here or in the fallback table."""
        found = self._own.get(cls)
        if found is None and self.fallback is not None:
            found = self.fallback._entry(cls)
        return found

    def lookup(self, op_or_class: Any) -> Impl | None:
        """The entry for an op (or op class): the one of the nearest class along its MRO (this
        table's before the fallback's for each class); None if there is none. The generic
        entry of `Op` never serves an op class of theanine's own library: a backend that has
        no entry for one of those fails by name rather than running perform unnoticed."""
        self._plugins.get()
        if self.fallback is not None:
            self.fallback._plugins.get()
        cls = op_or_class if isinstance(op_or_class, type) else type(op_or_class)
        found = next(filter(None, map(self._entry, cls.__mro__)), None)
        if found is not None and found.op_class is Op and cls in library_op_classes():
            return None
        return found

    def __getitem__(self, op: Any) -> Impl:
        """The entry for `op`; MissingImplementation naming the op and backend if none."""
        found = self.lookup(op)
        if found is None:
            cls = op if isinstance(op, type) else type(op)
            shown = cls.__name__ if isinstance(op, type) else f"{cls.__name__} ({op})"
            raise MissingImplementation(
                f"backend {self.backend!r} has no implementation of op {shown}; run it on a "
                "backend that has one (theanine info --coverage lists them), or register one "
                "(@table.register(OpClass), or a plugin's theanine_register_impls hook)")
        return found

    def entries(self) -> dict[type, Impl]:
        """Every op class with an entry (the fallback table's too), by class."""
        self._plugins.get()
        out = dict(self.fallback.entries()) if self.fallback is not None else {}
        out.update(self._own)
        return out

    def __repr__(self) -> str:
        return f"<OpTable {self.backend}: {len(self.entries())} op classes>"
