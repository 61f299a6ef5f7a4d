"""`theanine.scalar`, the part of Theano's `theano.scalar` that programs call directly:
`upcast`, the dtype elementwise arithmetic gives to operands of the given dtypes."""

from __future__ import annotations

from theanine.tensor.scalar_ops import _upcast


def upcast(dtype: str, *dtypes: str) -> str:
    """The dtype of `a + b + ...` for operands of these dtypes (NumPy's promotion, as
    theanine's elementwise ops apply it), e.g. for a shared average that must take a sum."""
    return str(_upcast(dtype, *dtypes))


__all__ = ["upcast"]
