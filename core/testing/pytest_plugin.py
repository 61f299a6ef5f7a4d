"""The pytest plugin of the conformance suite.

`--theanine-backend NAME` (repeatable; default: every available registered backend) selects the
backends held to the NumPy reference; `--theanine-extended-dtypes` adds float16 and complex
dtypes. Tests that take `conformance_backend` are parametrized over the selected backends (an
unavailable one is skipped with its reason), tests that take `conformance_case` over every
(case, dtype); a test parametrized over `conformance_variant` reports each variant as a row of
its own. At the end of the run an op x dtype coverage matrix is printed per backend, and
`--theanine-report FILE` writes it as JSON (what `theanine info --coverage --results FILE`
reads).

Installing theanine registers it with pytest (entry point `pytest11`), so

    pytest --pyargs theanine.testing --theanine-backend NAME

runs the kit on any installed backend. It only acts on runs that collect conformance tests;
`-p no:theanine.testing.pytest_plugin` turns it off.
"""

from __future__ import annotations

import json
from importlib.util import find_spec

import pytest

_RANK = {"passed": 0, "skipped": 1, "failed": 2}
_PROFILE = "theanine-conformance"
REPORT_FORMAT = 1  # version of the --theanine-report JSON layout
_CELL = "theanine-conformance-cell"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("theanine", "theanine conformance suite")
    group.addoption("--theanine-backend", action="append", dest="theanine_backends",
                    metavar="NAME", default=None,
                    help="backend to hold to the NumPy reference (repeatable; default: every "
                         "available registered backend)")
    group.addoption("--theanine-extended-dtypes", action="store_true",
                    dest="theanine_extended", default=False,
                    help="also test float16, complex64 and complex128 where an op has them")
    group.addoption("--theanine-jobs", type=int, dest="theanine_jobs", default=None,
                    metavar="N",
                    help="compile the case graphs in N processes before the tests run "
                         "(default: one per CPU; 1 turns it off)")
    group.addoption("--theanine-report", dest="theanine_report", default=None, metavar="FILE",
                    help="write the op x dtype coverage results as JSON to FILE")
    group.addoption("--theanine-examples", type=int, dest="theanine_examples", default=10,
                    metavar="N", help="drawn inputs per case and dtype (default 10; a hypothesis "
                                      "profile chosen with --hypothesis-profile wins)")
    group.addoption("--theanine-require", action="append", dest="theanine_require",
                    metavar="NAME", default=[],
                    help="fail the run unless backend NAME passed conformance cells (repeatable):"
                         " a backend skipped as unavailable is then an error, not a skip")


def pytest_configure(config) -> None:
    if find_spec("hypothesis") is None:  # theanine without its test extra: the kit is off,
        return                           # other projects' pytest runs are left alone
    from hypothesis import HealthCheck, settings

    settings.register_profile(_PROFILE, derandomize=True, deadline=None,
                              max_examples=config.getoption("theanine_examples", default=10),
                              suppress_health_check=[HealthCheck.too_slow])
    config.pluginmanager.register(_Coverage(config.getoption("theanine_report", default=None),
                                            config.getoption("theanine_require", default=[])))
    if config.getoption("theanine_backends", default=None):
        selected_backends(config)  # an unknown name is a usage error before anything runs


def pytest_collection_modifyitems(session, config, items) -> None:
    """Conformance runs use the kit's hypothesis profile unless one was chosen."""
    if not any(_cell(i) is not None for i in items):
        return
    from hypothesis import settings

    chosen = config.getoption("hypothesis_profile", default=None)
    if not chosen and settings.get_current_profile_name() == "default":
        settings.load_profile(_PROFILE)


def selected_backends(config) -> list[str]:
    """The backend names given with --theanine-backend, else every available registered one."""
    from theanine.backend import backends

    registry = backends()
    names = config.getoption("theanine_backends", default=None)
    if names:
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise pytest.UsageError(f"--theanine-backend: unknown backend(s) {', '.join(unknown)};"
                                    f" registered: {', '.join(sorted(registry))}")
        return list(dict.fromkeys(names))
    return [n for n, b in registry.items() if b.available()[0]]


def pytest_generate_tests(metafunc) -> None:
    if "conformance_backend" in metafunc.fixturenames:
        metafunc.parametrize("conformance_backend", selected_backends(metafunc.config),
                             indirect=True)
    if "conformance_case" in metafunc.fixturenames:
        from theanine.testing.cases import all_cases, case_dtypes

        extended = metafunc.config.getoption("theanine_extended", default=False)
        metafunc.parametrize("conformance_case", [
            pytest.param((case, dt), id=f"{case.name}-{dt}")
            for case in all_cases() for dt in case_dtypes(case, extended)])


@pytest.fixture
def conformance_backend(request) -> str:
    """The name of the backend under test; skips when it is not available here."""
    from theanine.backend import backends

    name = request.param
    ok, why = backends()[name].available()
    if not ok:
        pytest.skip(f"backend {name!r} is not available: {why}")
    return name


