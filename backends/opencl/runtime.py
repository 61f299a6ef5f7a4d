"""The pyopencl runtime: device choice, a pooled allocator, transfers, program building through
the on-disk binary cache, and launches of kernel objects built once per program."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from theanine.backends.opencl.dialect import OpenCLDialect
from theanine.backends.opencl.loader import configure as configure_loader
from theanine.cache import cached_build
from theanine.codegen.gpu import GpuRenderer
from theanine.codegen.skeleton import KernelArg, KernelSource
from theanine.config import config
from theanine.gpu.array import DeviceArray
from theanine.gpu.runtime import Runtime

KEPT_KERNELS = 64  # kernels a CPU device keeps for later programs (PoCL: about 0.5 MB each)


def import_cl():
    """pyopencl, or ImportError saying how to get it. The ICD loader is first pointed at the
    platform `theanine setup-opencl` installed, if any (see theanine.backends.opencl.loader)."""
    configure_loader()
    try:
        import pyopencl as cl
    except ImportError as e:
        raise ImportError(f"pyopencl is not installed ({e}); pip install 'theanine[opencl]' "
                          "(or 'pyopencl[pocl]' for a CPU OpenCL platform)") from None
    return cl


def list_devices() -> list[tuple[int, int, Any]]:
    """(platform index, device index, device) for every OpenCL device."""
    cl = import_cl()
    found = []
    for p, platform in enumerate(cl.get_platforms()):
        try:
            devices = platform.get_devices()
        except cl.Error:
            continue
        found += [(p, d, dev) for d, dev in enumerate(devices)]
    return found


_problems: dict[tuple, str] = {}  # (platform version, device name, p, d) -> "" or the failure
PROBE_HINT = ("run `theanine setup-opencl` for a CPU platform that builds on this host, or "
              "pick another device with device=opencl:P:D (`theanine info` lists them)")


def device_problem(entry: tuple[int, int, Any]) -> str:
    """"" if the device builds and runs a one-line kernel, else the driver's message. Proven
    once per process: a device that cannot build (PoCL whose LLVM does not know this CPU) is
    never chosen, and its first compile never crashes a user's function."""
    p, d, dev = entry
    key = (dev.platform.version, dev.name, p, d)
    if key not in _problems:
        _problems[key] = probe_device(dev)
    return _problems[key]


def probe_device(dev) -> str:
    """Build and run a one-line kernel on `dev`: "" if it computes the right values, else the
    driver's message (also what `theanine setup-opencl` runs on each candidate platform)."""
    from theanine.backends.opencl.platform_setup import PROBE_SOURCE

    cl = import_cl()
    try:
        ctx = cl.Context([dev])
        queue = cl.CommandQueue(ctx)
        kernel = cl.Program(ctx, PROBE_SOURCE).build().th_probe
        host = np.zeros(4, np.float32)
        buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=host)
        kernel(queue, (4,), None, buf)  # PoCL compiles for the CPU at the first launch
        cl.enqueue_copy(queue, host, buf)
    except Exception as e:  # any driver failure makes the device unusable, with its message
        return " ".join(f"{type(e).__name__}: {e}".split())[:600]
    if not np.allclose(host, 2.0):
        return f"a one-line kernel computed {host.tolist()} instead of [2.0, 2.0, 2.0, 2.0]"
    return ""


def is_setup_platform(dev) -> bool:
    """Whether `dev` belongs to the platform `theanine setup-opencl` installed."""
    state = configure_loader()
    return bool(state.icd_library and state.platform
                and dev.platform.version == state.platform.get("platform_version"))


def default_device() -> tuple[tuple[int, int, Any], str]:
    """The device 'opencl' means, and why: the first GPU that builds kernels, else the CPU
    platform theanine set up, else the first other device that builds."""
    cl = import_cl()
    devices = list_devices()
    if not devices:
        raise RuntimeError("no OpenCL platform or device found (`theanine setup-opencl` "
                           "installs a CPU platform; pip install 'pyopencl[pocl]' gives one)")
    ranked = sorted(devices, key=lambda e: (not e[2].type & cl.device_type.GPU,
                                            not is_setup_platform(e[2])))
    failures = []
    for entry in ranked:
        problem = device_problem(entry)
        if not problem:
            dev = entry[2]
            if dev.type & cl.device_type.GPU:
                why = "the first GPU that builds kernels"
            elif is_setup_platform(dev):
                name = (configure_loader().platform or {}).get("name", "the PoCL")
                why = f"{name}, set up by `theanine setup-opencl`, builds kernels here and no " \
                      "GPU does"
            else:
                why = "the first device that builds kernels (no GPU does)"
            return entry, why
        failures.append(f"opencl:{entry[0]}:{entry[1]} ({entry[2].name.strip()}): {problem}")
    raise RuntimeError("no OpenCL device can build kernels here: " + "; ".join(failures)
                       + f"; {PROBE_HINT}")


