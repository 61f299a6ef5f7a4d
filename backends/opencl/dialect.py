"""The OpenCL C dialect: `__kernel`/`__global`/`__local`, get_global_id and friends, overloaded
math builtins (no f suffix), and C's fixed-width type names defined over OpenCL's."""

from __future__ import annotations

from theanine.codegen.gpu import GpuDialect

_TYPEDEFS = """
typedef char int8_t; typedef short int16_t; typedef int int32_t; typedef long int64_t;
typedef uchar uint8_t; typedef ushort uint16_t; typedef uint uint32_t; typedef ulong uint64_t;
typedef uchar npy_bool;
"""


class OpenCLDialect(GpuDialect):
    """OpenCL C 1.2; float64 only where the device has cl_khr_fp64."""

    name = "opencl"
    math_suffix = {"float32": "", "float64": ""}
    math_names = {"nearbyint": "rint"}

    def __init__(self, fp64: bool):
        self.float_dtypes = ("float32", "float64") if fp64 else ("float32",)
        pragma = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" if fp64 else ""
        self.header = pragma + _TYPEDEFS
