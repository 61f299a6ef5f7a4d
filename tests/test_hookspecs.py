"""The hook specs are stable public API: each spec's name and argument names are locked per
HOOKSPEC_VERSION, and every hook is documented in the plugin guides."""

import types
from pathlib import Path

import pytest

from theanine.plugins import HOOKSPEC_VERSION, hookspecs
from theanine.plugins.speclock import LOCK_FILE, current_specs, lock_problems, read_lock

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_hookspecs_match_the_lock_for_their_version():
    problems = lock_problems(hookspecs, LOCK_FILE.read_text())
    assert not problems, "\n".join(problems)


def test_every_hook_takes_a_register_callback():
    specs = current_specs(hookspecs)
    assert len(specs) == 6
    assert all(args == ("register",) for args in specs.values())


def _fake(version: int, **specs) -> types.ModuleType:
    """A hookspecs-like module with `specs` (name -> argument names) under `version`."""
    module = types.ModuleType("fake_hookspecs")
    module.PROJECT, module.HOOKSPEC_VERSION = "theanine", version
    for name, args in specs.items():
        namespace: dict = {}
        exec(f"def {name}({', '.join(args)}): pass", namespace)
        fn = namespace[name]
        fn.theanine_spec = {}
        setattr(module, name, fn)
    return module


LOCK = "1 theanine_register_backends(register)\n2 theanine_register_backends(register)\n" \
       "2 theanine_register_cases(register)\n"


def test_a_changed_argument_without_a_version_bump_fails():
    changed = _fake(2, theanine_register_backends=("register", "config"),
                    theanine_register_cases=("register",))
    (problem,) = lock_problems(changed, LOCK)
    assert "theanine_register_backends changed under version 2" in problem
    assert "locked (register), now (register, config)" in problem


def test_a_new_or_removed_hook_without_a_version_bump_fails():
    added = _fake(2, theanine_register_backends=("register",),
                  theanine_register_cases=("register",), theanine_register_more=("register",))
    assert "theanine_register_more changed under version 2: locked absent" in \
        lock_problems(added, LOCK)[0]
    removed = _fake(2, theanine_register_backends=("register",))
    assert "now absent" in lock_problems(removed, LOCK)[0]


def test_a_version_bump_needs_its_specs_in_the_lock():
    bumped = _fake(3, theanine_register_backends=("register",))
    assert "no version 3" in lock_problems(bumped, LOCK)[0]
    same = _fake(2, theanine_register_backends=("register",),
                 theanine_register_cases=("register",))
    assert lock_problems(same, LOCK) == []
    assert "newer than HOOKSPEC_VERSION 1" in lock_problems(
        _fake(1, theanine_register_backends=("register",)), LOCK)[0]


def test_the_lock_parser_rejects_a_malformed_line():
    assert read_lock("# comment\n1 a(x, y)\n") == {1: {"a": ("x", "y")}}
    with pytest.raises(ValueError, match="line 1"):
        read_lock("one theanine_register_backends(register)")


def test_every_hook_is_named_in_the_plugin_guides():
    guides = (DOCS / "writing-a-backend.md").read_text() + \
        (DOCS / "writing-an-op.md").read_text()
    missing = [name for name in current_specs(hookspecs) if name not in guides]
    assert not missing, f"hooks not documented in docs/: {missing}"
    assert f"HOOKSPEC_VERSION` is {HOOKSPEC_VERSION}" in guides
