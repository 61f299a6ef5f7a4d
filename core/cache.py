"""The on-disk compile cache: content-addressed files in directories only the user can write,
read and loaded only through descriptors that were checked.

Key = SHA-256 of everything the binary depends on (source, dialect, compiler and version,
flags, target). A build runs in a private temporary directory; its output is written to a
temporary file in the cache directory and renamed into place, so readers never see a partial
file and several processes building the same entry at once are safe (the last rename wins;
every candidate is complete and equal). Each entry has a checksum file; an entry whose checksum
does not match is rebuilt, never loaded.

Every directory from the cache root down is opened with O_NOFOLLOW and checked on its open
descriptor (owned by the user running theanine, writable by nobody else), and everything below
is reached relative to that descriptor, so nobody can swap a directory or a file between the
check and the use. An entry that is not a regular file of the user (a FIFO, a device, a
symbolic link) or is oversized counts as corrupt: it is rebuilt, never read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

MAX_ENTRY_BYTES = 256 << 20  # no compiled program comes near; a bigger entry is refused
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never blocks
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
T = TypeVar("T")


class UnsafeCacheError(PermissionError):
    """The cache directory could be written by someone else; loading from it is refused."""


class DiskFullError(OSError):
    """No space (or no quota) left where theanine writes a build or a cache entry."""


def cache_root() -> Path:
    """$THEANINE_CACHE_DIR, else $XDG_CACHE_HOME/theanine, else ~/.cache/theanine."""
    env = os.environ.get("THEANINE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "theanine"


@contextmanager
def _disk_full_as(what: str, where: Path, setting: str) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT while writing `what` into a DiskFullError naming `where`."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as e:
        if e.errno not in _DISK_FULL:
            raise
        raise DiskFullError(e.errno, f"{os.strerror(e.errno)}: theanine could not write {what} "
                                     f"in {where}; free space there, or set {setting} to a "
                                     f"directory on another disk") from e


def raise_if_disk_full(tool: str, output: str) -> None:
    """Raise DiskFullError if a compiler's `output` says it ran out of disk space (it writes its
    temporary files and its output in the temporary directory)."""
    for code in _DISK_FULL:
        if os.strerror(code) in output:
            tail = "\n".join(output.strip().splitlines()[-5:])
            raise DiskFullError(code, f"{os.strerror(code)}: {tool} could not write its output "
                                      f"in {tempfile.gettempdir()} (the temporary directory); "
                                      f"free space there, or set TMPDIR to a directory on "
                                      f"another disk. {tool} said:\n{tail}")


def _check_dir(fd: int, path: Path) -> None:
    st = os.fstat(fd)
    me = os.geteuid()
    if st.st_uid != me:
        raise UnsafeCacheError(f"theanine cache directory {path} belongs to uid {st.st_uid}, "
                               f"not to you (uid {me}); refusing to load code from it. Set "
                               f"THEANINE_CACHE_DIR to a directory of your own (theanine "
                               f"creates a missing one with mode 0700)")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCacheError(f"theanine cache directory {path} is writable by group or others "
                               f"(mode {stat.S_IMODE(st.st_mode):o}); refusing to load code from "
                               f"it. Run: chmod 700 {path}")


def _enter(dir_fd: int | None, name: str, path: Path, is_root: bool) -> int:
    """Create directory `name` (mode 0700) if missing, open it without following a symbolic
    link and check the open descriptor."""
    with _disk_full_as("a directory", path.parent, "THEANINE_CACHE_DIR"):
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            pass
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:
        if not stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise NotADirectoryError(f"theanine cache directory {path} is not a directory; "
                                     f"remove it or set THEANINE_CACHE_DIR elsewhere") from None
        target = os.readlink(name, dir_fd=dir_fd)
        todo = (f"set THEANINE_CACHE_DIR to the directory itself ({path.parent / target})"
                if is_root else "remove the link (theanine recreates the directory)")
        raise UnsafeCacheError(f"theanine cache directory {path} is a symbolic link (to "
                               f"{target}); refusing to follow it: {todo}") from None
    try:
        _check_dir(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private_dir(root: Path, *names: str) -> int:
    """A descriptor of root/names[0]/names[1]/..., each level created if missing (mode 0700),
    opened relative to the one above and checked: owned by the current user, writable by
    nobody else. The caller closes it."""
    root = Path(os.path.abspath(root))
    root.parent.mkdir(parents=True, exist_ok=True)
    fd = _enter(None, str(root), root, is_root=True)
    path = root
    try:
        for name in names:
            if name in ("", ".", "..") or "/" in name:
                raise ValueError(f"cache directory name {name!r} is not a single path component")
            path = path / name
            parent, fd = fd, -1
            try:
                fd = _enter(parent, name, path, is_root=False)
            finally:
                os.close(parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def cache_key(source: str, parts: dict) -> str:
    """The content hash naming an entry."""
    h = hashlib.sha256()
    h.update(json.dumps(parts, sort_keys=True).encode())
    h.update(b"\0")
    h.update(source.encode())
    return h.hexdigest()


def _private_file(st: os.stat_result, limit: int) -> bool:
    return (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_size <= limit
            and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _open_private(dir_fd: int, name: str, limit: int) -> int | None:
    """A descriptor of `name` if it is a regular file of the user that nobody else can write,
    of at most `limit` bytes; None if it is missing or anything else (never opened then)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not _private_file(st, limit):
            return None
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not _private_file(now, limit):
        os.close(fd)
        return None
    return fd


