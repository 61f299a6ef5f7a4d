"""`theanine info --coverage`: the op x backend x dtype matrix of the conformance kit.

Each cell says what the kit found when it ran that op's cases for that dtype on that backend:
supported (the backend matched the reference), unsupported (skipped, with the backend's
reason) or failing. The cells come from an actual run of the kit, never from declarations
alone: either a run made here (the kit's pytest plugin in a subprocess, a fixed small number of
drawn examples per case) or the JSON report a full run wrote (`pytest --pyargs
theanine.testing --theanine-report FILE`).

Below the matrix, the report lists how each backend with an op table runs each library op (the
entry's `how`), read from the same tables the conformance meta-test checks
(theanine.testing.meta.unimplemented_ops), so what is declared and what is checked agree.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

DTYPE_ORDER = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32",
               "float64", "complex64", "complex128")
MARK = {"passed": "ok", "failed": "FAIL", "skipped": "n/a"}


@dataclass
class Matrix:
    """The cells of a coverage report: (op, backend, dtype) -> (outcome, reason)."""

    cells: dict[tuple[str, str, str], tuple[str, str]]
    ops: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    # (op class, backend, how it runs there) from the backends' op tables
    declared: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    def from_report(cls, report: dict) -> Matrix:
        """The matrix of a report in the kit's JSON layout (pytest_plugin.report_data)."""
        cells = {(c["op"], c["backend"], c["dtype"]): (c["outcome"], c.get("reason", ""))
                 for c in report["cells"]}
        m = cls(cells)
        m.ops = list(dict.fromkeys(op for op, _, _ in cells))
        m.backends = list(dict.fromkeys(b for _, b, _ in cells))
        used = {d for _, _, d in cells}
        m.dtypes = [d for d in DTYPE_ORDER if d in used] + sorted(used - set(DTYPE_ORDER))
        for outcome, why in cells.values():
            if outcome == "skipped":
                m.reasons.setdefault(why, len(m.reasons) + 1)
        return m

    def mark(self, op: str, backend: str, dtype: str) -> str:
        """The cell's text: ok, FAIL, n/a<k> (unsupported for reason k), or '' (no case)."""
        outcome, why = self.cells.get((op, backend, dtype), ("", ""))
        if outcome == "skipped":
            return f"n/a{self.reasons[why]}"
        return MARK.get(outcome, "")

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(MARK, 0)
        for outcome, _ in self.cells.values():
            found[outcome] = found.get(outcome, 0) + 1
        return found

    def failing(self) -> list[tuple[str, str, str]]:
        return [key for key, (outcome, _) in self.cells.items() if outcome == "failed"]

    def rows(self) -> list[tuple[str, str, list[str]]]:
        """(op, backend, marks per dtype) for every op and backend that has a cell."""
        out = []
        for op in self.ops:
            for b in self.backends:
                marks = [self.mark(op, b, d) for d in self.dtypes]
                if any(marks):
                    out.append((op, b, marks))
        return out

    def summary(self) -> str:
        c = self.counts()
        return (f"{c['passed']} supported, {c['skipped']} unsupported, {c['failed']} failing "
                f"(op x backend x dtype cells)")


NOT_IMPLEMENTED = "no implementation: compilation fails"


def declared_implementations(names: list[str]) -> list[tuple[str, str, str]]:
    """(op class, backend, how) for every library op in every registered backend of `names`
    that has an op table, read as the meta-test reads it (theanine.testing.meta.declared_ops)."""
    from theanine.backend import backends
    from theanine.testing.meta import declared_ops

    registry = backends()
    declared = {n: declared_ops(registry[n]) for n in names if n in registry}
    ops = sorted({op for entries in declared.values() for op in entries})
    return [(op, name, NOT_IMPLEMENTED if entries[op] is None else entries[op].how)
            for op in ops for name, entries in declared.items() if entries]


_KIT_TESTS = "test_case or test_random_graph or test_draw_identity or test_draw_distribution"


