"""The pycuda runtime: device choice on a retained primary context, a pooled allocator,
transfers, modules compiled by nvcc (cached on disk) and loaded from the cubin, launches through
prepared calls whose argument format comes once per kernel from the parameter list the renderer
declared it with, and GEMM through cuBLAS where the library is found."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from theanine.backends.cuda import cublas
from theanine.backends.cuda.compiler import compile_cubin
from theanine.backends.cuda.dialect import CUDARenderer
from theanine.backends.cuda.interop import KDL_CUDA, from_cuda_array_interface, from_dlpack
from theanine.codegen.skeleton import KernelArg
from theanine.gpu.array import DeviceArray
from theanine.gpu.runtime import Runtime

LEGACY_STREAM = 1  # the stream number of CUDA's legacy default stream in the interchange APIs
# struct codes of scalar kernel arguments by dtype (pointers are "P")
_STRUCT = {"int64": "q", "uint64": "Q", "int32": "i", "uint32": "I", "int16": "h", "uint16": "H",
           "int8": "b", "uint8": "B", "bool": "B", "float32": "f", "float64": "d"}


def import_cuda():
    """pycuda.driver, or ImportError saying how to get it."""
    try:
        import pycuda.driver as cuda
    except ImportError as e:
        raise ImportError(f"pycuda cannot be imported ({e}); pip install 'theanine[cuda]' (it "
                          "needs the CUDA toolkit and an NVIDIA driver)") from None
    return cuda


DEVICE_NAMES = ("cuda", "gpu", "cuda:N", "gpu:N", "cudaN", "gpuN")


def parse_device(spec: str) -> int:
    """The device ordinal of one of DEVICE_NAMES ('cudaN' and 'gpuN' are Theano's spellings;
    N is ASCII digits); the CUDA backend accepts exactly these names."""
    for kind in ("cuda", "gpu"):
        if not spec.startswith(kind):
            continue
        rest = spec[len(kind):]
        number = rest[1:] if rest[:1] == ":" else rest
        if rest == "" or (number.isascii() and number.isdigit()):
            return int(number or 0)
    raise ValueError(f"CUDA device {spec!r}: expected one of {', '.join(DEVICE_NAMES)} (N: the "
                     "device ordinal, see `theanine info` for the devices)")


def list_devices() -> list[str]:
    """One line per CUDA device: ordinal, name, architecture, SMs, memory."""
    cuda = import_cuda()
    cuda.init()
    lines = []
    for i in range(cuda.Device.count()):
        dev = cuda.Device(i)
        major, minor = dev.compute_capability()
        sms = dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)
        lines.append(f"device cuda:{i}: {dev.name()} (sm_{major}{minor}, {sms} SMs, "
                     f"{dev.total_memory() / 2**30:.0f} GiB)")
    return lines


def argument_format(args: Sequence[KernelArg]) -> str:
    """A kernel's parameters as the struct format pycuda's prepare takes (pointers 'P', scalars
    by dtype), so launches never inspect their arguments."""
    return "".join("P" if a.pointer else _STRUCT[a.dtype] for a in args)


class _CurrentPerThread(threading.local):
    """The runtime whose context theanine last made current in this thread. CUDA's current
    context is a per-thread state: each thread that calls a function pushes the context once;
    switching devices pops the previous runtime's context and pushes the next one's."""

    runtime: CUDARuntime | None = None


_Current = _CurrentPerThread()


class CUDARuntime(Runtime):
    """One CUDA device: its primary context, a memory pool, modules and launches."""

    def __init__(self, spec: str = "cuda"):
        cuda = import_cuda()
        import pycuda.tools

        self.cuda = cuda
        self.index = parse_device(spec)
        cuda.init()
        count = cuda.Device.count()
        if count == 0:
            raise RuntimeError("no CUDA GPU found")
        if self.index >= count:
            raise ValueError(f"no CUDA device {spec!r}; devices: {'; '.join(list_devices())}")
        dev = cuda.Device(self.index)
        self.ctx = dev.retain_primary_context()
        self.activate()
        major, minor = dev.compute_capability()
        self.arch = f"sm_{major}{minor}"
        self.max_groups = dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT) * 32
        self.device_name = f"{dev.name()} (cuda:{self.index}, {self.arch})"
        self.pool = pycuda.tools.DeviceMemoryPool()
        self.blas, self.blas_note = cublas.Cublas.load()
        super().__init__(CUDARenderer(workgroup=self.workgroup))

    def activate(self) -> None:
        """Make this device's context the current one (after another device's)."""
        if _Current.runtime is not self:
            if _Current.runtime is not None:
                self.cuda.Context.pop()
            self.ctx.push()
            _Current.runtime = self

    # -- allocator ---------------------------------------------------------------------------
    def alloc(self, nbytes: int):
        self.activate()
        return self.pool.allocate(nbytes)

    def upload_into(self, buffer, host: np.ndarray) -> None:
        self.activate()
        self.cuda.memcpy_htod(buffer, host)

    def download_into(self, host: np.ndarray, buffer, byte_offset: int) -> None:
        self.activate()
        self.cuda.memcpy_dtoh(host, int(buffer) + byte_offset)

    def adopt(self, value: Any) -> DeviceArray | None:
        if isinstance(value, (DeviceArray, np.ndarray)):
            return super().adopt(value)
        found = from_cuda_array_interface(value)
        if found is None and hasattr(value, "__dlpack_device__"):
            if value.__dlpack_device__()[0] != KDL_CUDA:
                return None
            found = from_dlpack(value, stream=LEGACY_STREAM)
            if found.device[1] != self.index:
                raise ValueError(f"the array is on cuda:{found.device[1]}, the function runs "
                                 f"on cuda:{self.index}")
        if found is None:
            return None
        if found.stream not in (None, LEGACY_STREAM):
            self.activate()
            self.ctx.synchronize()  # the producer's stream may still be writing it
        return DeviceArray(self, found.pointer, found.shape, found.dtype, found.strides)

    def export(self, arr: DeviceArray):
        """A pycuda GPUArray viewing `arr` (no copy; a copy first if it has negative strides)."""
        from pycuda.gpuarray import GPUArray

        if any(s < 0 for s in arr.strides):
            arr = self.copy(arr)
        size = arr.dtype.itemsize
        return GPUArray(arr.shape, arr.dtype, gpudata=int(arr.buffer) + arr.offset * size,
                        strides=tuple(s * size for s in arr.strides), base=arr)

    # -- compiler ----------------------------------------------------------------------------
    def build(self, source: str, signatures: dict[str, tuple[KernelArg, ...]]) -> dict[str, Any]:
        self.activate()
        module = self.cuda.module_from_buffer(compile_cubin(source, self.arch))
        kernels = {}
        for name, args in signatures.items():
            fn = module.get_function(name)
            fn.prepare(argument_format(args))
            fn.module = module  # the module stays loaded while its kernels are in use
            kernels[name] = fn
        return kernels

    # -- launcher ----------------------------------------------------------------------------
    def launch(self, kernel, global_size: tuple, local_size: tuple, args: list) -> None:
        """A prepared call: the arguments travel with the launch (no state on the shared kernel
        object), so threads launch the same kernel without a lock."""
        if _Current.runtime is not self:
            self.activate()
        pad = (1,) * (3 - len(local_size))
        grid = tuple(g // b for g, b in zip(global_size, local_size)) + pad
        kernel.prepared_call(grid, tuple(local_size) + pad, *args)

    def gemm(self, kernel: Any, a: DeviceArray, b: DeviceArray, z: DeviceArray | None,
             alpha, beta, dtype) -> DeviceArray:
        """cuBLAS for float32/float64 operands of the output's dtype, else the tiled kernel."""
        dtype = np.dtype(dtype)
        m, k = a.shape
        n = b.shape[1]
        if self.blas is None or dtype.name not in ("float32", "float64") or \
                a.dtype != dtype or b.dtype != dtype or 0 in (m, n, k) or \
                max(m, n, k) > cublas.INT_MAX:
            return super().gemm(kernel, a, b, z, alpha, beta, dtype)
        operands = []
        for x in (a, b):
            found = cublas.operand(x.shape, x.strides)
            if found is None:
                x = self.copy(x)
                found = cublas.operand(x.shape, x.strides)
            operands.append((int(x.buffer) + x.offset * dtype.itemsize, *found))
        out = self.empty((m, n), dtype)
        if z is not None and beta != 0:
            self.copy(z, out)
        else:
            beta = 0
        self.activate()
        self.blas.row_major_gemm(dtype.name, m, n, k, alpha, operands[0], operands[1], beta,
                                 int(out.buffer))
        return out


@atexit.register
def _release() -> None:
    """Pop the context the main thread pushed at first use, as pycuda expects of a clean exit
    (other threads' context stacks end with them)."""
    rt = _Current.runtime
    if rt is not None:
        rt.cuda.Context.pop()
        _Current.runtime = None
