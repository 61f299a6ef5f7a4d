"""Kernels for elementwise scalar ops contributed by plugins (`theanine_register_kernels`):
each is a function printing one element's C expression, so every C-style dialect (C, OpenCL,
CUDA) can fuse the op with its neighbours like a built-in one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

FLOAT_DTYPES = ("float32", "float64")


class ExprContext:
    """What a plugin kernel may ask while printing one element: the output dtype, the input
    dtypes, and the dialect's spelling of math functions, literals and type names."""

    def __init__(self, renderer, dtype: str, in_dtypes: Sequence[str]):
        self._r = renderer
        self.dtype = dtype
        self.in_dtypes = tuple(in_dtypes)

    def math(self, fn: str) -> str:
        """The dialect's name of C99 math function `fn` for the output dtype (erff / erf)."""
        return self._r.d.math(fn, self.dtype)

    def literal(self, value: float | int) -> str:
        """`value` as a literal of the output dtype."""
        return self._r.literal(value, self.dtype)

    def type(self) -> str:
        """The dialect's type name of the output dtype."""
        return self._r.d.type(self.dtype)


@dataclass(frozen=True)
class ScalarKernel:
    """A plugin's kernel for scalar op `name`: `render(ctx, *args) -> str`, for `dtypes`."""

    name: str
    render: Callable[..., str]
    dtypes: tuple[str, ...] = FLOAT_DTYPES


_kernels: dict[str, ScalarKernel] | None = None
_lock = threading.Lock()


def plugin_kernels() -> dict[str, ScalarKernel]:
    """The kernels registered by plugins, by scalar op name (collected once per process)."""
    global _kernels
    with _lock:
        if _kernels is None:
            _kernels = _collect()
        return _kernels


def _collect() -> dict[str, ScalarKernel]:
    from theanine.codegen.cstyle import _RULES, C_TYPES
    from theanine.plugins.manager import call_hook

    found: dict[str, ScalarKernel] = {}

    def register(scalar_op_name: str, render: Callable[..., str],
                 dtypes: Sequence[str] = FLOAT_DTYPES) -> None:
        if scalar_op_name in _RULES or scalar_op_name in found:
            raise ValueError(f"a kernel for scalar op {scalar_op_name!r} is already defined")
        if not callable(render):
            raise TypeError(f"register({scalar_op_name!r}, render): render must be callable, "
                            f"got {render!r}")
        if isinstance(dtypes, str) or not set(dtypes) <= set(C_TYPES):
            raise TypeError(f"register({scalar_op_name!r}, render, dtypes): expected a sequence "
                            f"of dtype names among {sorted(C_TYPES)}, got {dtypes!r}")
        found[scalar_op_name] = ScalarKernel(scalar_op_name, render, tuple(dtypes))

    call_hook("theanine_register_kernels", register)
    return found


def reset_plugin_kernels() -> None:
    """Forget the collected kernels (tests use this after changing the plugins)."""
    global _kernels
    with _lock:
        _kernels = None


__all__ = ["ExprContext", "ScalarKernel", "plugin_kernels", "reset_plugin_kernels"]
