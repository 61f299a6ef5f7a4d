"""Compile modes: which rewrites run, and whether results are checked (DebugMode)."""

from __future__ import annotations

from theanine.config import config

_REWRITES = {"FAST_RUN": "FAST_RUN", "FAST_COMPILE": "FAST_COMPILE", "DebugMode": "FAST_RUN",
             "DEBUG_MODE": "FAST_RUN"}


class Mode:
    """A compile mode: `rewrites` names a rewrite set ('FAST_RUN', 'FAST_COMPILE', 'NONE');
    `debug` checks every node's result (NaN/Inf, type) and the rewritten graph against the
    un-rewritten reference."""

    def __init__(self, rewrites: str = "FAST_RUN", debug: bool = False, name: str | None = None):
        if rewrites not in ("FAST_RUN", "FAST_COMPILE", "NONE"):
            raise ValueError(f"Mode(rewrites=...) must be FAST_RUN, FAST_COMPILE or NONE, got "
                             f"{rewrites!r}")
        self.rewrites = rewrites
        self.debug = debug
        self.name = name or ("DebugMode" if debug else rewrites)

    def __repr__(self) -> str:
        return f"Mode({self.name})"


def get_mode(mode) -> Mode:
    """Turn None / a mode name / a Mode into a Mode (None means config.mode)."""
    if isinstance(mode, Mode):
        return mode
    name = config.mode if mode is None else mode
    if name not in _REWRITES:
        raise ValueError(f"unknown mode {name!r}; expected one of FAST_RUN, FAST_COMPILE, "
                         f"DebugMode, or a theanine.Mode")
    return Mode(_REWRITES[name], debug=name in ("DebugMode", "DEBUG_MODE"), name=name)