def parse_device(spec: str) -> tuple[int, int] | None:
    """(platform, device) of 'opencl:P:D' (ASCII digits), None for 'opencl'; the OpenCL
    backend accepts exactly these names."""
    kind, *parts = spec.split(":")
    if kind == "opencl" and not parts:
        return None
    if kind != "opencl" or len(parts) != 2 or not all(x.isascii() and x.isdigit()
                                                       for x in parts):
        raise ValueError(f"OpenCL device {spec!r}: expected 'opencl' or 'opencl:P:D' "
                         "(platform and device indices, see `theanine info`)")
    return int(parts[0]), int(parts[1])


def pick_device(spec: str):
    """The device for 'opencl' (see `default_device`) or 'opencl:P:D', proven to build."""
    indices = parse_device(spec)
    if indices is None:
        return default_device()[0]
    p, d = indices
    devices = list_devices()
    for entry in devices:
        if entry[:2] == (p, d):
            problem = device_problem(entry)
            if problem:
                raise RuntimeError(f"OpenCL device {spec} ({entry[2].name.strip()}, "
                                   f"{entry[2].platform.version.strip()}) cannot build kernels: "
                                   f"{problem}; {PROBE_HINT}")
            return entry
    listing = ", ".join(f"opencl:{a}:{b} ({dev.name.strip()})" for a, b, dev in devices)
    raise ValueError(f"no OpenCL device {spec!r}; devices: {listing}")


