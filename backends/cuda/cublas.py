"""cuBLAS through ctypes for float32/float64 GEMM on device pointers.

cuBLAS is column-major; a row-major (rows, cols) view whose rows are contiguous is, to cuBLAS,
its transpose with leading dimension = row stride, and one whose columns are contiguous is
itself. So row-major C = A @ B is computed as column-major C^T = B^T A^T, each operand passed
as it lies (no copy) with the op flag that turns it into what the product needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os

OP_N, OP_T = 0, 1
INT_MAX = 2**31 - 1
_STATUS = {1: "NOT_INITIALIZED", 3: "ALLOC_FAILED", 7: "INVALID_VALUE", 8: "ARCH_MISMATCH",
           11: "MAPPING_ERROR", 13: "EXECUTION_FAILED", 14: "INTERNAL_ERROR",
           15: "NOT_SUPPORTED", 16: "LICENSE_ERROR"}


def candidate_paths() -> list[str]:
    """Where libcublas may be: the loader's search path, CUDA toolkits, NVIDIA's pip wheels."""
    found = [ctypes.util.find_library("cublas")]
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, roots):
        found += sorted(glob.glob(os.path.join(root, "lib64", "libcublas.so*")), reverse=True)
    try:
        spec = importlib.util.find_spec("nvidia.cublas")
    except (ImportError, ValueError):
        spec = None
    for base in (spec.submodule_search_locations or []) if spec else []:
        found += sorted(glob.glob(os.path.join(base, "lib", "libcublas.so*")), reverse=True)
    return list(dict.fromkeys(p for p in found if p))


def operand(shape: tuple[int, int], strides: tuple[int, int]) -> tuple[int, int] | None:
    """(op, leading dimension) under which cuBLAS reads the transpose of a row-major
    (rows, cols) view with these element strides, or None when it cannot (overlapping,
    negative or broadcast strides): then the caller copies it first."""
    rows, cols = shape
    s0 = strides[0] if rows > 1 else None  # a length-1 axis's stride is never used
    s1 = strides[1] if cols > 1 else None
    if s1 in (1, None) and (s0 is None or s0 >= cols) and (s0 or 1) <= INT_MAX:
        return OP_N, s0 if s0 is not None else max(cols, 1)
    if s0 in (1, None) and (s1 is None or s1 >= rows) and (s1 or 1) <= INT_MAX:
        return OP_T, s1 if s1 is not None else max(rows, 1)
    return None


class Cublas:
    """A cuBLAS handle (made on the CUDA context current at creation) and its GEMMs."""

    def __init__(self, path: str):
        lib = ctypes.CDLL(path)
        handle = ctypes.c_void_p()
        _check(lib.cublasCreate_v2(ctypes.byref(handle)), "cublasCreate")
        self.path, self.handle = path, handle
        argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                    ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                    ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                    ctypes.c_int]
        self._fns = {}
        for dtype, name, scalar in (("float32", "cublasSgemm_v2", ctypes.c_float),
                                    ("float64", "cublasDgemm_v2", ctypes.c_double)):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, ctypes.c_int
            self._fns[dtype] = (fn, scalar)

    @classmethod
    def load(cls) -> tuple[Cublas | None, str]:
        """The first libcublas that loads and gives a handle, and a line saying which (or why
        none did)."""
        problems = []
        for path in candidate_paths():
            try:
                blas = cls(path)
            except (OSError, AttributeError, RuntimeError) as e:
                problems.append(f"{path}: {e}")
                continue
            return blas, f"cuBLAS: {path}"
        return None, "cuBLAS: " + ("; ".join(problems) or "libcublas not found") + \
            " (GEMM runs the tiled kernel)"

    def row_major_gemm(self, dtype: str, m: int, n: int, k: int, alpha, a: tuple, b: tuple,
                       beta, c: int) -> None:
        """C (contiguous m x n at address c) = alpha * A @ B + beta * C, with a and b given as
        (address, op, ld) from `operand`."""
        fn, scalar = self._fns[dtype]
        (pa, opa, lda), (pb, opb, ldb) = a, b
        _check(fn(self.handle, opb, opa, n, m, k, ctypes.byref(scalar(alpha)), pb, ldb, pa,
                  lda, ctypes.byref(scalar(beta)), c, n), f"gemm ({dtype})")


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"cuBLAS {what} failed: CUBLAS_STATUS_{_STATUS.get(status, status)}")
