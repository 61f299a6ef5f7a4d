"""Finding clang and building a shared library with it, cached by content in theanine's cache.

clang is `clang` on PATH, else zig's bundled clang (`python -m ziglang cc`, the `ziglang`
package from PyPI), so the backend can be installed without root.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from theanine.cache import CacheEntry, cached_build

# -O3 with clang's loop vectorizer; no FMA contraction and no errno, so results round like
# NumPy's; one thread (no OpenMP runtime is assumed)
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno",
         "-fno-strict-aliasing", "-Wno-everything"]


class CompileError(RuntimeError):
    """clang rejected generated source (a bug in the backend): the message holds its output."""


@functools.lru_cache(maxsize=1)
def find_clang() -> tuple[list[str] | None, str]:
    """(command running clang, its version line), or (None, why there is none)."""
    if shutil.which("clang"):
        command = [shutil.which("clang")]
    elif importlib.util.find_spec("ziglang") is not None:
        command = [sys.executable, "-m", "ziglang", "cc"]
    else:
        return None, ("no clang: install clang, or `pip install theanine-clang[zig]` for "
                      "zig's bundled clang")
    try:
        out = subprocess.run([*command, "--version"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{' '.join(command)} --version failed: {e}"
    first = out.stdout.splitlines()[0] if out.stdout else ""
    if out.returncode != 0 or "clang" not in first:
        return None, f"{' '.join(command)} --version did not report clang: {first!r}"
    return command, first


@functools.lru_cache(maxsize=1)
def target() -> str:
    """The CPU binaries are built for (-march=native): machine plus a hash of its flags."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = "".join(line for line in f if line.startswith(("flags", "Features")))
    except OSError:
        flags = platform.processor()
    return f"{platform.machine()}-{hashlib.sha256(flags.encode()).hexdigest()[:16]}"


def build(source: str) -> CacheEntry:
    """Compile `source` into a shared library (cached by source, clang version, flags and
    target CPU); the checked cache entry, to load with `entry.load_library(ctypes.CDLL)`."""
    command, version = find_clang()
    if command is None:
        raise CompileError(version)
    parts = {"dialect": "clang", "compiler": " ".join(command), "version": version,
             "flags": FLAGS, "target": target()}

    def run(src: Path, out: Path) -> None:
        cmd = [*command, *FLAGS, "-x", "c", str(src), "-o", str(out), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise CompileError(f"clang failed ({' '.join(cmd)}):\n{res.stderr[-4000:]}")

    return cached_build("clang", source, parts, ".so", run)