def pytest_collection_finish(session) -> None:
    """Compile the selected case graphs in parallel first, for each backend that caches what
    it compiles on disk."""
    if session.config.option.collectonly or hasattr(session.config, "workerinput"):
        return  # (pytest-xdist's workers already share the compiling between them)
    todo: dict[str, list] = {}
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "conformance_case" in params:
            case, dtype = params["conformance_case"]
            todo.setdefault(params["conformance_backend"], []).append((case.name, dtype))
    if not todo:
        return
    from theanine.backend import backends
    from theanine.testing.compare import REFERENCE
    from theanine.testing.prewarm import default_jobs, prewarm

    jobs = session.config.getoption("theanine_jobs", default=None) or default_jobs()
    for backend, items in todo.items():
        found = backends()[backend]
        if backend != REFERENCE and found.available()[0] and found.caches_builds_on_disk:
            prewarm(backend, items, jobs)


def _cell(item) -> tuple[str, str, str] | None:
    """(backend, row, dtype) of a conformance test item, else None."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "conformance_backend" not in params:
        return None
    if "conformance_case" in params:
        case, dtype = params["conformance_case"]
        return params["conformance_backend"], case.row, dtype
    row = getattr(item, "originalname", item.name).removeprefix("test_").replace("_", " ")
    if "conformance_variant" in params:  # e.g. "draw identity (normal)"
        row = f"{row} ({params['conformance_variant']})"
    return params["conformance_backend"], row, str(params.get("conformance_dtype", "any"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Tag each conformance report with its (backend, row, dtype) cell; the report carries it
    to the process that prints the matrix (the same one, or pytest-xdist's controller)."""
    outcome = yield
    cell = _cell(item)
    if cell is not None:
        outcome.get_result().user_properties.append((_CELL, cell))


class _Coverage:
    """Collects the conformance cells' outcomes where reports are logged (this process, or
    pytest-xdist's controller), prints the matrix at the end and writes the JSON report."""

    def __init__(self, report_path: str | None, required: list[str]) -> None:
        self.results: dict = {}
        self.report_path = report_path
        self.required = required
        self.missing: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session) -> None:
        """A required backend that passed no cell fails the run (see --theanine-require)."""
        if hasattr(session.config, "workerinput"):
            return
        ran = {b for (b, _, _), (outcome, _) in self.results.items() if outcome == "passed"}
        self.missing = [b for b in self.required if b not in ran]
        if self.missing and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_runtest_logreport(self, report) -> None:
        cell = next((tuple(v) for k, v in report.user_properties if k == _CELL), None)
        if cell is None or not (report.when == "call" or report.outcome != "passed"):
            return
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = report.longrepr[2].removeprefix("Skipped: ")
        old = self.results.get(cell)
        if old is None or _RANK[report.outcome] > _RANK[old[0]]:
            self.results[cell] = (report.outcome, reason)

    def pytest_terminal_summary(self, terminalreporter, config) -> None:
        if hasattr(config, "workerinput"):
            return  # a pytest-xdist worker: its reports went to the controller
        if self.report_path:
            with open(self.report_path, "w") as f:
                json.dump(report_data(self.results), f, indent=1)
        if self.results:
            terminalreporter.write_sep("=", "theanine conformance: op x dtype coverage")
            for line in coverage_lines(self.results):
                terminalreporter.write_line(line)
        for name in self.missing:
            why = next((w for (b, _, _), (o, w) in self.results.items()
                        if b == name and o == "skipped"), "no conformance test of it ran")
            terminalreporter.write_line(f"--theanine-require {name}: the backend passed no "
                                        f"conformance cell ({why})", red=True, bold=True)


def coverage_lines(results: dict) -> list[str]:
    """The op x dtype matrix per backend: ok, FAIL, s<n> (skipped for reason n), '.' untested."""
    from theanine.testing.strategies import DEFAULT_DTYPES, EXTENDED_DTYPES

    lines = []
    for backend in dict.fromkeys(b for b, _, _ in results):
        cells = {(r, d): v for (b, r, d), v in results.items() if b == backend}
        rows = list(dict.fromkeys(r for r, _ in cells))
        used = {d for _, d in cells}
        cols = [d for d in (*DEFAULT_DTYPES, *EXTENDED_DTYPES) if d in used] + \
            sorted(used - set(DEFAULT_DTYPES) - set(EXTENDED_DTYPES))
        width = max(len(r) for r in rows) + 2
        reasons: dict[str, int] = {}
        lines.append(f"backend {backend!r} vs the numpy reference")
        lines.append(" " * width + "".join(f"{c:>11}" for c in cols))
        counts = dict.fromkeys(_RANK, 0)
        for r in rows:
            text = []
            for c in cols:
                outcome, why = cells.get((r, c), ("", ""))
                if outcome:
                    counts[outcome] += 1
                if outcome == "skipped":
                    text.append(f"s{reasons.setdefault(why, len(reasons) + 1)}")
                else:
                    text.append({"passed": "ok", "failed": "FAIL"}.get(outcome, "."))
            lines.append(f"{r:<{width}}" + "".join(f"{t:>11}" for t in text))
        lines.append(f"{counts['passed']} ok, {counts['failed']} failed, "
                     f"{counts['skipped']} skipped")
        lines += [f"  s{n}: {why}" for why, n in reasons.items()]
        lines.append("")
    return lines


def report_data(results: dict) -> dict:
    """The JSON form of the results: every (backend, row, dtype) cell with its outcome."""
    return {"format": REPORT_FORMAT,
            "cells": [{"backend": b, "op": r, "dtype": d, "outcome": o, "reason": why}
                      for (b, r, d), (o, why) in results.items()]}