def _read_upto(fd: int, limit: int) -> bytes | None:
    """The file's bytes, or None if it holds more than `limit`."""
    chunks, size = [], 0
    while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def _read_private(dir_fd: int, name: str, limit: int) -> bytes | None:
    """The bytes of `name` if `_open_private` accepts it and it holds at most `limit`."""
    fd = _open_private(dir_fd, name, limit)
    if fd is None:
        return None
    try:
        return _read_upto(fd, limit)
    finally:
        os.close(fd)


def _create(dir_fd: int, name: str, data: bytes) -> int:
    """Write `data` to a new file `name` (mode 0600) and return its descriptor."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=dir_fd)
        raise
    return fd


def _write_atomic(dir_fd: int, name: str, data: bytes) -> int:
    """Write `data` under a temporary name, rename it to `name`; return the file's descriptor."""
    tmp = f".tmp-{secrets.token_hex(8)}"
    fd = _create(dir_fd, tmp, data)
    try:
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    return fd


class CacheEntry:
    """A checked cache entry: its bytes, with its file and directory held open so that what is
    loaded is the file that was checked (`path` is for messages only). Close it, or use it in a
    `with` block."""

    def __init__(self, dir_fd: int, fd: int, data: bytes, path: Path):
        self.dir_fd, self.fd, self.data, self.path = dir_fd, fd, data, path

    def load_library(self, loader: Callable[[str], T]) -> T:
        """`loader(path)` (e.g. ctypes.CDLL) on a fresh name for the checked file in the checked
        directory, reached through their descriptors; the name is removed once loaded. Fresh:
        the dynamic loader returns an object already loaded under the same name, so a reused
        /proc/self/fd/N would give back an old library."""
        name = f".load-{secrets.token_hex(8)}{self.path.suffix}"
        with _disk_full_as("a library to load", self.path.parent, "THEANINE_CACHE_DIR"):
            try:
                os.link(f"/proc/self/fd/{self.fd}", name, dst_dir_fd=self.dir_fd)
            except OSError:  # no hard links on this file system: load a private copy
                os.close(_create(self.dir_fd, name, self.data))
        try:
            return loader(f"/proc/self/fd/{self.dir_fd}/{name}")
        finally:
            os.unlink(name, dir_fd=self.dir_fd)

    def close(self) -> None:
        for fd in (self.fd, self.dir_fd):
            os.close(fd)

    def __enter__(self) -> CacheEntry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lookup(dir_fd: int, name: str, key: str, path: Path) -> CacheEntry | None:
    """The entry `name` if it and its checksum file are sound and agree, else None."""
    fd = _open_private(dir_fd, name, MAX_ENTRY_BYTES)
    if fd is None:
        return None
    try:
        data = _read_upto(fd, MAX_ENTRY_BYTES)
        check = _read_private(dir_fd, f"{key}.sha256", 64)
    except BaseException:
        os.close(fd)
        raise
    if data is None or check is None or check.strip() != hashlib.sha256(data).hexdigest().encode():
        os.close(fd)
        return None
    return CacheEntry(dir_fd, fd, data, path)


def _build(kind: str, source: str, suffix: str, build: Callable[[Path, Path], None]) -> bytes:
    """Run `build` in a private temporary directory and return what it wrote."""
    with _disk_full_as(f"a {kind} build", Path(tempfile.gettempdir()), "TMPDIR"), \
            tempfile.TemporaryDirectory(prefix=f"theanine-{kind}-") as work:
        src = Path(work) / "source.c"
        src.write_text(source)
        out = Path(work) / f"out{suffix}"
        build(src, out)
        work_fd = os.open(work, _DIR_FLAGS)
        try:
            data = _read_private(work_fd, out.name, MAX_ENTRY_BYTES)
        finally:
            os.close(work_fd)
    if data is None:
        raise RuntimeError(f"the {kind} build wrote no regular file of at most "
                           f"{MAX_ENTRY_BYTES} bytes as its output")
    return data


def cached_build(kind: str, source: str, parts: dict, suffix: str,
                 build: Callable[[Path, Path], None]) -> CacheEntry:
    """The checked cache entry for `source`, built first if missing or corrupt; close it (use
    `with cached_build(...) as entry:`), and read it only as `entry.data` or load it with
    `entry.load_library`.

    build(source_path, output_path) must write the artifact to output_path (in a private
    temporary directory).
    """
    root = cache_root()
    directory = Path(os.path.abspath(root)) / kind
    dir_fd = open_private_dir(root, kind)
    try:
        key = cache_key(source, parts)
        name = f"{key}{suffix}"
        entry = _lookup(dir_fd, name, key, directory / name)
        if entry is None:
            data = _build(kind, source, suffix, build)
            # the binary first, then its checksum: a reader that sees the checksum sees the binary
            with _disk_full_as(f"the {kind} cache entry", directory, "THEANINE_CACHE_DIR"):
                fd = _write_atomic(dir_fd, name, data)
                try:
                    os.close(_write_atomic(dir_fd, f"{key}.sha256",
                                           hashlib.sha256(data).hexdigest().encode()))
                except BaseException:
                    os.close(fd)
                    raise
            entry = CacheEntry(dir_fd, fd, data, directory / name)
    except BaseException:
        os.close(dir_fd)
        raise
    return entry


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