class OpenCLRuntime(Runtime):
    """One OpenCL device with its context, in-order queue and memory pool."""

    def __init__(self, spec: str):
        cl = import_cl()
        import pyopencl.array as cl_array
        import pyopencl.tools as cl_tools

        self.cl = cl
        self.cl_array = cl_array
        self.platform_index, self.device_index, dev = pick_device(spec)
        self.device = dev
        self.fp64 = "cl_khr_fp64" in dev.extensions
        is_gpu = bool(dev.type & cl.device_type.GPU)
        is_cpu = bool(dev.type & cl.device_type.CPU)
        wg = 256 if is_gpu else 64
        while wg > dev.max_work_group_size:
            wg //= 2
        self.workgroup = wg
        self.max_groups = dev.max_compute_units * (32 if is_gpu else 4)
        self.elementwise_groups = self.max_groups
        if not self.fp64:
            self.dtypes = self.dtypes - {"float64"}
        self.device_name = f"{dev.name.strip()} ({dev.platform.name.strip()})"
        self.max_alloc = dev.max_mem_alloc_size
        self.ctx = cl.Context([dev])
        # with config.profile, a queue whose events carry timestamps, so profiled functions
        # time their steps on the device (theanine.gpu.profiling)
        self.queue = cl.CommandQueue(self.ctx, properties=(
            cl.command_queue_properties.PROFILING_ENABLE if config.profile else 0))
        self.pool = cl_tools.MemoryPool(cl_tools.ImmediateAllocator(self.queue))
        # Binaries are cached on disk for GPU drivers, which hand them over cheaply. PoCL makes
        # a binary by compiling every kernel for every work-group size up front (seconds per
        # program), so on CPU devices builds rely on pyopencl's source-keyed cache and PoCL's
        # own kernel cache instead.
        self.binary_cache = not is_cpu
        # kernel name (a hash of its text) -> cl.Kernel, the most recently used last
        self._built: OrderedDict[str, Any] = OrderedDict()
        self._built_lock = threading.Lock()
        self._launch_lock = threading.Lock()
        self.options = []
        if dev.single_fp_config & cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT:
            self.options.append("-cl-fp32-correctly-rounded-divide-sqrt")
        super().__init__(GpuRenderer(OpenCLDialect(self.fp64), wg, cpu=is_cpu))

    # -- allocator ---------------------------------------------------------------------------
    def alloc(self, nbytes: int):
        return self.pool.allocate(nbytes)

    def upload_into(self, buffer, host: np.ndarray) -> None:
        self.cl.enqueue_copy(self.queue, buffer, host, is_blocking=True)

    def download_into(self, host: np.ndarray, buffer, byte_offset: int) -> None:
        self.cl.enqueue_copy(self.queue, host, buffer, src_offset=byte_offset, is_blocking=True)

    def adopt(self, value: Any) -> DeviceArray | None:
        """A pyopencl Array of this context, read in place (after its own queue's work)."""
        if not isinstance(value, self.cl_array.Array):
            return super().adopt(value)
        if value.context != self.ctx:
            raise ValueError(f"the pyopencl Array belongs to another OpenCL context (device "
                             f"{value.queue.device.name.strip() if value.queue else '?'}); "
                             f"the function runs on {self.device_name}")
        size = value.dtype.itemsize
        if value.offset % size or any(s % size for s in value.strides):
            raise ValueError(f"the pyopencl Array's offset {value.offset} and strides "
                             f"{value.strides} (bytes) are not multiples of its {value.dtype} "
                             "item size; copy it to a regular layout first")
        if value.queue is not None and value.queue != self.queue:
            value.finish()  # its own queue may still be writing it
        if value.base_data is None:  # an empty array has no buffer
            return self.empty(value.shape, value.dtype)
        return DeviceArray(self, value.base_data, value.shape, value.dtype,
                           tuple(s // size for s in value.strides), value.offset // size)

    def export(self, arr: DeviceArray):
        """A pyopencl Array on this runtime's queue viewing `arr` (a contiguous copy first
        unless it is C-contiguous: pyopencl's `get` and arithmetic refuse other layouts)."""
        if not arr.is_contiguous():
            arr = self.copy(arr)
        size = arr.dtype.itemsize
        return self.cl_array.Array(self.queue, arr.shape, arr.dtype, strides=tuple(s * size for s in
                                                                     arr.strides),
                     data=arr.buffer, offset=arr.offset * size)

    # -- compiler ----------------------------------------------------------------------------
    def build(self, source: str, signatures: dict[str, tuple[KernelArg, ...]]) -> dict[str, Any]:
        cl = self.cl
        dev = self.device
        parts = {"dialect": "opencl", "platform": dev.platform.name, "platform_version":
                 dev.platform.version, "device": dev.name, "driver": dev.driver_version,
                 "options": self.options}

        def build_binary(src: Path, out: Path) -> None:
            program = cl.Program(self.ctx, src.read_text()).build(options=self.options)
            out.write_bytes(program.binaries[0])

        if not self.binary_cache:
            program = cl.Program(self.ctx, source).build(options=self.options)
            return {name: cl.Kernel(program, name) for name in signatures}
        with cached_build("opencl", source, parts, ".clbin", build_binary) as entry:
            binary = entry.data
        try:
            program = cl.Program(self.ctx, [dev], [binary]).build(
                options=self.options)
        except cl.Error:  # a binary this driver no longer accepts: build from source
            program = cl.Program(self.ctx, source).build(options=self.options)
        return {name: cl.Kernel(program, name) for name in signatures}

    def kernels(self, bodies: dict[str, KernelSource]) -> dict[str, Any]:
        """GPU drivers: one program, its binary cached on disk. CPU devices (PoCL), where every
        program costs a front-end run and every kernel a compilation at its first launch:
        the last KEPT_KERNELS kernels used are kept by name (a hash of their text), and only
        those not kept go into the new program, so a kernel many graphs share compiles once
        while memory stays bounded (a kernel lives on while a compiled function holds it)."""
        if self.binary_cache:
            return super().kernels(bodies)
        found = {}
        with self._built_lock:
            for name in bodies:
                if name in self._built:
                    self._built.move_to_end(name)
                    found[name] = self._built[name]
        missing = {name: text for name, text in bodies.items() if name not in found}
        if missing:
            built = super().kernels(missing)
            found.update(built)
            with self._built_lock:
                self._built.update(built)
                while len(self._built) > KEPT_KERNELS:
                    self._built.popitem(last=False)
        return found

    # -- launcher ----------------------------------------------------------------------------
    def launch(self, kernel, global_size: tuple, local_size: tuple, args: list) -> None:
        """Set the arguments and enqueue as one step: kernel objects are shared by every thread
        (and by every program using the kernel), and OpenCL takes arguments at enqueue time."""
        with self._launch_lock:
            kernel.set_args(*args)
            self.cl.enqueue_nd_range_kernel(self.queue, kernel, global_size, local_size)

    def synchronize(self) -> None:
        self.queue.finish()

    def describe(self) -> str:
        return json.dumps({"device": self.device_name, "fp64": self.fp64})
