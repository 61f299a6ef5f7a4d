"""The two example plugin packages in examples/plugins/, installed with pip into a fresh virtual
environment and found only through their `theanine` entry points, in subprocesses: the op
plugin (erf, erfc, gelu) and the clang backend, each held to a few conformance cases.

The whole kit on the clang backend is
`pytest --pyargs theanine.testing --theanine-backend clang` once it is installed (README)."""

import json
import math
import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.plugin_examples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "plugins"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtual environment that sees this environment's packages (theanine, numpy, pytest,
    pip, setuptools) but has none of the example plugins; returns its python."""
    home = tmp_path_factory.mktemp("plugin-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    python = home / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True)
    # addsitedir, not a plain path: it also runs the .pth files of editable installs
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in site.getsitepackages())
    Path(purelib.stdout.strip(), "parent-env.pth").write_text(lines)
    return python


def _pip_install(python: Path, package: str) -> None:
    out = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "-e", str(EXAMPLES / package)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _run(python: Path, code: str, cwd: Path, **env: str) -> str:
    out = subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         cwd=cwd, env=dict(os.environ, PYTHONPATH="", **env))
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _kit(python: Path, cwd: Path, backends: list[str], cases: str, report: Path) -> str:
    """Run the conformance kit's cases matching `cases` on `backends`; return its output."""
    cmd = [python, "-m", "pytest", "--pyargs", "theanine.testing", "-q", "-p",
           "no:cacheprovider", "--theanine-jobs=1", f"--theanine-report={report}", "-k", cases,
           *[f"--theanine-backend={b}" for b in backends]]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                         env=dict(os.environ, PYTHONPATH=""))
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    return out.stdout


def _outcomes(report: Path) -> dict:
    return {(c["backend"], c["op"], c["dtype"]): c["outcome"]
            for c in json.loads(report.read_text())["cells"]}


@pytest.fixture(scope="module")
def with_erf(venv, tmp_path_factory):
    """The venv with the op plugin installed (checking it was absent before)."""
    cwd = tmp_path_factory.mktemp("erf")
    before = _run(venv, """
        import theanine.tensor as T
        print(hasattr(T, "gelu"))
    """, cwd)
    assert before.strip() == "False"
    _pip_install(venv, "theanine-erf")
    return venv, cwd


