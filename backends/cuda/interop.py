"""Arrays of other CUDA libraries seen in place: the CUDA array interface (pycuda GPUArray,
CuPy, PyTorch, Numba) and DLPack capsules (read with ctypes, so no library is imported)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

KDL_CPU, KDL_CUDA = 1, 2
_DL_KINDS = {0: "i", 1: "u", 2: "f", 6: "b"}  # DLDataTypeCode -> NumPy kind


class DevicePointer(int):
    """A device address that keeps the memory's owner alive while a DeviceArray uses it."""

    owner: Any


@dataclass(frozen=True)
class ForeignArray:
    """Where another library's array lies: address, layout (strides in elements), owner."""

    pointer: DevicePointer
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype
    device: tuple[int, int] | None  # DLPack (device type, ordinal); None: not stated
    stream: int | None  # CUDA array interface: the stream the producer last used


def _pointer(address: int, owner: Any) -> DevicePointer:
    p = DevicePointer(address)
    p.owner = owner
    return p


def _element_strides(byte_strides, shape: tuple, dtype: np.dtype) -> tuple[int, ...]:
    if byte_strides is None:
        step, out = 1, []
        for n in reversed(shape):
            out.append(step)
            step *= max(n, 1)
        return tuple(reversed(out))
    if any(s % dtype.itemsize for s in byte_strides):
        raise ValueError(f"array strides {tuple(byte_strides)} (bytes) are not multiples of "
                         f"the {dtype} item size; copy it to a regular layout first")
    return tuple(s // dtype.itemsize for s in byte_strides)


def from_cuda_array_interface(value: Any) -> ForeignArray | None:
    """The array `value.__cuda_array_interface__` describes, or None if it has none."""
    cai = getattr(value, "__cuda_array_interface__", None)
    if cai is None:
        return None
    if cai.get("mask") is not None:
        raise ValueError("masked CUDA arrays are not supported")
    dtype = np.dtype(cai["typestr"])
    shape = tuple(int(n) for n in cai["shape"])
    strides = _element_strides(cai.get("strides"), shape, dtype)
    return ForeignArray(_pointer(int(cai["data"][0]), value), shape, strides, dtype, None,
                        cai.get("stream"))


# -- DLPack (the unversioned DLManagedTensor every producer supports) ----------------------------
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    pass


_DLManagedTensor._fields_ = [
    ("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor)))]

_NAME, _USED = b"dltensor", b"used_dltensor"  # module constants: the capsule keeps the pointer
_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype, _get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_set_name = ctypes.pythonapi.PyCapsule_SetName
_set_name.restype, _set_name.argtypes = ctypes.c_int, [ctypes.py_object, ctypes.c_char_p]


class _Consumed:
    """Owns a DLManagedTensor taken from a capsule and calls its deleter when dropped."""

    def __init__(self, managed: ctypes._Pointer):
        self.managed = managed

    def __del__(self):
        deleter = self.managed.contents.deleter
        if deleter:
            deleter(self.managed)


def from_dlpack(value: Any, stream: int | None = None) -> ForeignArray | None:
    """The array behind `value.__dlpack__()` (None if it has no DLPack export). `stream` is
    passed on for CUDA producers (1: the legacy default stream, which the launches use)."""
    if not hasattr(value, "__dlpack__"):
        return None
    device = tuple(int(x) for x in value.__dlpack_device__())
    capsule = value.__dlpack__(stream=stream) if device[0] != KDL_CPU else value.__dlpack__()
    address = _get_pointer(capsule, _NAME)
    managed = ctypes.cast(address, ctypes.POINTER(_DLManagedTensor))
    if _set_name(capsule, _USED) != 0:
        raise RuntimeError("could not mark a DLPack capsule as consumed")
    owner = _Consumed(managed)
    t = managed.contents.dl_tensor
    kind = _DL_KINDS.get(t.dtype.code)
    if kind is None or t.dtype.lanes != 1:
        raise ValueError(f"DLPack dtype (code {t.dtype.code}, {t.dtype.bits} bits, "
                         f"{t.dtype.lanes} lanes) has no theanine dtype")
    dtype = np.dtype("bool" if kind == "b" else f"{kind}{t.dtype.bits // 8}")
    shape = tuple(int(t.shape[a]) for a in range(t.ndim))
    strides = tuple(int(t.strides[a]) for a in range(t.ndim)) if t.strides else \
        _element_strides(None, shape, dtype)
    data = (t.data or 0) + int(t.byte_offset)
    return ForeignArray(_pointer(data, owner), shape, strides, dtype,
                        (t.device.device_type, t.device.device_id), None)
