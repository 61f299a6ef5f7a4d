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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from theanine.plugins.manager import PluginCollected

F = TypeVar("F", bound=Callable)


class MissingImplementation(NotImplementedError):
    """A backend has no implementation of an op (no entry for its class or any base)."""


@dataclass(frozen=True)
class Impl:
    """One entry: the implementation, one line saying how it runs the op (for coverage
    reports), and the backend-specific details the table's backend reads (`info`)."""

    op_class: type
    fn: Callable
    how: str
    info: dict[str, Any] = field(default_factory=dict)
    plugin: str = ""


def _first_line(fn: Callable) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else getattr(fn, "__name__", repr(fn))


class OpTable:
    """The op implementations of backend `backend` (a name, used in messages and by plugins
    to say which table they add to). `fallback`, when given, is a table consulted for op
    classes this one has no entry for (a GPU backend's table over the shared GPU one)."""

    def __init__(self, backend: str, fallback: OpTable | None = None):
        self.backend = backend
        self.fallback = fallback
        self._own: dict[type, Impl] = {}
        self._plugins = PluginCollected(self._collect_plugins, self._forget_plugins)
        self._resolved: dict[type, Impl | None] = {}

    # -- filling -------------------------------------------------------------------------------
    def register(self, *op_classes: type, how: str | None = None,
                 **info: Any) -> Callable[[F], F]:
        """Decorator: `fn` implements every class in `op_classes` (and their subclasses that
        have no entry of their own). `how` defaults to the first line of fn's docstring;
        `info` holds backend-specific details."""

        def deco(fn: F) -> F:
            for cls in op_classes:
                self.add(cls, fn, how=how, **info)
            return fn

        return deco

    def add(self, op_class: type, fn: Callable, how: str | None = None, plugin: str = "",
            **info: Any) -> None:
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
        self._own[op_class] = Impl(op_class, fn, how or _first_line(fn), dict(info), plugin)
        self._resolved.clear()

    def _collect_plugins(self) -> list[type]:
        from theanine.plugins.manager import call_hook

        added: list[type] = []

        def registrar(plugin: str) -> Callable[..., None]:
            def register(backend: str, op_class: type, fn: Callable, how: str | None = None,
                         **info: Any) -> None:
                if backend == self.backend:
                    self.add(op_class, fn, how=how, plugin=plugin, **info)
                    added.append(op_class)

            return register

        call_hook("theanine_register_impls", registrar, by_plugin=True)
        return added

    def _forget_plugins(self, added: list[type]) -> None:
        for cls in added:
            self._own.pop(cls, None)
        self._resolved.clear()

    # -- reading -------------------------------------------------------------------------------
    def lookup(self, op_or_class: Any) -> Impl | None:
        """The entry for an op (or op class): its class's own, else the nearest base's along
        the MRO, else the fallback table's; None if there is none."""
        self._plugins.get()
        cls = op_or_class if isinstance(op_or_class, type) else type(op_or_class)
        if cls not in self._resolved:
            found = next((self._own[c] for c in cls.__mro__ if c in self._own), None)
            if found is None and self.fallback is not None:
                found = self.fallback.lookup(cls)
            self._resolved[cls] = found
        return self._resolved[cls]

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
