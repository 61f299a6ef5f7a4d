"""The Backend base the GPU backends share: compile through GpuProgram on the backend's
runtime and op table, keep shared variables in device memory, declare dtypes the device cannot
compute."""

from __future__ import annotations

from theanine.backend import Backend
from theanine.boundary import CallBoundary
from theanine.compile.profiling import compiling_profile, phase
from theanine.gpu.boundary import DeviceBoundary
from theanine.gpu.library import gpu_impl
from theanine.gpu.profiling import profile_program
from theanine.gpu.program import GpuProgram
from theanine.gpu.runtime import Runtime
from theanine.graph.fgraph import FunctionGraph
from theanine.op_table import OpTable


class GpuBackend(Backend):
    """A backend whose values live in device memory (`device_memory`): compiled functions take
    shared variables' device copies and leave updates there; only inputs and outputs cross.
    `impls` is the shared GPU table unless the backend has its own (over it, as OpenCL and
    CUDA do, so a plugin can add to one of them)."""

    device_memory = True
    rewrite_tags = ("gemm",)  # Gemm nodes become one GEMM kernel or cuBLAS call
    _boundary: DeviceBoundary | None = None
    impls: OpTable | None = gpu_impl

    def runtime(self) -> Runtime:
        """This backend's device runtime (created on first use)."""
        raise NotImplementedError

    @staticmethod
    def parse_device(device: str) -> object:
        """The runtime's reading of a device name (ValueError if it is not one of its names)."""
        raise ValueError(device)

    def accepts(self, device: str) -> bool:
        """Exactly the names `parse_device` reads (one rule, not two)."""
        try:
            self.parse_device(device)
        except ValueError:
            return False
        return True

    def boundary(self) -> CallBoundary:
        """Device arrays taken in place, shared values kept in device memory (one
        DeviceBoundary per runtime); host arrays only when `device_memory` is False."""
        if not self.device_memory:
            return super().boundary()
        rt = self.runtime()
        if self._boundary is None or self._boundary.runtime is not rt:
            self._boundary = DeviceBoundary(rt)
        return self._boundary

    @property
    def capabilities(self) -> dict:
        ok, _ = self.available()
        dtypes = set(self.runtime().dtypes) if ok else set()
        return {"dtypes": dtypes | {"float16", "complex64", "complex128"} if dtypes else set()}

    def compile(self, fgraph: FunctionGraph):
        rt = self.runtime()
        for v in [*fgraph.inputs, *(o for n in fgraph.nodes for o in n.outputs)]:
            if v.type.dtype == "float64" and "float64" not in rt.dtypes:
                raise TypeError(f"backend {self.name!r}: device {rt.device_name} has no float64 "
                                f"support, needed by {v}; use floatX=float32 or another "
                                "device")
        profile = compiling_profile(fgraph)
        with phase("codegen"):
            program = GpuProgram(fgraph, rt, self)
        if profile is not None:
            profile_program(program, profile, self.name)
        return program.run
