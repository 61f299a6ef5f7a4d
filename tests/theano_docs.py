"""Run a page of Theano's documentation as Sphinx's doctest builder would, with `import theano`
resolving to theanine: the page's testsetup blocks first, then in document order every `>>>`
example and every testcode block (its testoutput compared with ELLIPSIS and whitespace
normalized). NumPy prints as the NumPy of Theano's docs did (legacy 1.13 format) and
`time.clock` is Python 2's, so only theanine's own behaviour decides a result."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

DIRECTIVE = re.compile(r"^(\s*)\.\. (testsetup|testcode|testoutput|doctest)::.*$")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Theano's module names and the theanine modules they resolve to
MODULES = ["tensor", "compile", "printing", "gradient", "scalar", "sandbox", "ifelse",
           "scan_module", "tensor.nnet", "tensor.signal", "tensor.signal.pool",
           "tensor.shared_randomstreams", "sandbox.rng_mrg", "tensor.nnet.bn",
           "tensor.extra_ops", "tensor.nnet.abstract_conv", "tensor.nnet.conv", "compile.io",
           "compile.function", "sparse"]


@dataclass
class PageResult:
    """How many examples of a page ran as the docs say, and a report of the others."""

    passed: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)


def alias_theano() -> None:
    """Make `import theano` (and its submodules) import theanine's."""
    import theanine

    sys.modules["theano"] = theanine
    for name in MODULES:
        try:
            sys.modules[f"theano.{name}"] = importlib.import_module(f"theanine.{name}")
        except ImportError:
            pass  # (a module theanine lacks: the examples using it fail and are counted)


def blocks(text: str):
    """(kind, code) in document order: Sphinx doctest directives, and 'text' for the prose
    between them (where `>>>` examples live); a block with `:options: +SKIP` is 'skip'."""
    lines, i, prose = text.splitlines(), 0, []
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        if prose:
            yield "text", "\n".join(prose)
            prose = []
        base, kind, i = len(m.group(1)), m.group(2), i + 1
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > base):
            body.append(lines[i])
            i += 1
        options = [line for line in body if line.strip().startswith(":")]
        body = [line for line in body if not line.strip().startswith(":")]
        indent = min((len(line) - len(line.lstrip()) for line in body if line.strip()),
                     default=0)
        code = "\n".join(line[indent:] for line in body).strip("\n")
        if any("+SKIP" in o for o in options):
            kind = "skip"
        yield ("text" if kind == "doctest" else kind), code
    if prose:
        yield "text", "\n".join(prose)


def run_page(path: str) -> PageResult:
    """Run one documentation page (a .txt file of Theano's doc/) in a temporary directory
    (pages save files)."""
    import tempfile

    path, here = os.path.abspath(path), os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            return _run_page(path)
        finally:
            os.chdir(here)


def _run_page(path: str) -> PageResult:
    from theanine import config

    alias_theano()
    saved = dict(config._values)  # pages set config flags; the rest of the run must not see
    np.set_printoptions(legacy="1.13")
    time.clock = time.perf_counter
    result, checker, parser = PageResult(), doctest.OutputChecker(), doctest.DocTestParser()
    text = open(path).read()
    env: dict = {"__name__": "__main__"}
    items = list(blocks(text))
    pending = None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for kind, code in items:
            if kind == "testsetup":
                with contextlib.suppress(Exception):
                    exec(code, env)
        for kind, code in items:
            if kind == "text":
                test = parser.get_doctest(code, env, os.path.basename(path), path, 0)
                if not test.examples:
                    continue
                runner, report = doctest.DocTestRunner(optionflags=FLAGS), io.StringIO()
                with contextlib.redirect_stdout(io.StringIO()):
                    r = runner.run(test, out=report.write, clear_globs=False)
                result.total += r.attempted
                result.passed += r.attempted - r.failed
                if r.failed:
                    result.failures.append(report.getvalue())
            elif kind == "testcode":
                out, error = io.StringIO(), None
                try:
                    with contextlib.redirect_stdout(out):
                        exec(code, env)
                except Exception as e:  # the example's own failure, reported below
                    error = f"{type(e).__name__}: {e}"
                pending = (code, out.getvalue(), error)
                result.total += 1
                if error is None:
                    result.passed += 1
                else:
                    result.failures.append(f"--- testcode raised {error}\n{code}\n")
            elif kind == "testoutput" and pending is not None:
                source, got, error = pending
                pending = None
                if error is None and not checker.check_output(code + "\n", got, FLAGS):
                    result.passed -= 1
                    result.failures.append(f"--- output differs\n{source}\n--- expected\n"
                                           f"{code}\n--- got\n{got}\n")
    np.set_printoptions(legacy=False)
    config._values.update(saved)
    return result