def test_op_plugin_is_found_through_its_entry_point(with_erf):
    python, cwd = with_erf
    out = _run(python, """
        import json, math
        import numpy as np
        import theanine as th, theanine.tensor as T
        from theanine.plugins import get_plugin_state

        x = T.dvector("x")
        f = th.function([x], [T.erf(x), T.erfc(x), T.gelu(x), T.grad(T.sum(T.gelu(x)), x)],
                        backend="c")
        v = np.array([-9.0, -1.5, 0.0, 0.25, 2.0])
        print(json.dumps({"loaded": get_plugin_state().loaded["erf"],
                          "values": [r.tolist() for r in f(v)],
                          "at_inf": [r.tolist() for r in f(np.array([np.inf, -np.inf]))]}))
    """, cwd)
    result = json.loads(out)
    assert result["loaded"] == "theanine_erf.plugin"
    v = [-9.0, -1.5, 0.0, 0.25, 2.0]
    erf, erfc, gelu, dgelu = (np.array(r) for r in result["values"])
    np.testing.assert_allclose(erf, [math.erf(t) for t in v], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(erfc, [math.erfc(t) for t in v], rtol=1e-14, atol=1e-300)
    phi = [0.5 * math.erfc(-t / math.sqrt(2)) for t in v]
    np.testing.assert_allclose(gelu, [t * p for t, p in zip(v, phi)], rtol=1e-13, atol=1e-300)
    # the derivative against central finite differences of the reference formula
    h = 1e-6
    fd = [((t + h) * 0.5 * math.erfc(-(t + h) / math.sqrt(2))
           - (t - h) * 0.5 * math.erfc(-(t - h) / math.sqrt(2))) / (2 * h) for t in v]
    np.testing.assert_allclose(dgelu, fd, rtol=1e-7, atol=1e-9)
    # the limits: erf(+-inf) = +-1, erfc = 0 and 2, gelu = inf and -0.0, gelu' = 1 and 0
    assert result["at_inf"] == [[1.0, -1.0], [0.0, 2.0], [math.inf, -0.0], [1.0, 0.0]]
    assert math.copysign(1, result["at_inf"][2][1]) == -1


def test_op_plugin_kernel_is_fused_and_its_rewrite_fires(with_erf):
    python, cwd = with_erf
    out = _run(python, """
        import json, math
        import numpy as np
        import theanine as th, theanine.tensor as T

        x = T.dvector("x")
        written_out = 0.5 * x * (1 + T.erf(x / math.sqrt(2)))
        f = th.function([x], written_out * 3, backend="c")
        ops = [str(n.op) for n in f.fgraph.nodes]
        steps = [type(s).__name__ for s in f._run.steps]
        print(json.dumps({"ops": ops, "steps": steps, "erfc_in_c": "erfc(" in f._run.source,
                          "tail": f(np.array([-10.0]))[0]}))
    """, cwd)
    info = subprocess.run([python, "-m", "theanine", "info"], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, PYTHONPATH=""), check=True).stdout
    assert "  local_gelu " in info and "erf          loaded   theanine_erf.plugin" in info
    result = json.loads(out)
    assert "gelu" in result["ops"] and "erf" not in result["ops"]
    assert result["steps"] == ["KernelStep"] and result["erfc_in_c"]
    # written out, 1 + erf(-10/sqrt 2) cancels to exactly 0 in float64; gelu keeps the value
    exact = 3 * -10 * 0.5 * math.erfc(10 / math.sqrt(2))
    assert result["tail"] == pytest.approx(exact, rel=1e-14) and exact < -1e-23


def test_op_plugin_passes_its_conformance_cases(with_erf, tmp_path):
    python, cwd = with_erf
    report = tmp_path / "report.json"
    out = _kit(python, cwd, ["numpy", "c"], "erf or gelu or every_op_has_a_case", report)
    assert "theanine conformance: op x dtype coverage" in out
    cells = _outcomes(report)
    for backend in ("numpy", "c"):
        for op in ("erf", "erfc", "gelu"):
            for dtype in ("int8", "int32", "float32", "float64"):
                assert cells[(backend, op, dtype)] == "passed"
        assert cells[(backend, "gelu (written out)", "float64")] == "passed"


def test_without_its_case_the_meta_test_sees_the_op(with_erf):
    python, cwd = with_erf
    out = _run(python, """
        from theanine.testing import meta
        from theanine.testing.cases import all_cases

        print(meta.uncovered_ops(), meta.uncovered_functions())
        # gelu's gradient uses erfc: only without the gelu cases too is erfc untested
        without = [c for c in all_cases() if not c.name.startswith(("erfc", "gelu"))]
        print(meta.uncovered_ops(without), meta.uncovered_functions(without))
    """, cwd)
    assert out.splitlines() == ["[] []", "['erfc', 'gelu'] ['erfc', 'gelu']"]


SELECT_BY_FLAG = """
    import theanine as th
    from theanine.backend import BackendUnavailable, get_backend
    try:
        print(th.config.device, get_backend().name)
    except BackendUnavailable as e:  # selected, but no clang on this machine
        print(th.config.device, e)
    except ValueError as e:
        print(e)
"""


@pytest.fixture(scope="module")
def clang_installed(with_erf):
    """The venv with the clang backend installed too (whether or not clang runs here)."""
    python, cwd = with_erf
    refused = _run(python, SELECT_BY_FLAG, cwd, THEANINE_FLAGS="device=clang")
    assert refused.startswith("THEANINE_FLAGS: config.device must be a device or backend name")
    _pip_install(python, "theanine-clang")
    return python, cwd


