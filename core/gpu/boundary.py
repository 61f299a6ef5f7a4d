"""The call boundary of a function on a device backend: arrays already in the device's memory
(the backend's own arrays, CUDA array interface or DLPack exporters) are taken without a copy,
outputs can be handed back as the backend's native device arrays instead of NumPy arrays, and
shared values stay in device memory between calls (`DeviceBoundary`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from theanine.backend import backends
from theanine.boundary import CallBoundary
from theanine.gpu.array import DeviceArray
from theanine.tensor.convert import may_lose
from theanine.tensor.type import TensorType, format_shape

if TYPE_CHECKING:
    from theanine.compile.shared import SharedVariable


def device_filter(runtime: Any, t: TensorType, host_filter: Callable, name: str,
                  allow_downcast: bool) -> Callable:
    """A call-time filter for input `name` of type `t`: device arrays `runtime` can read in
    place become DeviceArrays (checked like host values); everything else goes through
    `host_filter` (the TensorType's NumPy conversion)."""

    def filt(value):
        if not isinstance(value, np.ndarray):
            arr = runtime.adopt(value)
            if arr is not None:
                return check_device_input(runtime, t, arr, name, allow_downcast,
                                          type(value).__name__)
            _refuse_foreign(runtime, value, name)
        return host_filter(value)

    return filt


def check_device_input(runtime: Any, t: TensorType, arr: DeviceArray, name: str,
                       allow_downcast: bool, kind: str) -> DeviceArray:
    """`arr` as a value of `t`: rank and static shape must match; a dtype that converts
    without loss is cast on the device, a lossy one only with `allow_downcast` (the values of a
    device array are not inspected, so unlike host values a lossy dtype is refused without it
    even when the values would survive; int64 into float64 is lossy above 2**53)."""
    if arr.ndim != t.ndim:
        raise TypeError(f"{name}: expected a {t.ndim}-d array ({t}), got a {arr.ndim}-d {kind} "
                        f"with shape {arr.shape}")
    if not t.shape_matches(arr.shape):
        raise ValueError(f"{name}: expected shape {format_shape(t.shape)}, got {arr.shape}")
    if arr.dtype == t.numpy_dtype:
        return arr
    if arr.dtype.name not in runtime.dtypes:
        raise TypeError(f"{name}: expected dtype {t.dtype}, got a {kind} of dtype {arr.dtype}, "
                        f"which device {runtime.device_name} cannot convert; cast it first")
    if may_lose(arr.dtype, t.numpy_dtype) and not allow_downcast:
        raise TypeError(f"{name}: expected dtype {t.dtype}, got a {kind} of dtype {arr.dtype} "
                        f"in device memory, which may lose values when converted to {t.dtype}. "
                        "Cast it yourself, or compile with allow_input_downcast=True.")
    return runtime.copy(arr, runtime.empty(arr.shape, t.numpy_dtype))


def _refuse_foreign(runtime: Any, value: Any, name: str) -> None:
    """Raise for an array in some other device's memory, which NumPy could not convert (or
    would convert to an array of objects)."""
    dev = getattr(value, "__dlpack_device__", None)
    on_cpu = dev is not None and int(dev()[0]) == 1  # DLPack's kDLCPU
    if on_cpu or not (dev or hasattr(value, "__cuda_array_interface__")
                      or isinstance(value, DeviceArray) or _owned_by_a_gpu_backend(value)):
        return
    raise TypeError(f"{name}: got a {type(value).__name__} in the memory of a device this "
                    f"function does not run on (it runs on {runtime.device_name}); copy it to "
                    "the host first, or compile the function for that device")


def _owned_by_a_gpu_backend(value: Any) -> bool:
    """Whether a registered GPU backend says `value` is one of its device library's arrays."""
    return any(b.owns_array(value) for b in backends().values())


def hand_out(runtime: Any, value: Any, fresh: bool) -> Any:
    """An output for `function(..., return_device=True)`: the runtime's native device array
    (a copy on the device unless `fresh`, i.e. unless no input, shared value or earlier output
    may share its memory); host values are uploaded."""
    if isinstance(value, np.ndarray):
        return runtime.export(runtime.to_device(value))
    return runtime.export(value if fresh else runtime.copy(value))


def keep(runtime: Any, value: Any, fresh: bool) -> Any:
    """A shared variable's new device value: copied unless `fresh`, so a stored value never
    shares memory a caller can write (an adopted input, an output handed out, a constant's or
    another shared variable's buffer handed out by `get_value(borrow=True, ...)`)."""
    if fresh or isinstance(value, np.ndarray):
        return value
    return runtime.copy(value)


def to_host(value: Any) -> np.ndarray:
    """A host array the caller owns: device arrays are copied down, host arrays copied."""
    return np.array(value) if isinstance(value, np.ndarray) else value.get()


class DeviceBoundary(CallBoundary):
    """The call boundary of functions on `runtime`'s device: device arrays are adopted in
    place, results are copied to the host (or handed out as device arrays with
    `return_device`), and shared values are kept in the device's memory (a ValueStore; a
    shared variable recognises its device copy by the boundary, so keep one per runtime)."""

    def __init__(self, runtime: Any):
        self.runtime = runtime

    def bind(self, env: dict[str, Any]) -> None:
        super().bind(env)
        env.update(rt=self.runtime, bd=self, keep=keep, handout=hand_out, tohost=to_host,
                   DeviceArray=DeviceArray)

    def input_filter(self, t: TensorType, label: str,
                     allow_downcast: bool) -> Callable[[Any], Any]:
        return device_filter(self.runtime, t, super().input_filter(t, label, allow_downcast),
                             label, allow_downcast)

    def trusted_input(self, arg: str, filt: str) -> str | None:
        # device arrays of other libraries are still taken in place
        return (f"    if {arg}.__class__ is not ndarray and {arg}.__class__ is not "
                f"DeviceArray:\n        {arg} = {filt}({arg})")

    def shared_value(self, var: str) -> str:
        return f"{var}.device_value(bd)"

    def store_update(self, var: str, value: str, fresh: bool) -> str:
        # a caller may write an adopted input or a borrowed internal value: see `keep`
        return f"{var}.set_device_value(bd, keep(rt, {value}, {fresh}))"

    def output(self, value: str, fresh: bool, return_device: bool) -> str:
        return f"handout(rt, {value}, {fresh})" if return_device else f"tohost({value})"

    def host_value(self, value: Any) -> np.ndarray:
        return value if isinstance(value, np.ndarray) else value.get()

    # -- the ValueStore shared variables keep their values in ------------------------------
    def upload(self, host: np.ndarray) -> DeviceArray:
        return self.runtime.to_device(host)

    def download(self, value: DeviceArray) -> np.ndarray:
        return self.runtime.to_host(value)

    def export(self, value: DeviceArray, borrow: bool) -> Any:
        return self.runtime.export(value if borrow else self.runtime.copy(value))

    def take(self, value: Any, var: SharedVariable, borrow: bool) -> DeviceArray | None:
        given = self.runtime.adopt(value)
        if given is None:
            return None
        label = var.label
        if var.strict and given.dtype != var.type.numpy_dtype:
            raise TypeError(f"{label} is strict: expected an array of {var.type.dtype}, got a "
                            f"{type(value).__name__} of dtype {given.dtype}")
        d = check_device_input(self.runtime, var.type, given, f"{label}.set_value",
                               var.allow_downcast, type(value).__name__)
        return self.runtime.copy(d) if d is given and not borrow else d
