"""Plugin hook specifications and the plugin manager."""

from theanine.plugins.hookspecs import HOOKSPEC_VERSION, hookimpl, hookspec
from theanine.plugins.manager import ENTRY_POINT_GROUP, get_plugin_state, reset_plugins

__all__ = ["ENTRY_POINT_GROUP", "HOOKSPEC_VERSION", "get_plugin_state", "hookimpl", "hookspec",
           "reset_plugins"]
