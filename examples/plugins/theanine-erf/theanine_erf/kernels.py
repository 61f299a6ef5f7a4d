"""Kernels for the C-style renderer: one element's C expression, for every dialect (C, OpenCL,
CUDA all have C99's erf and erfc). `args` arrive converted to the output dtype."""

from __future__ import annotations

from theanine_erf.ops import SQRT1_2


def erf_kernel(ctx, x: str) -> str:
    return f"{ctx.math('erf')}({x})"


def erfc_kernel(ctx, x: str) -> str:
    return f"{ctx.math('erfc')}({x})"


def gelu_kernel(ctx, x: str) -> str:
    half, c = ctx.literal(0.5), ctx.literal(SQRT1_2)
    value = f"{half} * {x} * {ctx.math('erfc')}(-{x} * {c})"
    return f"(isinf({x}) && {x} < 0) ? {ctx.literal(-0.0)} : {value}"


KERNELS = {"erf": erf_kernel, "erfc": erfc_kernel, "gelu": gelu_kernel}
