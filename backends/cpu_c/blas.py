"""Find the BLAS that NumPy itself links (its bundled scipy-openblas), so generated code can
call gemm directly with alpha and beta instead of going through NumPy's dot."""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import numpy as np

_SYMBOLS = {"sgemm": ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "cblas_sgemm"),
            "dgemm": ("scipy_cblas_dgemm64_", "cblas_dgemm64_", "cblas_dgemm")}


@functools.lru_cache(maxsize=1)
def gemm_pointers() -> tuple[int, int, bool, str]:
    """(sgemm address, dgemm address, ilp64, description), or zeros and the reason.

    Only NumPy's own bundled OpenBLAS is used: it is already loaded in the process, and its
    ILP64 (64-bit integer) interface is known from the symbol suffix.
    """
    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    candidates = sorted(glob.glob(os.path.join(libdir, "libscipy_openblas*.so*")))
    if not candidates:
        return 0, 0, False, "NumPy's bundled OpenBLAS was not found; Dot runs through np.dot"
    lib = ctypes.CDLL(candidates[0])
    found = {}
    for kind, names in _SYMBOLS.items():
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                found[kind] = (ctypes.cast(fn, ctypes.c_void_p).value, name.endswith("64_"))
                break
    if len(found) != 2 or found["sgemm"][1] != found["dgemm"][1]:
        return 0, 0, False, "NumPy's OpenBLAS has no cblas gemm symbols; Dot runs through np.dot"
    return (found["sgemm"][0], found["dgemm"][0], found["dgemm"][1],
            f"{os.path.basename(candidates[0])} (cblas gemm)")


@functools.lru_cache(maxsize=1)
def blas_threads_pointer() -> int:
    """The address of openblas_set_num_threads_local in NumPy's OpenBLAS (0 if it has none):
    loops set their own thread's BLAS to one thread while they run."""
    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    candidates = sorted(glob.glob(os.path.join(libdir, "libscipy_openblas*.so*")))
    if not candidates:
        return 0
    fn = getattr(ctypes.CDLL(candidates[0]), "openblas_set_num_threads_local", None)
    return 0 if fn is None else ctypes.cast(fn, ctypes.c_void_p).value
