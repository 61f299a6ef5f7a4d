"""The on-disk compile cache: content-addressed files written atomically in a directory only
the user can write.

Key = SHA-256 of everything the binary depends on (source, dialect, compiler and version,
flags, target). A build writes to a temporary file in the cache directory and renames it into
place, so readers never see a partial file and several processes building the same entry at
once are safe (the last rename wins; every candidate is complete and equal). Each entry has a
checksum file; an entry whose checksum does not match is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


class UnsafeCacheError(PermissionError):
    """The cache directory could be written by someone else; loading from it is refused."""


def cache_root() -> Path:
    """$THEANINE_CACHE_DIR, else $XDG_CACHE_HOME/theanine, else ~/.cache/theanine."""
    env = os.environ.get("THEANINE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "theanine"


def private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if needed and check only the current user can write it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise UnsafeCacheError(f"theanine cache directory {path} belongs to uid {st.st_uid}, "
                               f"not to you (uid {os.getuid()}); refusing to load code from it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCacheError(f"theanine cache directory {path} is writable by group or others "
                               f"(mode {stat.S_IMODE(st.st_mode):o}); refusing to load code from "
                               f"it. Run: chmod 700 {path}")
    return path


def cache_key(source: str, parts: dict) -> str:
    """The content hash naming an entry."""
    h = hashlib.sha256()
    h.update(json.dumps(parts, sort_keys=True).encode())
    h.update(b"\0")
    h.update(source.encode())
    return h.hexdigest()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, directory / name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cached_build(kind: str, source: str, parts: dict, suffix: str,
                 build: Callable[[Path, Path], None]) -> Path:
    """Return the path of the built artifact for `source`, building it if missing or corrupt.

    build(source_path, output_path) must write the artifact to output_path (a temporary name in
    the cache directory).
    """
    directory = private_dir(cache_root() / kind)
    key = cache_key(source, parts)
    target = directory / f"{key}{suffix}"
    check = directory / f"{key}.sha256"
    if target.exists() and check.exists():
        try:
            if check.read_text().strip() == _digest(target):
                return target
        except OSError:
            pass
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as work:
        src = Path(work) / "source.c"
        src.write_text(source)
        out = Path(work) / f"out{suffix}"
        build(src, out)
        data = out.read_bytes()
    # the binary first, then its checksum: a reader that sees the checksum sees the binary
    _write_atomic(directory, target.name, data)
    _write_atomic(directory, check.name, hashlib.sha256(data).hexdigest().encode())
    return target


def cache_usage() -> tuple[Path, int, int]:
    """(root, number of entries, total bytes) for `theanine info`."""
    root = cache_root()
    count = size = 0
    if root.exists():
        for p in root.rglob("*"):
            if p.is_file() and not p.name.endswith(".sha256") and not p.name.startswith("."):
                count += 1
                size += p.stat().st_size
    return root, count, size
