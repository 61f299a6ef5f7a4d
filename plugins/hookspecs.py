"""The hooks a theanine plugin implements. Each takes a `register` callback, so one plugin
can contribute any number of backends, ops or rewrites."""

from __future__ import annotations

import pluggy

PROJECT = "theanine"
HOOKSPEC_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def theanine_register_backends(register):
    """Call `register(backend)` for each Backend instance this plugin provides."""


@hookspec
def theanine_register_ops(register):
    """Call `register(name, function)` for each tensor function this plugin adds; it becomes
    available as `theanine.tensor.<name>`."""


@hookspec
def theanine_register_rewrites(register):
    """Call `register(rewrite, *tags, name=..., position=...)` to add a rewrite to the
    databases (see theanine.rewrite.db)."""
