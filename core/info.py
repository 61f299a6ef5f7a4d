"""What `theanine info` reports: version, plugins, backends and their availability."""

from __future__ import annotations

import platform

import numpy as np


def info_lines() -> list[str]:
    """The report as lines of text."""
    import theanine
    from theanine.backend import backends
    from theanine.config import config
    from theanine.plugins.hookspecs import HOOKSPEC_VERSION
    from theanine.plugins.manager import allowed_names, get_plugin_state

    state = get_plugin_state()
    lines = [f"theanine {theanine.__version__} (Python {platform.python_version()}, "
             f"NumPy {np.__version__})",
             f"config: device={config.device} floatX={config.floatX} mode={config.mode}", "",
             f"plugins (entry-point group 'theanine', hook specs version {HOOKSPEC_VERSION}):"]
    allowed = allowed_names()
    if allowed is not None:
        lines.append(f"  THEANINE_PLUGINS limits loading to: {', '.join(sorted(allowed))}")
    for name, target in sorted(state.loaded.items()):
        lines.append(f"  {name:<12} loaded   {target}")
    for name, err in sorted(state.failed.items()):
        lines.append(f"  {name:<12} FAILED   {err}")
    for name in sorted(state.skipped):
        lines.append(f"  {name:<12} skipped  (not in THEANINE_PLUGINS)")
    lines += ["", "backends:"]
    for name, b in sorted(backends().items()):
        ok, why = b.available()
        status = "available" if ok else f"unavailable: {why}"
        lines.append(f"  {name:<12} devices={','.join(b.device_names()):<16} {status}")
        lines += [f"  {'':<12} {fact}" for fact in b.describe()]
    from theanine.cache import cache_usage

    root, entries, size = cache_usage()
    lines += ["", f"compile cache: {root} ({entries} entries, {size / 1e6:.1f} MB)"]
    from theanine.rewrite import format_rewrites
    from theanine.rewrite.engine import load_plugin_rewrites

    load_plugin_rewrites()

    lines += ["", "rewrites (pass: rewrite, tags):"]
    lines += ["  " + line for line in format_rewrites().splitlines()]
    return lines
