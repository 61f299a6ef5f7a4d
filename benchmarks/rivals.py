"""The implementations theanine-c is compared with: numexpr (2 threads), PyTensor in its default
mode and in its C mode (both with trust_input=True), a hand-written OpenMP C loop, and for random
draws JAX and PyTorch on the CPU.

numexpr, PyTensor, JAX and PyTorch are optional: when one is not installed its columns are
skipped and a note says why (`NOTES`). They are imported lazily so the compile-time probe never
loads them.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

NUMEXPR_THREADS = 2  # the setting; c_backend.py --threads changes it before first use
NOTES: list[str] = []
PT_COLUMNS = ("pt-default", "pt-c")
_HERE = Path(__file__).resolve().parent


@cache
def print_notes(started: float) -> None:
    """The notes on skipped rivals, then the run's total time since `started`."""
    if NOTES:
        print("\n== notes")
        for note in NOTES:
            print(f"- {note}")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f}s")


def numexpr_module():
    """numexpr set to NUMEXPR_THREADS threads, or None (with a note) when not installed."""
    try:
        import numexpr
    except ImportError as e:
        NOTES.append(f"numexpr column skipped: {e} (pip install numexpr)")
        return None
    numexpr.set_num_threads(NUMEXPR_THREADS)
    return numexpr


@cache
def pytensor_module():
    """The `pytensor` package, or None (with a note) when not installed."""
    try:
        import pytensor
        import pytensor.tensor  # noqa: F401
    except ImportError as e:
        NOTES.append(f"PyTensor columns skipped: {e} (pip install pytensor)")
        return None
    logging.getLogger("pytensor").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    NOTES.append(f"PyTensor {pytensor.__version__}: pt-default = its default mode "
                 f"(linker {_default_linker(pytensor)}), pt-c = Mode(linker='cvm', "
                 f"optimizer='fast_run'); both trust_input=True")
    if not pytensor.config.blas__ldflags:
        NOTES.append("PyTensor found no BLAS to link (config.blas__ldflags is empty, usual for a "
                     "pip install), so pt-c runs dot/gemm without BLAS: its MLP figure is "
                     "pessimistic")
    return pytensor


@cache
def jax_module():
    """`jax` on its CPU device, or None (with a note) when not installed."""
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
    except ImportError as e:
        NOTES.append(f"jax column skipped: {e} (pip install jax)")
        return None
    NOTES.append(f"JAX {jax.__version__} on {jax.devices()[0].platform}: jitted functions "
                 "(random draws: jax.random.uniform/normal of one fixed key), waited for with "
                 "block_until_ready")
    return jax


@cache
def torch_module():
    """`torch` (CPU), or None (with a note) when not installed."""
    try:
        import torch
    except ImportError as e:
        NOTES.append(f"torch column skipped: {e} (pip install torch)")
        return None
    NOTES.append(f"PyTorch {torch.__version__}: torch.rand/randn on the CPU, "
                 f"{torch.get_num_threads()} threads")
    return torch


def _default_linker(pytensor) -> str:
    from pytensor.compile.mode import get_default_mode

    return type(get_default_mode().linker).__name__


def _pytensor_mode(column: str):
    from pytensor.compile.mode import Mode

    return None if column == "pt-default" else Mode(linker="cvm", optimizer="fast_run")


def pytensor_function(column: str, inputs, outputs, updates=None) -> Callable:
    """Compile a PyTensor graph in the mode of `column` ('pt-default' or 'pt-c')."""
    return pytensor_module().function(inputs, outputs, updates=updates,
                                      mode=_pytensor_mode(column), trust_input=True)


def pytensor_functions(inputs, outputs, updates=None) -> dict[str, Callable]:
    """The PyTensor graph compiled in each mode, {column: function}; {} without PyTensor."""
    if pytensor_module() is None:
        return {}
    return {col: pytensor_function(col, inputs, outputs, updates) for col in PT_COLUMNS}


@cache
def _omp_library() -> ctypes.CDLL | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        NOTES.append("c-loop column skipped: gcc not found")
        return None
    with tempfile.TemporaryDirectory(prefix="theanine-bench-") as tmp:
        out = Path(tmp) / "omp_poly.so"
        cmd = [gcc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC",
               str(_HERE / "omp_poly.c"), "-o", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            NOTES.append(f"c-loop column skipped: {' '.join(cmd)} failed: {done.stderr.strip()}")
            return None
        lib = ctypes.CDLL(str(out))  # stays mapped after its directory is removed
    for name in ("poly_f64", "poly_f32"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        fn.restype = None
    NOTES.append("c-loop = benchmarks/omp_poly.c, gcc -O3 -march=native -fopenmp, called via "
                 "ctypes; it allocates its output each call, as theanine-c does")
    return lib


def c_loop(dtype: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The hand-written OpenMP loop for a**2 + b**2 + 2*a*b on contiguous 1-d arrays of
    `dtype`, returning a new array; None when it could not be built."""
    lib = _omp_library()
    if lib is None:
        return None
    fn = lib.poly_f64 if dtype == "float64" else lib.poly_f32

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        fn(a.ctypes.data, b.ctypes.data, out.ctypes.data, a.size)
        return out

    return run