def test_device_flag_selects_the_clang_backend(clang_installed):
    python, cwd = clang_installed
    for var in ("THEANINE_FLAGS", "THEANO_FLAGS"):
        out = _run(python, SELECT_BY_FLAG, cwd, **{var: "device=clang"})
        assert out.startswith(("clang clang", "clang backend 'clang' is not available")), out


@pytest.fixture(scope="module")
def with_clang(clang_installed):
    python, cwd = clang_installed
    available = _run(python, """
        from theanine.backend import backends
        print(backends()["clang"].available())
    """, cwd)
    if "True" not in available:
        pytest.skip(f"the clang backend is not available here: {available.strip()}")
    return python, cwd


CLANG_CASES = ("test_case and (add- or mul- or exp- or true_div or maximum or sum- or max- "
               "or softmax or dot- or erf or gelu or reduce or elemwise)")


def test_clang_backend_passes_conformance_cases(with_clang, tmp_path):
    python, cwd = with_clang
    report = tmp_path / "report.json"
    out = _kit(python, cwd, ["clang"], CLANG_CASES, report)
    assert "backend 'clang' vs the numpy reference" in out
    cells = _outcomes(report)
    assert cells[("clang", "gelu", "float32")] == "passed"
    assert cells[("clang", "reductions (large)", "float32")] == "passed"
    assert cells[("clang", "elemwise (5-d)", "bool")] == "passed"
    assert all(outcome == "passed" for outcome in cells.values())


def test_clang_backend_fuses_kernels_and_the_plugin_op(with_clang):
    python, cwd = with_clang
    out = _run(python, """
        import json
        import numpy as np
        import theanine as th, theanine.tensor as T

        x, y = T.fmatrix("x"), T.fvector("y")
        f = th.function([x, y], [T.gelu(x * y + 1), T.sum(T.exp(x) * y, axis=0)],
                        backend="clang")
        a = np.linspace(-3, 3, 12, dtype="float32").reshape(4, 3)[::-1, ::2]
        b = np.array([0.5, -2.0], dtype="float32")
        print(json.dumps({"steps": [type(s).__name__ if hasattr(s, "kernel") else
                                    type(s.node.op).__name__ for s in f._run.steps],
                          "out": [r.tolist() for r in f(a, b)], "a": a.tolist()}))
    """, cwd)
    result = json.loads(out)
    # y's broadcast view, then one kernel per output: gelu fused with mul and add, and the
    # sum fused with exp and mul
    assert sorted(result["steps"]) == ["DimShuffle", "KernelStep", "KernelStep"]
    a, b = np.array(result["a"], dtype=np.float64), np.array([0.5, -2.0])
    z = a * b + 1
    gelu = z * 0.5 * np.array([math.erfc(-t / math.sqrt(2)) for t in z.ravel()]).reshape(z.shape)
    np.testing.assert_allclose(result["out"][0], gelu, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(result["out"][1], (np.exp(a) * b).sum(axis=0), rtol=2e-6)


def test_coverage_command_covers_the_plugin_backend_and_ops(with_clang, tmp_path):
    python, cwd = with_clang
    target = tmp_path / "coverage.html"
    out = subprocess.run([python, "-m", "theanine", "info", "--coverage", "--backend", "clang",
                          "--backend", "numpy", "--cases", "gelu or erfc", "--examples", "2",
                          "--format", "html", "--output", str(target)],
                         capture_output=True, text=True, cwd=cwd,
                         env=dict(os.environ, PYTHONPATH=""))
    assert out.returncode == 0, out.stdout + out.stderr
    page = target.read_text()
    assert "<th>gelu (written out)</th><td>clang</td>" in page
    assert "<th>erfc</th><td>numpy</td>" in page
    assert "0 failing" in page
