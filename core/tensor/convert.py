"""Lossless conversion of call-time values to an input's dtype: a value is converted only when
every element survives exactly, judged from the values (min/max, magnitudes), never by a
round trip that wraps around; values that are not numbers are refused by kind."""

from __future__ import annotations

from functools import cache

import numpy as np

# NumPy dtype kinds that hold no numbers, with how messages describe them
NOT_NUMBERS = {"U": "strings", "S": "bytes", "V": "structured or void records",
               "M": "datetime64 values", "m": "timedelta64 values", "O": "Python objects"}


@cache
def may_lose(src: np.dtype, dst: np.dtype) -> bool:
    """True when some value of dtype `src` changes when converted to `dst` (NumPy's "safe"
    casts, except integers wider than the float's significand, e.g. int64 -> float64)."""
    if not np.can_cast(src, dst, "safe"):
        return True
    return src.kind in "iu" and dst.kind in "fc" and src.itemsize * 8 - (src.kind == "i") > \
        _significand_bits(dst)


def not_numbers(arr: np.ndarray) -> str | None:
    """How messages describe `arr`'s elements when they are not numbers, else None."""
    return NOT_NUMBERS.get(arr.dtype.kind)


def lossy_values(arr: np.ndarray, dst: np.dtype) -> str | None:
    """None when every value of `arr` converts to `dst` exactly; otherwise a phrase naming the
    values that do not (their range), for the caller's error message."""
    if arr.size == 0 or not may_lose(arr.dtype, dst):
        return None
    if arr.dtype.kind == "c":
        if dst.kind != "c":
            if bool(np.any(arr.imag != 0)):
                return "with nonzero imaginary parts"
            return lossy_values(arr.real, dst)
        part = np.finfo(dst).dtype
        return lossy_values(arr.real, part) or lossy_values(arr.imag, part)
    if dst.kind == "c":  # a real value is exact in a complex dtype when its real part is
        return lossy_values(arr, np.finfo(dst).dtype)
    if arr.dtype.kind in "iu":
        return _int_to(arr, dst)
    return _float_to(arr, dst)


def _significand_bits(dt: np.dtype) -> int:
    """Bits of integer precision of a float or complex dtype (53 for float64)."""
    return np.finfo(dt).nmant + 1


def _int_to(arr: np.ndarray, dst: np.dtype) -> str | None:
    lo, hi = int(arr.min()), int(arr.max())
    span = f"with values in [{lo}, {hi}]"
    if dst.kind == "b":
        return None if lo >= 0 and hi <= 1 else f"{span}, not only 0 and 1"
    if dst.kind in "iu":
        info = np.iinfo(dst)
        if lo >= info.min and hi <= info.max:
            return None
        return f"{span}, outside {dst.name}'s range [{info.min}, {info.max}]"
    bits = _significand_bits(dst)
    if max(hi, -lo) <= 2 ** bits:
        return None  # every integer up to 2**bits in magnitude is a float of `dst`
    # larger integers are exact only with few significant bits (and within the float's range)
    mag = np.abs(arr.astype(np.int64)).view(np.uint64) if arr.dtype.kind == "i" \
        else arr.astype(np.uint64)
    low = mag & (~mag + np.uint64(1))  # lowest set bit (0 for 0)
    odd = mag // np.where(low == 0, np.uint64(1), low)
    if bool(np.all(odd < np.uint64(2 ** bits))) and max(hi, -lo) <= float(np.finfo(dst).max):
        return None
    return (f"{span}: integers above 2**{bits} in magnitude that {dst.name} cannot represent "
            "exactly")


def _float_to(arr: np.ndarray, dst: np.dtype) -> str | None:
    with np.errstate(all="ignore"):
        converted = arr.astype(dst)
        back = converted.astype(arr.dtype)
    same = back == arr
    if dst.kind in "fc":
        same |= np.isnan(arr) & np.isnan(back)  # NaN survives only into a float dtype
    if bool(np.all(same)):
        return None
    bad = arr[~same]
    finite = bad[np.isfinite(bad)]
    parts = []
    if finite.size:
        parts.append(f"values in [{float(finite.min())!r}, {float(finite.max())!r}]")
    if bool(np.any(np.isnan(bad))):
        parts.append("NaN")
    if bool(np.any(np.isinf(bad))):
        parts.append("infinity")
    if dst.kind == "b":
        what = "0 or 1"
    elif dst.kind in "iu":
        info = np.iinfo(dst)
        what = f"integers in {dst.name}'s range [{info.min}, {info.max}]"
    else:
        what = f"exactly representable in {dst.name}"
    return f"with {' and '.join(parts)}, not {what}"
