"""A theanine backend compiled by clang (see docs/writing-a-backend.md).

Fused elementwise and reduction kernels are printed by theanine's C-style renderer through a
clang dialect, built by clang into a plain shared library (no Python C API), and called through
ctypes by a small Python executor that runs every other op through its NumPy implementation.
"""

from theanine_clang.backend import ClangBackend

__all__ = ["ClangBackend"]
