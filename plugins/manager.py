"""Loading plugins from the `theanine` entry-point group through pluggy.

THEANINE_PLUGINS (comma-separated entry-point names) limits what loads. A plugin that fails to
import, or whose hook raises when theanine calls it (`call_hook`), is recorded with its error and
skipped; `import theanine` never breaks.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

import pluggy

from theanine.plugins import hookspecs

ENTRY_POINT_GROUP = "theanine"


class PluginState:
    """The plugin manager plus what loaded and what failed (for `theanine info`)."""

    def __init__(self):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.loaded: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.skipped: list[str] = []


_state: PluginState | None = None
_lock = threading.Lock()


def allowed_names() -> set[str] | None:
    raw = os.environ.get("THEANINE_PLUGINS")
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def get_plugin_state() -> PluginState:
    """Load entry-point plugins once per process and return the state."""
    global _state
    with _lock:
        if _state is None:
            _state = _load()
        return _state


def _load() -> PluginState:
    state = PluginState()
    allowed = allowed_names()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            state.skipped.append(ep.name)
            continue
        if state.pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            state.pm.register(module, name=ep.name)
            state.pm.check_pending()
        except Exception as e:  # a broken plugin must not break theanine
            if state.pm.has_plugin(ep.name):
                state.pm.unregister(name=ep.name)
            state.failed[ep.name] = f"{type(e).__name__}: {e}"
            continue
        state.loaded[ep.name] = ep.value
    return state


def call_hook(hook: str, register: Callable, by_plugin: bool = False) -> None:
    """Call hook `hook` of every loaded plugin with `register`, in pluggy's order (with
    `by_plugin`, with `register(plugin_name)`, so errors can name the plugin). A plugin
    whose hook raises (a bad registration included) is recorded in `failed`, which `theanine
    info` shows, and the other plugins still register."""
    state = get_plugin_state()
    for impl in reversed(getattr(state.pm.hook, hook).get_hookimpls()):
        callback = register(impl.plugin_name) if by_plugin else register
        try:  # (pluggy lets an implementation leave out arguments it does not use)
            impl.function(**{name: callback for name in impl.argnames})
        except Exception as e:  # a broken plugin must not break theanine
            state.failed[impl.plugin_name] = f"{hook}: {type(e).__name__}: {e}"


T = TypeVar("T")
_collected: weakref.WeakSet[PluginCollected] = weakref.WeakSet()


class PluginCollected(Generic[T]):
    """What the plugins registered through one hook, collected by `collect()` on first use
    and forgotten by `reset_plugins()`: the one load-once/reset rule of every registry that
    plugins fill (backends, op functions, kernels, rewrites, cases, op implementations)."""

    def __init__(self, collect: Callable[[], T], forget: Callable[[T], None] | None = None):
        self._collect = collect
        self._forget = forget
        self._value: T | None = None
        self._done = False
        self._lock = threading.RLock()  # (collecting may ask another registry for its value)
        _collected.add(self)

    def get(self) -> T:
        """The collected value, collecting it now if this is the first use."""
        with self._lock:
            if not self._done:
                self._value = self._collect()
                self._done = True
            return self._value  # type: ignore[return-value]

    def reset(self) -> None:
        """Forget the value (`forget(value)` undoes what collecting did elsewhere, such as
        entries added to a built-in table)."""
        with self._lock:
            if self._done and self._forget is not None:
                self._forget(self._value)  # type: ignore[arg-type]
            self._value, self._done = None, False


def reset_plugins() -> None:
    """Forget loaded plugins and everything collected from them (tests use this after
    changing THEANINE_PLUGINS or installing a plugin)."""
    global _state
    with _lock:
        _state = None
    reset_collected()


def reset_collected() -> None:
    """Forget what every registry collected from the plugins, keeping the loaded plugins (so
    the next use asks their hooks again; tests use this after registering a plugin object)."""
    for registry in list(_collected):
        registry.reset()
