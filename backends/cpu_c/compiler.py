"""gcc: C source to a shared object in the compile cache, loaded with ctypes."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np

from theanine.cache import cached_build

FLAGS = ["-O2", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno",
         "-ffp-contract=off",
         "-fno-strict-aliasing", "-w"]


class CompileError(RuntimeError):
    """gcc rejected generated source (a theanine bug): the message holds gcc's output."""


@functools.lru_cache(maxsize=1)
def find_compiler() -> tuple[str | None, str]:
    """(path to gcc, its version line), or (None, reason)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None, "no C compiler (gcc or cc) on PATH"
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{cc} --version failed: {e}"
    return cc, out.stdout.splitlines()[0] if out.stdout else cc


@functools.lru_cache(maxsize=1)
def _openmp_and_headers() -> str:
    """Empty if gcc can build an OpenMP extension against Python and NumPy headers, else why."""
    cc, why = find_compiler()
    if cc is None:
        return why
    py_inc = sysconfig.get_paths()["include"]
    if not Path(py_inc, "Python.h").exists():
        return f"Python headers are missing ({py_inc}/Python.h); install python3-dev"
    return ""


@functools.lru_cache(maxsize=1)
def target_id() -> str:
    """The CPU the binaries are built for (-march=native): machine plus CPU flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features", "model name")):
                    flags += line
    except OSError:
        pass
    return f"{platform.machine()}-{hashlib.sha256(flags.encode()).hexdigest()[:16]}"


@functools.lru_cache(maxsize=1)
def vector_math() -> bool:
    """True if glibc's libmvec (SIMD exp, log, tanh, ...) can be linked."""
    import ctypes.util

    return ctypes.util.find_library("mvec") is not None


def include_dirs() -> list[str]:
    return [sysconfig.get_paths()["include"], np.get_include(), str(Path(__file__).parent)]


def build_shared_object(source: str) -> Path:
    """Compile `source` (cached by content) and return the shared object's path."""
    cc, version = find_compiler()
    if cc is None:
        raise CompileError(version)
    headers = hashlib.sha256()  # every header the generated source includes
    for h in sorted(Path(__file__).parent.glob("*.h")):
        headers.update(h.name.encode() + b"\0" + h.read_bytes())
    parts = {"dialect": "c", "compiler": cc, "version": version, "flags": FLAGS,
             "target": target_id(), "python": sysconfig.get_config_var("SOABI"),
             "numpy": np.__version__, "headers": headers.hexdigest()}

    def build(src: Path, out: Path) -> None:
        libs = ["-lmvec", "-lm"] if "omp declare simd" in source else ["-lm"]
        cmd = [cc, *FLAGS, *[f"-I{d}" for d in include_dirs()], str(src), "-o", str(out), *libs]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise CompileError(f"gcc failed ({' '.join(cmd)}):\n{res.stderr[-4000:]}")

    return cached_build("cpu_c", source, parts, ".so", build)


def load(path: Path) -> ctypes.PyDLL:
    """Load a built program; PyDLL keeps the GIL and raises the Python error it sets."""
    return ctypes.PyDLL(str(path))
