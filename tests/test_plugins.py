"""Plugins: the reference backend arrives through the entry point, THEANINE_PLUGINS filters,
a broken plugin is reported and skipped, and `theanine info` shows it all."""

import subprocess
import sys
import textwrap

import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import BackendUnavailable, backends, get_backend
from theanine.plugins import hookspecs


def _run(code: str, env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=tmp_path)


def test_numpy_backend_is_registered_through_the_entry_point():
    from theanine.plugins.manager import get_plugin_state

    state = get_plugin_state()
    assert state.loaded["numpy"] == "theanine.backends.numpy.plugin"
    assert backends()["numpy"].name == "numpy"
    assert get_backend("cpu").name in backends()
    x = T.dscalar("x")
    assert th.function([x], x * 2, backend="numpy")(2.0) == 4.0


def test_unknown_device_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="no backend serves device 'tpu'"):
        get_backend("tpu")


def test_hookspecs_take_a_register_callback():
    import inspect

    for name in ("theanine_register_backends", "theanine_register_ops",
                 "theanine_register_rewrites"):
        assert list(inspect.signature(getattr(hookspecs, name)).parameters) == ["register"]


def test_theanine_plugins_limits_what_loads(tmp_path):
    out = _run("""
        import theanine as th
        from theanine.backend import backends, get_backend, BackendUnavailable
        print(sorted(backends()))
        try:
            get_backend("cpu")
        except BackendUnavailable as e:
            print("ERR", e)
    """, {"THEANINE_PLUGINS": "nothing"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[]" in out.stdout and "ERR No theanine backends are registered" in out.stdout


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path):
    # A throwaway distribution on sys.path whose entry point raises on import.
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[theanine]\nbroken = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('kaboom')\n")
    out = _run("""
        import theanine as th, theanine.tensor as T
        from theanine.info import info_lines
        x = T.dscalar()
        print(th.function([x], x + 1)(1.0))
        print("\\n".join(info_lines()))
    """, {"PYTHONPATH": str(tmp_path)}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2.0" in out.stdout
    assert "broken       FAILED   RuntimeError: kaboom" in out.stdout
    assert "numpy        devices=cpu,numpy" in out.stdout


def test_info_command_runs():
    out = subprocess.run([sys.executable, "-m", "theanine", "info"], capture_output=True,
                         text=True, check=True)
    assert "theanine 0.1.0" in out.stdout and "numpy" in out.stdout