def run_kit(backends: list[str], examples: int, extended: bool = False,
            cases: str | None = None) -> dict:
    """Run the conformance kit on `backends` with `examples` drawn inputs per case (and per
    random-graph test), and its checks of random draws, in a subprocess; return its JSON
    report. `cases` is a pytest -k expression limiting the cases (e.g. "erf or gelu")."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        with open(os.path.join(tmp, "theanine_coverage_profile.py"), "w") as f:
            # a hypothesis profile only this run uses, loaded with -p before pytest configures
            f.write("from hypothesis import HealthCheck, settings\n"
                    "settings.register_profile('theanine-coverage', max_examples="
                    f"{int(examples)}, derandomize=True, deadline=None, "
                    "suppress_health_check=list(HealthCheck))\n")
        cmd = [sys.executable, "-m", "pytest", "--pyargs", "theanine.testing", "-q",
               "-p", "no:cacheprovider", "-p", "theanine_coverage_profile", "--rootdir", tmp,
               "--hypothesis-profile=theanine-coverage", "--theanine-report", report,
               "-k", f"({_KIT_TESTS}) and ({cases})" if cases else _KIT_TESTS]
        cmd += [f"--theanine-backend={b}" for b in backends]
        if extended:
            cmd.append("--theanine-extended-dtypes")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [tmp, *filter(None, [os.environ.get("PYTHONPATH")])]))
        done = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if not os.path.exists(report):
            raise RuntimeError(f"the conformance kit did not run (exit {done.returncode}):\n"
                               f"{done.stdout[-4000:]}")
        with open(report) as f:
            return json.load(f)


def load_report(path: str) -> dict:
    """A report written by `pytest --pyargs theanine.testing --theanine-report FILE`."""
    with open(path) as f:
        report = json.load(f)
    if not isinstance(report, dict) or "cells" not in report:
        raise ValueError(f"{path}: not a theanine conformance report (no 'cells')")
    return report


def render_text(m: Matrix) -> str:
    width = max([len(op) for op in m.ops] + [2]) + 2
    bwidth = max([len(b) for b in m.backends] + [7]) + 2
    lines = [f"{'op':<{width}}{'backend':<{bwidth}}" + "".join(f"{d:>11}" for d in m.dtypes)]
    for op, b, marks in m.rows():
        lines.append(f"{op:<{width}}{b:<{bwidth}}" + "".join(f"{x:>11}" for x in marks))
    return "\n".join([*lines, "", _legend(m), m.summary(), *_reasons(m),
                      *_declared_text(m)]) + "\n"


def _declared_text(m: Matrix) -> list[str]:
    if not m.declared:
        return []
    width = max(len(op) for op, _, _ in m.declared) + 2
    bwidth = max([len(b) for _, b, _ in m.declared] + [7]) + 2
    return ["", DECLARED_TITLE, f"{'op':<{width}}{'backend':<{bwidth}}how",
            *(f"{op:<{width}}{b:<{bwidth}}{how}" for op, b, how in m.declared)]


def render_markdown(m: Matrix) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    head = ["op", "backend", *m.dtypes]
    lines = ["# theanine conformance coverage", "", _legend(m), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for op, b, marks in m.rows():
        lines.append("| " + " | ".join([esc(op), esc(b), *marks]) + " |")
    lines += ["", m.summary(), ""] + [f"- {esc(r.strip())}" for r in _reasons(m)]
    if m.declared:
        lines += ["", f"## {DECLARED_TITLE}", "", "| op | backend | how |", "|---|---|---|"]
        lines += [f"| {esc(op)} | {esc(b)} | {esc(how)} |" for op, b, how in m.declared]
    return "\n".join(lines) + "\n"


def render_html(m: Matrix) -> str:
    e = html.escape
    style = {"ok": "ok", "FAIL": "fail"}
    rows = []
    for op, b, marks in m.rows():
        tds = "".join(f'<td class="{style.get(x, "na" if x else "none")}">{e(x)}</td>'
                      for x in marks)
        rows.append(f"<tr><th>{e(op)}</th><td>{e(b)}</td>{tds}</tr>")
    head = "".join(f"<th>{e(d)}</th>" for d in m.dtypes)
    reasons = "".join(f"<li>{e(r.strip())}</li>" for r in _reasons(m))
    declared = "".join(f"<tr><th>{e(op)}</th><td>{e(b)}</td><td>{e(how)}</td></tr>"
                       for op, b, how in m.declared)
    if declared:
        declared = (f"<h2>{e(DECLARED_TITLE)}</h2>\n<table><tr><th>op</th><th>backend</th>"
                    f"<th>how</th></tr>{declared}</table>\n")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<title>theanine conformance coverage</title><style>"
        "table{border-collapse:collapse;font:13px sans-serif}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:center}.ok{background:#dfd}.fail{background:#f99}"
        ".na{background:#eee}</style></head><body>\n"
        f"<h1>theanine conformance coverage</h1>\n<p>{e(_legend(m))}</p>\n"
        f"<table><tr><th>op</th><th>backend</th>{head}</tr>\n" + "\n".join(rows) +
        f"\n</table>\n<p>{e(m.summary())}</p>\n<ul>{reasons}</ul>\n{declared}</body></html>\n")


DECLARED_TITLE = "how each backend's op table runs each library op"


def _legend(m: Matrix) -> str:
    return ("ok: matches the NumPy reference; FAIL: differs; n/aK: unsupported by the backend "
            "(reason K below); empty: the op has no case for that dtype")


def _reasons(m: Matrix) -> list[str]:
    return [f"  n/a{k}: {why}" for why, k in m.reasons.items()]


RENDERERS = {"text": render_text, "md": render_markdown, "html": render_html}

__all__ = ["Matrix", "RENDERERS", "declared_implementations", "load_report", "render_html",
           "render_markdown", "render_text", "run_kit"]
