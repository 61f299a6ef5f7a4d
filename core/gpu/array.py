"""DeviceArray: a strided view of a device buffer (sizes, strides and offset in elements).

Values computed on a device are never written again once produced, so views may share a
buffer freely; negative strides are fine as long as every element lies inside the buffer.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class DeviceArray:
    """An n-d array in device memory. `runtime` moves it to and from the host."""

    __slots__ = ("buffer", "shape", "strides", "offset", "dtype", "runtime")

    def __init__(self, runtime: Any, buffer: Any, shape: tuple, dtype: np.dtype,
                 strides: tuple | None = None, offset: int = 0):
        self.runtime = runtime
        self.buffer = buffer
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.strides = tuple(strides) if strides is not None else contiguous_strides(self.shape)
        self.offset = int(offset)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def is_contiguous(self) -> bool:
        """C-contiguous (length-1 axes may have any stride)."""
        expected = 1
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True

    def view(self, shape: tuple, strides: tuple, offset: int | None = None) -> DeviceArray:
        return DeviceArray(self.runtime, self.buffer, shape, self.dtype, strides,
                           self.offset if offset is None else offset)

    def get(self) -> np.ndarray:
        """A new host array with this value."""
        return self.runtime.to_host(self)

    def __repr__(self) -> str:
        return (f"DeviceArray(shape={self.shape}, dtype={self.dtype}, strides={self.strides}, "
                f"offset={self.offset}, on {self.runtime.device_name})")


def contiguous_strides(shape: tuple) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(int(n), 1)
    return tuple(reversed(strides))
