"""The CUDA C dialect: `extern "C" __global__` kernels, `__shared__` memory, threadIdx/blockIdx
indices, C math names (expf for float), and a warp-shuffle finish for reductions."""

from __future__ import annotations

from theanine.codegen.cstyle import combine, reduce_identity
from theanine.codegen.gpu import WORKGROUP, GpuDialect, GpuRenderer

WARP = 32
FULL_MASK = "0xffffffffu"
# __shfl_down_sync has no 8- or 16-bit overloads: those values travel as int
_SHUFFLE_AS = {"bool": "int", "int8": "int", "uint8": "int", "int16": "int", "uint16": "int"}

_HEADER = """
#include <stdint.h>
#include <math.h>
typedef unsigned char npy_bool;
"""


class CUDADialect(GpuDialect):
    """CUDA C++ as nvcc compiles it (kernels with C linkage so pycuda finds them by name)."""

    name = "cuda"
    kernel_qualifier = 'extern "C" __global__ void'
    global_ptr = ""
    local_qualifier = "__shared__"
    barrier = "__syncthreads();"
    restrict = "__restrict__"
    fn_qualifier = "static __device__ __forceinline__"
    header = _HEADER
    work_items = {"local_id": "(int64_t)threadIdx.{xyz}",
                  "group_id": "(int64_t)blockIdx.{xyz}",
                  "num_groups": "(int64_t)gridDim.{xyz}",
                  "global_id": "((int64_t)blockIdx.{xyz} * blockDim.{xyz} + threadIdx.{xyz})",
                  "global_size": "((int64_t)gridDim.{xyz} * blockDim.{xyz})"}


class CUDARenderer(GpuRenderer):
    """The shared GPU renderer with reductions finished by warp shuffles: each warp combines its
    32 values in registers, one value per warp goes through shared memory, and the first warp
    combines those; two barriers instead of one per tree level."""

    def __init__(self, dialect: CUDADialect | None = None, workgroup: int = WORKGROUP):
        if workgroup % WARP or not WARP <= workgroup <= WARP * WARP:
            raise ValueError(f"CUDA block size {workgroup}: must be a multiple of {WARP} up to "
                             f"{WARP * WARP}")
        super().__init__(dialect or CUDADialect(), workgroup)

    def group_reduce(self, op: str, dtype: str) -> list[str]:
        d = self.d
        t = d.type(dtype)
        warps = self.workgroup // WARP

        def fold(offsets: list[int]) -> list[str]:
            wide = _SHUFFLE_AS.get(dtype)
            value = f"({wide})red_" if wide else "red_"
            return [f"red_ = {combine(op, 'red_', shuffled, dtype, d)};" for shuffled in
                    (f"({t})__shfl_down_sync({FULL_MASK}, {value}, {o})" for o in offsets)]

        lines = [f"{t} red_ = acc;", *fold(_halvings(WARP))]
        if warps == 1:
            return [*lines, "if (lid == 0) O0[offO0 + g] = red_;"]
        return [*lines,
                f"if ((lid & {WARP - 1}) == 0) part[lid / {WARP}] = red_;",
                d.barrier,
                f"if (lid < {WARP}) {{",
                f"    red_ = lid < {warps} ? part[lid] : {reduce_identity(op, dtype, d)};",
                *["    " + x for x in fold(_halvings(warps))],
                "    if (lid == 0) O0[offO0 + g] = red_;",
                "}",
                d.barrier]


def _halvings(n: int) -> list[int]:
    """Shuffle offsets n/2, n/4, ..., 1 that fold n lanes into lane 0."""
    out = []
    while n > 1:
        n //= 2
        out.append(n)
    return out
