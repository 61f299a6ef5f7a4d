"""The OpenCL backend (device 'opencl' or 'opencl:P:D'): fused kernels in OpenCL C built
through pyopencl, values kept in device memory between calls."""

from __future__ import annotations

import sys
from typing import Any

from theanine.backends.opencl.loader import configure as configure_loader
from theanine.backends.opencl.runtime import (
    OpenCLRuntime,
    default_device,
    device_problem,
    import_cl,
    list_devices,
    parse_device,
)
from theanine.gpu.backend import GpuBackend
from theanine.gpu.library import gpu_impl
from theanine.op_table import OpTable


class OpenCLBackend(GpuBackend):
    """OpenCL through pyopencl; one instance per device, the default one for 'opencl'."""

    name = "opencl"
    priority = 5
    impls = OpTable("opencl", fallback=gpu_impl)

    def __init__(self, spec: str = "opencl"):
        self.spec = spec
        self._runtime: OpenCLRuntime | None = None
        self._per_device: dict[str, OpenCLBackend] = {}

    def available(self) -> tuple[bool, str]:
        try:
            import_cl()
            if not list_devices():
                return False, "no OpenCL platform or device found (pip install 'pyopencl[pocl]')"
            self.runtime()
        except Exception as e:  # any driver failure is a reason, not a crash
            return False, f"{type(e).__name__}: {e}"
        return True, ""

    @property
    def caches_builds_on_disk(self) -> bool:
        """GPU drivers' binaries are; PoCL compiles each kernel at its first launch in the
        process that runs it, so building programs elsewhere first saves nothing."""
        return self.runtime().binary_cache

    def runtime(self) -> OpenCLRuntime:
        if self._runtime is None:
            self._runtime = OpenCLRuntime(self.spec)
        return self._runtime

    @staticmethod
    def parse_device(device: str) -> object:
        return parse_device(device)

    def device_names(self) -> tuple[str, ...]:
        return ("opencl", "opencl:P:D")

    def owns_array(self, value: Any) -> bool:
        """A pyopencl Array, of any context (none exists unless pyopencl.array is imported)."""
        cl_array = sys.modules.get("pyopencl.array")
        return cl_array is not None and isinstance(value, cl_array.Array)

    def for_device(self, device: str) -> OpenCLBackend:
        if device in ("opencl", self.spec):
            return self
        if device not in self._per_device:
            backend = OpenCLBackend(device)
            backend.runtime()  # a bad device index fails here, naming the devices
            self._per_device[device] = backend
        return self._per_device[device]

    def describe(self) -> list[str]:
        """Every device with whether it builds kernels (the driver's message if not), the
        device 'opencl' picks and why, and what theanine did to the ICD loader."""
        try:
            devices = list_devices()
        except ImportError as e:
            return [str(e)]
        state = configure_loader()
        lines = []
        if state.icd_library:
            lines.append(f"platform set up by `theanine setup-opencl`: {state.platform['name']}"
                         f" ({state.icd_library})")
        lines += state.notes
        for p, d, dev in devices:
            problem = device_problem((p, d, dev))
            status = f"UNUSABLE: {problem}" if problem else "builds kernels"
            lines.append(f"device opencl:{p}:{d}: {dev.name.strip()} "
                         f"({dev.platform.version.strip()}, {dev.max_compute_units} compute "
                         f"units, {'fp64' if 'cl_khr_fp64' in dev.extensions else 'no fp64'})"
                         f": {status}")
        if not devices:
            return lines + ["no OpenCL devices"]
        try:
            (p, d, dev), why = default_device()
        except RuntimeError as e:
            return lines + [f"in use: none ({e})"]
        return lines + [f"in use: opencl:{p}:{d} ({dev.name.strip()}): {why}"]
