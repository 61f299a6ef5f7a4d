"""The hook-spec lock: every HOOKSPEC_VERSION's spec names and argument names, checked in as
`hookspecs.lock`, so a spec cannot change under a released version number."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import ModuleType

LOCK_FILE = Path(__file__).with_name("hookspecs.lock")


def current_specs(module: ModuleType) -> dict[str, tuple[str, ...]]:
    """The hook specs of `module` (functions carrying pluggy's spec marker): name -> args."""
    project = module.PROJECT
    return {name: tuple(inspect.signature(fn).parameters)
            for name, fn in inspect.getmembers(module, inspect.isfunction)
            if hasattr(fn, f"{project}_spec")}


def read_lock(text: str) -> dict[int, dict[str, tuple[str, ...]]]:
    """Parse lock lines `VERSION name(arg, ...)` (# starts a comment) by version."""
    versions: dict[int, dict[str, tuple[str, ...]]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        version, _, spec = line.partition(" ")
        name, _, args = spec.strip().partition("(")
        if not version.isdigit() or not args.endswith(")"):
            raise ValueError(f"hookspecs.lock line {number}: expected 'VERSION name(args)', "
                             f"got {raw!r}")
        arg_names = tuple(a.strip() for a in args[:-1].split(",") if a.strip())
        versions.setdefault(int(version), {})[name] = arg_names
    return versions


def lock_problems(module: ModuleType, lock_text: str) -> list[str]:
    """What disagrees between `module`'s specs and version and the lock (empty when none)."""
    version = module.HOOKSPEC_VERSION
    lock = read_lock(lock_text)
    current = current_specs(module)
    if version not in lock:
        return [f"HOOKSPEC_VERSION is {version} but hookspecs.lock has no version {version}: "
                f"record the specs as version {version} in it"]
    problems = []
    if max(lock) != version:
        problems.append(f"hookspecs.lock records version {max(lock)}, newer than "
                        f"HOOKSPEC_VERSION {version}")
    locked = lock[version]
    for name in sorted(set(locked) | set(current)):
        if locked.get(name) != current.get(name):
            was = "absent" if name not in locked else f"({', '.join(locked[name])})"
            now = "absent" if name not in current else f"({', '.join(current[name])})"
            problems.append(f"hook spec {name} changed under version {version}: locked {was}, "
                            f"now {now}; bump HOOKSPEC_VERSION and add the new specs to "
                            "hookspecs.lock under it")
    return problems
