"""`theanine info --coverage`: the op x backend x dtype matrix from a kit report, as text,
Markdown and HTML, and from a run of the kit itself."""

import json

import pytest

from theanine.__main__ import main
from theanine.coverage import Matrix, load_report, render_html, render_markdown, render_text

REPORT = {"format": 1, "cells": [
    {"backend": "c", "op": "exp", "dtype": "float32", "outcome": "passed", "reason": ""},
    {"backend": "c", "op": "exp", "dtype": "float64", "outcome": "skipped",
     "reason": "backend 'c' does not support <float64> | here"},
    {"backend": "numpy", "op": "exp", "dtype": "float64", "outcome": "passed", "reason": ""},
    {"backend": "c", "op": "a|b", "dtype": "int8", "outcome": "failed", "reason": ""},
]}


def test_matrix_marks_each_cell():
    m = Matrix.from_report(REPORT)
    assert m.dtypes == ["int8", "float32", "float64"]
    assert m.mark("exp", "c", "float32") == "ok" and m.mark("exp", "c", "float64") == "n/a1"
    assert m.mark("a|b", "c", "int8") == "FAIL" and m.mark("exp", "numpy", "float32") == ""
    assert m.failing() == [("a|b", "c", "int8")]
    assert m.summary().startswith("2 supported, 1 unsupported, 1 failing")


def test_text_markdown_and_html():
    m = Matrix.from_report(REPORT)
    text = render_text(m).splitlines()
    assert text[0].split() == ["op", "backend", "int8", "float32", "float64"]
    assert text[1].split() == ["exp", "c", "ok", "n/a1"]
    md = render_markdown(m)
    assert "| a\\|b | c | FAIL |  |  |" in md
    assert "- n/a1: backend 'c' does not support <float64> \\| here" in md
    page = render_html(m)
    assert "&lt;float64&gt;" in page and "<float64>" not in page
    assert '<td class="fail">FAIL</td>' in page


def test_cli_writes_a_file_and_fails_on_a_failing_cell(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps(REPORT))
    out = tmp_path / "m.html"
    assert main(["info", "--coverage", "--results", str(results), "--format", "html",
                 "--output", str(out)]) == 1
    assert out.read_text().startswith("<!DOCTYPE html>")
    passing = dict(REPORT, cells=REPORT["cells"][:3])
    results.write_text(json.dumps(passing))
    assert main(["info", "--coverage", "--results", str(results)]) == 0


def test_a_file_that_is_no_report_is_refused(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a theanine conformance report"):
        load_report(str(bad))


def test_coverage_runs_the_kit(capsys):
    assert main(["info", "--coverage", "--backend", "numpy", "--backend", "c", "--cases",
                 "exp2 or log1p", "--examples", "2"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    for op in ("exp2", "log1p"):
        for backend in ("numpy", "c"):
            assert [op, backend, "ok", "ok", "ok", "ok"] in rows


def test_unknown_backend_is_a_usage_error(capsys):
    assert main(["info", "--coverage", "--backend", "nope"]) == 2
    assert "unknown backend(s) nope" in capsys.readouterr().err


def test_running_the_kit_without_its_dependencies_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "hypothesis" else real(name, *a))
    assert main(["info", "--coverage"]) == 2
    assert "needs hypothesis: pip install 'theanine[test]'" in capsys.readouterr().err


def test_the_matrix_ends_with_how_each_op_table_runs_each_library_op(tmp_path, capsys):
    from theanine.backend import backends
    from theanine.coverage import DECLARED_TITLE
    from theanine.testing.meta import library_op_classes

    results = tmp_path / "r.json"
    results.write_text(json.dumps(dict(REPORT, cells=REPORT["cells"][:3])))
    assert main(["info", "--coverage", "--results", str(results)]) == 0
    text = capsys.readouterr().out.split(f"\n{DECLARED_TITLE}\n", 1)[1].splitlines()
    assert text[0].split() == ["op", "backend", "how"]
    rows = {tuple(line.split(maxsplit=2)[:2]): line.split(maxsplit=2)[2] for line in text[1:]}
    classes = library_op_classes()
    assert len(rows) == 2 * len(classes) and {b for _, b in rows} == {"c", "numpy"}
    for (op, b), how in rows.items():
        assert how == backends()[b].impls[classes[op]].how
    assert rows["Dot", "c"].startswith("BLAS gemm")
    m = Matrix.from_report(REPORT)
    m.declared = [("Dot", "c", "gemm | BLAS")]
    assert "| Dot | c | gemm \\| BLAS |" in render_markdown(m)
    assert "<td>gemm | BLAS</td>" in render_html(m)


def test_a_missing_or_only_generic_entry_is_shown_as_the_meta_test_sees_it(monkeypatch):
    from theanine.backend import backends
    from theanine.backends.numpy.backend import NumpyBackend
    from theanine.coverage import NOT_IMPLEMENTED, declared_implementations
    from theanine.graph.basic import Op
    from theanine.op_table import OpTable
    from theanine.tensor.linalg import Dot

    class Partial(NumpyBackend):
        name = "partial"
        impls = OpTable("partial")

    Partial.impls.add(Dot, NumpyBackend.impls[Dot].fn, how=NumpyBackend.impls[Dot].how)
    monkeypatch.setitem(backends(), "partial", Partial())
    rows = {op: how for op, b, how in declared_implementations(["partial", "not-registered"])}
    assert rows["Dot"] == NumpyBackend.impls[Dot].how and rows["Reshape"] == NOT_IMPLEMENTED
    Partial.impls.add(Op, NumpyBackend.impls[Op].fn)
    rows = {op: how for op, b, how in declared_implementations(["partial"])}
    assert rows["Reshape"] == NOT_IMPLEMENTED  # (the generic entry is for users' ops)


def test_the_matrix_shows_the_random_ops_and_checks(capsys):
    assert main(["info", "--coverage", "--backend", "numpy", "--cases",
                 "random_normal or FlatIndex or identity and uniform", "--examples", "2"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["op", "backend", "int64", "float32", "float64"] in rows
    assert ["random_normal", "numpy", "ok", "ok"] in rows
    assert ["FlatIndex", "numpy", "ok"] in rows
    assert ["draw", "identity", "(uniform)", "numpy", "ok", "ok"] in rows
