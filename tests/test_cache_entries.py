"""Compile cache entries: what is not a plain file of the user is rebuilt without being read,
a shared object is loaded through the descriptor that was checked, and a full disk says so and
where."""

import ctypes
import errno
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

import theanine as th
import theanine.cache as cache
import theanine.tensor as T
from theanine.backends.cpu_c import compiler
from theanine.cache import DiskFullError, cached_build

HAS_GCC = shutil.which("gcc") is not None


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("THEANINE_CACHE_DIR", str(d))
    return d


def _copy_build(src, out):
    out.write_bytes(b"binary for " + src.read_bytes())


def _entry_path(source):
    with cached_build("kind", source, {}, ".bin", _copy_build) as entry:
        return entry.path


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


BAD_ENTRIES = {
    "fifo": lambda p: os.mkfifo(p),
    "symlink to /dev/zero": lambda p: p.symlink_to("/dev/zero"),
    "char device": lambda p: os.mknod(p, 0o600 | 0o020000, os.makedev(1, 5)),  # /dev/zero's
}


@pytest.mark.parametrize("kind", list(BAD_ENTRIES))
def test_an_entry_that_is_no_regular_file_is_rebuilt_without_reading_it(cache_dir, kind):
    """Today a FIFO blocks forever and /dev/zero is read until MemoryError: run the lookup in a
    child process with a time and memory limit."""
    if kind == "char device" and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    path = _entry_path("src")  # the checksum file stays: only the entry is replaced
    path.unlink()
    BAD_ENTRIES[kind](path)
    code = textwrap.dedent("""
        from theanine.cache import cached_build
        def build(src, out):
            out.write_bytes(b"binary for " + src.read_bytes())
        with cached_build("kind", "src", {}, ".bin", build) as entry:
            print(entry.data.decode())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "binary for src"
    assert path.is_file() and not path.is_symlink() and path.read_bytes() == b"binary for src"


def test_an_oversized_entry_is_rebuilt_not_read(cache_dir, monkeypatch):
    path = _entry_path("src")
    planted = b"binary for src, and much more"  # its checksum matches: only its size is wrong
    path.write_bytes(planted)
    path.with_suffix(".sha256").write_text(hashlib.sha256(planted).hexdigest())
    monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", len(planted) - 1)
    with cached_build("kind", "src", {}, ".bin", _copy_build) as entry:
        assert entry.data == b"binary for src"


def test_an_entry_another_uid_owns_is_rebuilt(cache_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another uid")
    path = _entry_path("src")
    os.chown(path, 65534, 65534)
    with cached_build("kind", "src", {}, ".bin", _copy_build) as entry:
        assert entry.data == b"binary for src"
    assert os.stat(path).st_uid == 0


def _gcc_library(value, out):
    src = out.with_suffix(".c")
    src.write_text(f"int value(void) {{ return {value}; }}\n")
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(out)], check=True)


@pytest.mark.skipif(not HAS_GCC, reason="needs gcc")
def test_the_loader_loads_the_checked_file_not_what_the_path_names_later(cache_dir, tmp_path):
    with cached_build("lib", "one", {}, ".so", lambda src, out: _gcc_library(1, out)) as entry:
        # after the check, someone swaps both the file and its directory for their own
        _gcc_library(2, tmp_path / "theirs.so")
        os.replace(tmp_path / "theirs.so", entry.path)
        theirs = tmp_path / "their_dir"
        theirs.mkdir()
        _gcc_library(3, theirs / entry.path.name)
        os.rename(cache_dir / "lib", tmp_path / "ours")
        os.rename(theirs, cache_dir / "lib")
        assert entry.load_library(ctypes.CDLL).value() == 1
        assert not [p for p in (tmp_path / "ours").iterdir() if p.name.startswith(".load-")]


@pytest.mark.skipif(not HAS_GCC, reason="needs gcc")
def test_libraries_loaded_one_after_another_are_each_their_own(cache_dir):
    """Descriptor numbers are reused, and the dynamic loader returns an object already loaded
    under the same name: each load must use a fresh name."""
    for value in (11, 12, 13):
        with cached_build("lib", f"v{value}", {}, ".so",
                          lambda src, out, v=value: _gcc_library(v, out)) as entry:
            assert entry.load_library(ctypes.CDLL).value() == value


def test_a_file_system_without_hard_links_loads_a_private_copy(cache_dir, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with cached_build("kind", "src", {}, ".bin", _copy_build) as entry:
        assert entry.load_library(lambda path: open(path, "rb").read()) == b"binary for src"
        assert not [p for p in entry.path.parent.iterdir() if p.name.startswith(".")]


def test_a_full_disk_writing_an_entry_names_the_cache_directory(cache_dir, monkeypatch):
    real_write = os.write

    def full(fd, data):
        if len(data) > 40:  # the entry itself (the checksum file is 64 hex digits)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(DiskFullError, match=f"No space left on device: theanine could not write "
                                            f"the kind cache entry in {cache_dir / 'kind'}; free "
                                            f"space there, or set THEANINE_CACHE_DIR") as info:
        cached_build("kind", "a source longer than the checksum", {}, ".bin", _copy_build)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert not list((cache_dir / "kind").iterdir())  # no partial entry, no temporary file


@pytest.mark.skipif(not HAS_GCC, reason="needs gcc")
def test_gcc_out_of_space_is_a_disk_full_error_naming_the_temporary_directory(cache_dir,
                                                                              tmp_path,
                                                                              monkeypatch):
    stderr = ("/tmp/x/ccq.s: Assembler messages:\n/tmp/x/ccq.s: Fatal error: can't fill 256 "
              "bytes in section .rodata of /tmp/x/cck.o: 'No space left on device'\n")
    monkeypatch.setattr(compiler, "run_compiler", lambda cmd: (1, stderr))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(DiskFullError, match=f"No space left on device: gcc could not write its "
                                            f"output in {tmp_path} .*set TMPDIR"):
        compiler.build_shared_object("int unused_by_this_test;")


def test_nvcc_over_quota_is_a_disk_full_error(tmp_path, monkeypatch):
    from theanine.backends.cuda import compiler as cuda_compiler

    said = "nvcc fatal   : Could not write to file: Disk quota exceeded\n"
    monkeypatch.setattr(cuda_compiler.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 1, "", said))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(DiskFullError, match=f"Disk quota exceeded: nvcc could not write its "
                                            f"output in {tmp_path} ") as info:
        cuda_compiler.run_nvcc("nvcc", tmp_path / "k.cu", tmp_path / "k.cubin", "sm_90")
    assert info.value.errno == errno.EDQUOT


def test_a_build_that_writes_no_regular_file_is_a_clear_error(cache_dir):
    with pytest.raises(RuntimeError, match="the kind build wrote no regular file"):
        cached_build("kind", "src", {}, ".bin", lambda src, out: os.mkfifo(out))


@pytest.fixture
def tiny_tmpdir(tmp_path, monkeypatch):
    """A 64 KiB tmpfs as the temporary directory (root only)."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                                            str(tiny)], capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to fill a real disk")
    monkeypatch.setenv("TMPDIR", str(tiny))
    monkeypatch.setattr(tempfile, "tempdir", str(tiny))
    yield tiny
    subprocess.run(["umount", str(tiny)], check=True)


@pytest.mark.skipif(not HAS_GCC, reason="needs gcc")
def test_a_real_full_temporary_disk_during_a_c_build(cache_dir, tiny_tmpdir):
    x = T.dvector("x")
    outs = [T.exp(x) * k + T.sin(x) for k in range(2)]  # its source fits, gcc's output not
    with pytest.raises(DiskFullError, match=f"No space left on device: gcc could not write its "
                                            f"output in {tiny_tmpdir} "):
        th.function([x], outs, backend="c")
