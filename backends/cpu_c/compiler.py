"""gcc: C source to a shared object in the compile cache, loaded with ctypes."""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sysconfig
import threading
from pathlib import Path

import numpy as np

from theanine.cache import CacheEntry, cached_build, raise_if_disk_full
from theanine.compile.profiling import phase

# libgomp's idle workers spin for GOMP_SPINCOUNT iterations (300000 by default, about a
# millisecond) after each parallel region before they sleep. Between a program's parallel
# kernels that spinning holds the cores OpenBLAS's own threads need for the GEMMs in between:
# a loop's many small GEMMs ran 1.5-2x slower. A short spin keeps the next region's start fast
# and lets BLAS have the cores. Set before the first program loads libgomp; a user's own
# setting (or OMP_WAIT_POLICY) wins.
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

FLAGS = ["-O2", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno",
         "-ffp-contract=off",
         "-fno-strict-aliasing", "-w"]


class CompileError(RuntimeError):
    """gcc rejected generated source (a theanine bug): the message holds gcc's output. (A full
    disk is a theanine.cache.DiskFullError instead.)"""


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


def build_shared_object(source: str) -> CacheEntry:
    """Compile `source` (cached by content) and return the checked cache entry to `load`."""
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
        with phase("compiler", "gcc"):  # (a profiled function's compile time)
            returncode, stderr = run_compiler(cmd)
        if returncode != 0:
            raise_if_disk_full("gcc", stderr)
            raise CompileError(f"gcc failed ({' '.join(cmd)}):\n{stderr[-4000:]}")

    return cached_build("cpu_c", source, parts, ".so", build)


_running: set[subprocess.Popen] = set()  # compilers started and not yet finished
_running_lock = threading.Lock()
_exit_hook: list[bool] = []


def run_compiler(cmd: list[str]) -> tuple[int, str]:
    """Run a compiler command; (exit status, stderr). The compiler runs in a process group of
    its own: if the call is interrupted (KeyboardInterrupt, any exception) or Python exits
    while it runs, the whole group (the driver and its cc1, as and ld) is killed and reaped
    before the build folder is removed, so nothing keeps running or writing there."""
    proc = None
    try:
        with _running_lock:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, start_new_session=True)
            _running.add(proc)
            if not _exit_hook:
                # registered after the build folder's own cleanup at exit (tempfile's
                # finalizer registers on first use), so it runs first: atexit runs hooks in
                # reverse order
                atexit.register(_kill_running)
                _exit_hook.append(True)
        _, stderr = proc.communicate()
        return proc.returncode, stderr
    except BaseException:
        if proc is not None:
            _kill_group(proc)
        raise
    finally:
        with _running_lock:
            _running.discard(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill `proc`'s process group and reap `proc`. Only while `proc` is not reaped: until then
    its pid, which names the group, cannot be reused."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def _kill_running() -> None:
    """At interpreter exit, stop compilers that threads still wait for."""
    with _running_lock:
        for proc in list(_running):
            _kill_group(proc)


def load(entry: CacheEntry) -> ctypes.PyDLL:
    """Load a built program (the checked file, through its descriptor) and close the entry;
    PyDLL keeps the GIL and raises the Python error it sets."""
    with entry:
        return entry.load_library(ctypes.PyDLL)
