"""The compile cache: private directories checked from the root down, atomic content-addressed
entries, corrupt entries rebuilt, and several processes compiling the same function at once."""

import os
import subprocess
import sys
import textwrap

import pytest

from theanine.cache import UnsafeCacheError, cached_build, open_private_dir

OTHER_UID = 65534  # nobody


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


def _give_away(path, monkeypatch):
    """Make `path` another uid's: chown it when running as root, else pretend to be someone
    else (every directory is then another uid's)."""
    if os.geteuid() == 0:
        os.chown(path, OTHER_UID, OTHER_UID)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.stat(path).st_uid + 1)


def test_entries_are_content_addressed_and_reused(cache_dir):
    calls = []
    with cached_build("kind", "source A", {"flags": 1}, ".bin", _build_counter(calls)) as a, \
            cached_build("kind", "source A", {"flags": 1}, ".bin", _build_counter(calls)) as b, \
            cached_build("kind", "source A", {"flags": 2}, ".bin", _build_counter(calls)) as c:
        assert a.path == b.path != c.path and calls == ["source A", "source A"]
        assert a.data == b.data == a.path.read_bytes() == b"binary for source A"
    assert oct(os.stat(cache_dir / "kind").st_mode & 0o777) == "0o700"
    assert not [p for p in (cache_dir / "kind").iterdir() if p.name.startswith(".")]


def test_a_corrupt_entry_is_rebuilt_not_loaded(cache_dir):
    calls = []
    with cached_build("kind", "src", {}, ".bin", _build_counter(calls)) as entry:
        entry.path.write_bytes(b"truncated")
    with cached_build("kind", "src", {}, ".bin", _build_counter(calls)) as again:
        assert again.path == entry.path and again.data == b"binary for src" and len(calls) == 2
        assert again.path.read_bytes() == b"binary for src"


def test_a_root_another_uid_owns_is_refused_naming_it_and_what_to_do(cache_dir, monkeypatch):
    cache_dir.mkdir()
    os.chmod(cache_dir, 0o777)  # as in the attack: their directory, open to all
    _give_away(cache_dir, monkeypatch)
    with pytest.raises(UnsafeCacheError, match=rf"theanine cache directory {cache_dir} belongs "
                                               rf"to uid \d+, not to you .*Set THEANINE_CACHE_DIR "
                                               rf"to a directory of your own"):
        cached_build("kind", "src", {}, ".bin", _build_counter([]))
    assert not (cache_dir / "kind").exists()


def test_a_kind_directory_another_uid_owns_is_refused(cache_dir, monkeypatch):
    (cache_dir / "kind").mkdir(parents=True, mode=0o700)
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another uid")
    os.chown(cache_dir / "kind", OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeCacheError, match=f"{cache_dir / 'kind'} belongs to uid {OTHER_UID}"):
        cached_build("kind", "src", {}, ".bin", _build_counter([]))


@pytest.mark.parametrize("level", ["root", "kind"])
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_directory_others_can_write_anywhere_in_the_chain_is_refused(cache_dir, level, mode):
    (cache_dir / "kind").mkdir(parents=True, mode=0o700)
    os.chmod(cache_dir, 0o700)
    bad = cache_dir if level == "root" else cache_dir / "kind"
    os.chmod(bad, mode)
    with pytest.raises(UnsafeCacheError, match=f"{bad} is writable by group or others "
                                               f"\\(mode {mode:o}\\).*chmod 700 {bad}"):
        cached_build("kind", "src", {}, ".bin", _build_counter([]))
    os.chmod(bad, 0o700)
    with cached_build("kind", "src", {}, ".bin", _build_counter([])) as entry:
        assert entry.data == b"binary for src"


def test_a_symlinked_kind_directory_is_refused(cache_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "kind").symlink_to(elsewhere)
    with pytest.raises(UnsafeCacheError, match=f"{cache_dir / 'kind'} is a symbolic link "
                                               f"\\(to {elsewhere}\\); refusing to follow it"):
        cached_build("kind", "src", {}, ".bin", _build_counter([]))
    assert not list(elsewhere.iterdir())


def test_a_symlinked_root_is_refused_naming_the_real_directory(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("THEANINE_CACHE_DIR", str(tmp_path / "link"))
    with pytest.raises(UnsafeCacheError, match=f"set THEANINE_CACHE_DIR to the directory itself "
                                               f"\\({real}\\)"):
        cached_build("kind", "src", {}, ".bin", _build_counter([]))


def test_a_file_where_the_root_should_be_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'file'} is not a directory"):
        open_private_dir(tmp_path / "file", "kind")


def test_open_private_dir_creates_each_level_private(tmp_path):
    fd = open_private_dir(tmp_path / "a" / "root", "kind")
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "a" / "root" / "kind"))
    finally:
        os.close(fd)
    for d in (tmp_path / "a" / "root", tmp_path / "a" / "root" / "kind"):
        assert os.stat(d).st_mode & 0o777 == 0o700
    with pytest.raises(ValueError, match="not a single path component"):
        open_private_dir(tmp_path / "a" / "root", "..")


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
    assert not [p for p in (cache_dir / "cpu_c").iterdir() if p.name.startswith(".")]
