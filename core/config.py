"""Run-time configuration: `config.floatX`, `config.device`, `config.mode`, read from
THEANINE_FLAGS (or THEANO_FLAGS, for programs ported from Theano) and settable at run time."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

_DEVICE_RE = re.compile(r"^(cpu|numpy|c|cuda(:?\d+)?|gpu\d*|opencl(:\d+:\d+)?)$")


def _check_floatx(v: str) -> str:
    if v not in ("float16", "float32", "float64"):
        raise ValueError(f"config.floatX must be 'float16', 'float32' or 'float64', got {v!r}")
    return v


def _check_device(v: str) -> str:
    if not _DEVICE_RE.match(v):
        raise ValueError(
            f"config.device must be one of 'cpu', 'numpy', 'cuda', 'cuda:N', 'opencl' or "
            f"'opencl:P:D', got {v!r}"
        )
    return v


def _check_mode(v: str) -> str:
    if v not in ("FAST_RUN", "FAST_COMPILE", "DebugMode", "DEBUG_MODE"):
        raise ValueError(f"config.mode must be FAST_RUN, FAST_COMPILE or DebugMode, got {v!r}")
    return v


def _check_bool(v) -> bool:
    if isinstance(v, str):
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean flag, got {v!r}")
    return bool(v)


def _check_positive_float(v) -> float:
    f = float(v)
    if f <= 0:
        raise ValueError(f"expected a positive number, got {v!r}")
    return f


class Config:
    """Typed settings; unknown names raise AttributeError instead of silently doing nothing."""

    _options: dict[str, tuple[object, Callable, str]] = {
        "floatX": ("float64", _check_floatx, "dtype of T.scalar()/T.matrix() and friends"),
        "device": ("cpu", _check_device, "where compiled functions run"),
        "mode": ("FAST_RUN", _check_mode, "default compile mode"),
        "compute_test_value": ("off", str, "kept for Theano compatibility; ignored"),
        "rewrite_time_budget": (10.0, _check_positive_float,
                                "seconds one rewrite pass may take before it stops"),
        "debug_rtol": (1e-5, _check_positive_float, "DebugMode relative tolerance (float64)"),
        "debug_check_nan": (True, _check_bool, "DebugMode raises on NaN/Inf outputs"),
    }

    def __init__(self):
        object.__setattr__(self, "_values", {k: v[0] for k, v in self._options.items()})

    def __getattr__(self, name: str):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"theanine.config has no option {name!r}; options: "
                             f"{', '.join(sorted(values))}")

    def __setattr__(self, name: str, value) -> None:
        if name not in self._options:
            raise AttributeError(f"theanine.config has no option {name!r}; options: "
                                 f"{', '.join(sorted(self._options))}")
        self._values[name] = self._options[name][1](value)

    def parse_flags(self, flags: str, source: str) -> None:
        """Apply 'name=value,name=value' settings, naming `source` in any error."""
        for item in filter(None, (p.strip() for p in flags.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{source}: expected name=value, got {item!r}")
            try:
                setattr(self, name.strip(), value.strip())
            except (AttributeError, ValueError) as e:
                raise ValueError(f"{source}: {e}") from None

    def __repr__(self) -> str:
        return "\n".join(f"{k} = {v!r}" for k, v in self._values.items())


config = Config()
for _var in ("THEANO_FLAGS", "THEANINE_FLAGS"):
    if os.environ.get(_var):
        config.parse_flags(os.environ[_var], _var)
