"""Kernels for elementwise scalar ops contributed by plugins (`theanine_register_kernels`):
each is a function printing one element's C expression, so every C-style dialect (C, OpenCL,
CUDA) can fuse the op with its neighbours like a built-in one.

Kernels are found by the op's identity, not its name (`kernel_key`): theanine's kernels serve
only theanine's own scalar ops, and a plugin's kernel only the ScalarOps plugins list under its
name, so another op that merely shares a name runs its own NumPy implementation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from theanine.plugins.manager import PluginCollected

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
    """A plugin's kernel for scalar op `name`: `render(ctx, *args) -> str`, for `dtypes`;
    `plugin` is the name of the plugin that registered it."""

    name: str
    render: Callable[..., str]
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    plugin: str = ""


def plugin_kernels() -> dict[str, ScalarKernel]:
    """The kernels registered by plugins, by scalar op name (collected on first use)."""
    return _KERNELS.get()


def kernel_key(sop) -> str | None:
    """The name the C-style renderer knows ScalarOp `sop` by ("cast" for theanine's casts), or
    None when no kernel computes this very op (then it runs as a library call)."""
    from theanine.codegen.cstyle import _RULES
    from theanine.tensor import plugin_scalar_ops
    from theanine.tensor.scalar_ops import cast_target, is_builtin

    if cast_target(sop) is not None:
        return "cast"
    if is_builtin(sop):
        return sop.name if sop.name in _RULES else None
    if sop.name in plugin_kernels() and sop in plugin_scalar_ops():
        return sop.name
    return None


def _reserved_names() -> set[str]:
    """Scalar op names a plugin kernel may not take: theanine's own ops and casts."""
    from theanine.codegen.cstyle import _RULES, C_TYPES, UNSUPPORTED_DTYPES
    from theanine.tensor.scalar_ops import SCALAR_OPS

    casts = {f"cast_{d}" for d in [*C_TYPES, *UNSUPPORTED_DTYPES]}
    return set(_RULES) | set(SCALAR_OPS) | casts | {"cast"}


def _collect() -> dict[str, ScalarKernel]:
    from theanine.codegen.cstyle import C_TYPES
    from theanine.plugins.manager import call_hook

    found: dict[str, ScalarKernel] = {}
    reserved = _reserved_names()

    def registrar(plugin: str) -> Callable[..., None]:
        def register(scalar_op_name: str, render: Callable[..., str],
                     dtypes: Sequence[str] = FLOAT_DTYPES) -> None:
            name = scalar_op_name
            if name in reserved:
                raise ValueError(f"plugin {plugin!r} registers a kernel for scalar op {name!r}, "
                                 f"which theanine's built-in {name!r} already has")
            if name in found:
                raise ValueError(f"plugin {plugin!r} registers a kernel for scalar op {name!r}, "
                                 f"which plugin {found[name].plugin!r} already registered")
            if not callable(render):
                raise TypeError(f"register({name!r}, render): render must be callable, "
                                f"got {render!r}")
            if isinstance(dtypes, str) or not set(dtypes) <= set(C_TYPES):
                raise TypeError(f"register({name!r}, render, dtypes): expected a sequence "
                                f"of dtype names among {sorted(C_TYPES)}, got {dtypes!r}")
            found[name] = ScalarKernel(name, render, tuple(dtypes), plugin)

        return register

    call_hook("theanine_register_kernels", registrar, by_plugin=True)
    return found


_KERNELS: PluginCollected[dict[str, ScalarKernel]] = PluginCollected(_collect)


__all__ = ["ExprContext", "ScalarKernel", "kernel_key", "plugin_kernels"]
