"""nvcc as the CUDA backend's compiler: CUDA C source to a cubin for one GPU architecture,
cached on disk by content (source, dialect, nvcc version, flags, architecture).

Only the toolkit is needed here, no GPU and no pycuda, so machines without a GPU (CI) can check
that every kernel the renderer prints compiles.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from theanine.cache import cached_build, raise_if_disk_full

# IEEE division and square root, denormals kept: NumPy's results within the conformance
# tolerances. No --use_fast_math (its approximate expf/logf/divide are off by more than that).
FLAGS = ("-prec-div=true", "-prec-sqrt=true", "-ftz=false", "-w")


class NvccError(RuntimeError):
    """nvcc rejected a source; the message holds its diagnostics."""


def find_nvcc() -> str | None:
    """nvcc on PATH, else in $CUDA_HOME, $CUDA_PATH or /usr/local/cuda."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and os.access(os.path.join(root, "bin", "nvcc"), os.X_OK):
            return os.path.join(root, "bin", "nvcc")
    return None


@functools.cache
def nvcc_version(nvcc: str) -> str:
    """The release line of `nvcc --version` (e.g. 'Cuda compilation tools, release 13.0, ...')."""
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True)
    lines = [x for x in out.stdout.splitlines() if "release" in x]
    return (lines or out.stdout.splitlines() or ["unknown"])[-1].strip()


def nvcc_command(nvcc: str, src: Path, out: Path, arch: str, target: str = "cubin") -> list[str]:
    """The nvcc command line compiling CUDA source `src` (any suffix) to `target` for `arch`."""
    return [nvcc, f"-{target}", f"-arch={arch}", *FLAGS, "-x", "cu", "-o", str(out), str(src)]


def run_nvcc(nvcc: str, src: Path, out: Path, arch: str, target: str = "cubin") -> None:
    """Compile, raising NvccError with nvcc's diagnostics on failure."""
    done = subprocess.run(nvcc_command(nvcc, src, out, arch, target), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise_if_disk_full("nvcc", done.stderr + done.stdout)
        raise NvccError(f"nvcc failed (exit {done.returncode}) compiling {src} for {arch}:\n"
                        f"{done.stderr}{done.stdout}")


def compile_cubin(source: str, arch: str) -> bytes:
    """The cubin of `source` for `arch` (e.g. 'sm_90'), built once and then read from the cache."""
    nvcc = find_nvcc()
    if nvcc is None:
        raise NvccError("nvcc was not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin); the "
                        "CUDA backend needs the CUDA toolkit to compile its kernels")
    parts = {"dialect": "cuda", "nvcc": nvcc_version(nvcc), "flags": list(FLAGS), "arch": arch}
    with cached_build("cuda", source, parts, ".cubin",
                      lambda src, out: run_nvcc(nvcc, src, out, arch)) as entry:
        return entry.data
