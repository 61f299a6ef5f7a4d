"""The CUDA backend (device 'cuda', 'gpu', 'cuda:N', 'gpu:N', or Theano's 'cudaN' and 'gpuN'):
fused kernels in CUDA C compiled by nvcc and run through pycuda, values kept in device memory
between calls, GEMM through cuBLAS."""

from __future__ import annotations

from theanine.backends.cuda.compiler import find_nvcc, nvcc_version
from theanine.backends.cuda.runtime import (
    DEVICE_NAMES,
    CUDARuntime,
    import_cuda,
    list_devices,
    parse_device,
)
from theanine.gpu.backend import GpuBackend
from theanine.gpu.library import gpu_impl
from theanine.op_table import OpTable


class CUDABackend(GpuBackend):
    """CUDA through pycuda; one instance per device, the default one for 'cuda' (cuda:0)."""

    name = "cuda"
    priority = 20
    impls = OpTable("cuda", fallback=gpu_impl)

    def __init__(self, spec: str = "cuda"):
        self.spec = spec
        self._runtime: CUDARuntime | None = None
        self._per_device: dict[int, CUDABackend] = {}
        self._unavailable: str | None = None

    def available(self) -> tuple[bool, str]:
        if self._runtime is None and self._unavailable is None:
            try:
                import_cuda()
                if find_nvcc() is None:
                    raise RuntimeError("nvcc (CUDA toolkit) not found on PATH, in $CUDA_HOME/bin "
                                       "or /usr/local/cuda/bin")
                self.runtime()
            except Exception as e:  # any driver failure is a reason, not a crash
                self._unavailable = f"{type(e).__name__}: {e}"
        return (False, self._unavailable) if self._unavailable else (True, "")

    def runtime(self) -> CUDARuntime:
        if self._runtime is None:
            self._runtime = CUDARuntime(self.spec)
        return self._runtime

    @staticmethod
    def parse_device(device: str) -> object:
        return parse_device(device)

    def device_names(self) -> tuple[str, ...]:
        return DEVICE_NAMES

    def for_device(self, device: str) -> CUDABackend:
        index = parse_device(device)
        if index == parse_device(self.spec):
            return self
        if index not in self._per_device:
            backend = CUDABackend(f"cuda:{index}")
            backend.runtime()  # a bad ordinal fails here, naming the devices
            self._per_device[index] = backend
        return self._per_device[index]

    def describe(self) -> list[str]:
        nvcc = find_nvcc()
        lines = []
        try:
            lines.append(f"nvcc: {nvcc} ({nvcc_version(nvcc)})" if nvcc else "nvcc: not found")
            lines += list_devices() or ["no CUDA devices"]
        except Exception as e:  # no pycuda, no driver, a broken toolkit: say why
            return [*lines, f"{type(e).__name__}: {e}"]
        if self._runtime is not None:
            lines.append(self._runtime.blas_note)
        return lines
