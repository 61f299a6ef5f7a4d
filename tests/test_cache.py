"""The compile cache: private directory, atomic content-addressed entries, corrupt entries
rebuilt, and several processes compiling the same function at once."""

import os
import subprocess
import sys
import textwrap

import pytest

from theanine.cache import UnsafeCacheError, cached_build, private_dir


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("THEANINE_CACHE_DIR", str(d))
    return d


def _build_counter(calls):
    def build(src, out):
        calls.append(src.read_text())
        out.write_bytes(b"binary for " + src.read_bytes())
    return build


def test_entries_are_content_addressed_and_reused(cache_dir):
    calls = []
    a = cached_build("kind", "source A", {"flags": 1}, ".bin", _build_counter(calls))
    b = cached_build("kind", "source A", {"flags": 1}, ".bin", _build_counter(calls))
    c = cached_build("kind", "source A", {"flags": 2}, ".bin", _build_counter(calls))
    assert a == b != c and calls == ["source A", "source A"]
    assert a.read_bytes() == b"binary for source A"
    assert oct(os.stat(cache_dir / "kind").st_mode & 0o777) == "0o700"
    assert not [p for p in (cache_dir / "kind").iterdir() if p.name.startswith(".")]


def test_a_corrupt_entry_is_rebuilt_not_loaded(cache_dir):
    calls = []
    path = cached_build("kind", "src", {}, ".bin", _build_counter(calls))
    path.write_bytes(b"truncated")
    again = cached_build("kind", "src", {}, ".bin", _build_counter(calls))
    assert again == path and again.read_bytes() == b"binary for src" and len(calls) == 2


def test_a_directory_others_can_write_is_refused(tmp_path):
    d = tmp_path / "shared_cache"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(UnsafeCacheError, match="writable by group or others"):
        private_dir(d)
    os.chmod(d, 0o700)
    assert private_dir(d) == d


def test_a_directory_owned_by_someone_else_is_refused(tmp_path, monkeypatch):
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(d).st_uid + 1)
    with pytest.raises(UnsafeCacheError, match="belongs to uid"):
        private_dir(d)


def test_processes_compiling_the_same_function_at_once(cache_dir):
    code = textwrap.dedent("""
        import sys, numpy as np, theanine as th, theanine.tensor as T
        x = T.dvector("x")
        f = th.function([x], T.exp(x) * 3 + x, backend="c")
        v = np.arange(4.0)
        np.testing.assert_allclose(f(v), np.exp(v) * 3 + v)
        print("ok")
    """)
    env = dict(os.environ, THEANINE_CACHE_DIR=str(cache_dir))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    entries = [p for p in (cache_dir / "cpu_c").iterdir() if p.suffix == ".so"]
    assert len(entries) == 1
