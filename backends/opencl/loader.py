"""Points the OpenCL ICD loader at the CPU platform `theanine setup-opencl` installed, before
pyopencl first asks the loader for platforms.

The platform lives in a private folder (`platform_home()`), described by `platform.json`: the ICD
library, the libraries it needs that the system lacks (loaded here by absolute path, so no
LD_LIBRARY_PATH is needed), and environment defaults such as POCL_LLVM_CPU_NAME. Variables the
user set win: a user's own OCL_ICD_VENDORS leaves the loader alone.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_VENDORS = "/etc/OpenCL/vendors"


def platform_home() -> Path:
    """Where `theanine setup-opencl` keeps the platform: THEANINE_OPENCL_HOME, else inside this
    Python environment, so a virtual environment carries its own and `make clean` removes it."""
    chosen = os.environ.get("THEANINE_OPENCL_HOME")
    return Path(chosen) if chosen else Path(sys.prefix) / "share" / "theanine" / "opencl"


@dataclass
class LoaderState:
    """What `configure()` did, for `theanine info`."""

    platform: dict | None = None  # the platform.json of the set-up platform, if any
    notes: list[str] = field(default_factory=list)
    icd_library: str | None = None  # the ICD library theanine added, when it was added


_state: LoaderState | None = None
_lock = threading.Lock()


def read_platform() -> dict | None:
    """The installed platform's description, or None when none is set up (or it is broken)."""
    path = platform_home() / "platform.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not Path(meta.get("icd", "")).is_file():
        return None
    return meta


def configure() -> LoaderState:
    """Once per process: load the set-up platform's libraries, apply its environment defaults
    and point OCL_ICD_VENDORS at a folder holding its ICD file beside the system's ones."""
    global _state
    with _lock:
        if _state is None:
            _state = _configure()
        return _state


def _configure() -> LoaderState:
    state = LoaderState()
    meta = state.platform = read_platform()
    if meta is None:
        return state
    if "OCL_ICD_VENDORS" in os.environ:
        state.notes.append(f"OCL_ICD_VENDORS={os.environ['OCL_ICD_VENDORS']} from the "
                           "environment: theanine's PoCL is not added")
        return state
    for key, value in meta.get("env", {}).items():
        if key in os.environ:
            if os.environ[key] != value:
                state.notes.append(f"{key}={os.environ[key]} from the environment (the "
                                   f"set-up platform suggests {value})")
        else:
            os.environ[key] = value
    try:
        preload(meta.get("preload", []))
        os.environ["OCL_ICD_VENDORS"] = str(vendors_dir(meta["icd"]))
    except OSError as e:
        state.notes.append(f"theanine's PoCL could not be loaded ({e}); run `theanine "
                           "setup-opencl` again")
        return state
    state.icd_library = meta["icd"]
    return state


def preload(libraries: list[str]) -> None:
    """Load the platform's private libraries globally, each after those it needs: the dynamic
    linker then resolves the ICD library's dependencies to them by soname."""
    pending = list(libraries)
    while pending:
        failed = []
        for path in pending:
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as e:
                failed.append((path, e))
        if len(failed) == len(pending):
            raise OSError(f"cannot load {failed[0][0]}: {failed[0][1]}")
        pending = [path for path, _ in failed]


def vendors_dir(icd_library: str) -> Path:
    """A folder of .icd files: the system's (OPENCL_VENDOR_PATH or /etc/OpenCL/vendors) and one
    naming `icd_library`. Kept in step with the system folder on every call."""
    folder = platform_home() / "vendors"
    folder.mkdir(parents=True, exist_ok=True)
    system = Path(os.environ.get("OPENCL_VENDOR_PATH") or SYSTEM_VENDORS)
    wanted = {"theanine-pocl.icd": icd_library + "\n"}
    if system.is_dir():
        for entry in sorted(system.glob("*.icd")):
            try:
                wanted[f"system-{entry.name}"] = entry.read_text()
            except OSError:
                continue
    for stale in folder.glob("*.icd"):
        if stale.name not in wanted:
            stale.unlink(missing_ok=True)
    for name, text in wanted.items():
        target = folder / name
        try:
            if target.read_text() == text:
                continue
        except OSError:
            pass
        tmp = folder / f".{name}.{os.getpid()}"
        tmp.write_text(text)
        tmp.replace(target)  # atomic: concurrent processes never see half a file
    return folder
