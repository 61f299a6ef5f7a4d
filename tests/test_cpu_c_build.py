"""Building C programs: a graph of many steps renders as one shared kernel per distinct loop
and functions of bounded size (gcc's time grows faster than linearly with a function's
size), and an interrupted or abandoned build leaves no compiler running and no build folder."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.backends.cpu_c.backend import CBackend
from theanine.backends.cpu_c.limits import MAX_OPERANDS
from theanine.backends.cpu_c.parts import PART_LINES
from theanine.backends.cpu_c.program import render_program
from theanine.codegen.fusion import lower
from theanine.graph.fgraph import FunctionGraph
from theanine.rewrite import rewrite_graph

pytestmark = pytest.mark.skipif(not backends()["c"].available()[0],
                                reason=f"C backend unavailable: {backends()['c'].available()[1]}")


def _source(inputs, outputs) -> str:
    fgraph = FunctionGraph(inputs, outputs)
    rewrite_graph(fgraph, "FAST_RUN")
    be = CBackend()
    steps = lower(fgraph, be.can_fuse, be.can_reduce, max_operands=MAX_OPERANDS)
    return render_program(fgraph, steps, blas=True, vector_math=True, backend=be).source


def _functions(source: str) -> dict[str, int]:
    """Lines of each function defined at the top level of `source`, by its first line."""
    sizes, name, n = {}, None, 0
    for line in source.splitlines():
        if name is None and line and not line[0].isspace() and line.endswith(")"):
            name, n = line, 0
        elif name is not None:
            n += 1
            if line == "}":
                sizes[name], name = n, None
    return sizes


def test_a_thousand_outputs_render_one_kernel_and_functions_of_bounded_size():
    x = T.dvector("x")
    source = _source([x], [x * i + i for i in range(1000)])
    sizes = _functions(source)
    kernels = [f for f in sizes if f.startswith("static void k")]
    assert len(kernels) == 1  # the loops differ only in their parameters
    parts = [f for f in sizes if "th_part" in f]
    assert len(parts) >= 1000 // 60
    assert max(sizes.values()) <= PART_LINES + 60
    assert len(source) < 600_000  # about 0.5 kB per step (2 kB per step before)


def test_a_program_of_several_parts_computes_and_fails_like_numpy():
    x, y = T.dvector("x"), T.dvector("y")
    outs = []
    for i in range(150):  # distinct loops spread over several parts
        outs.append([T.exp(x) * i, T.sin(x) - i, x * y + i][i % 3] + T.sqrt(T.abs(x) + i))
    f = th.function([x, y], outs, backend="c")
    assert f._run.source.count("static __attribute__((noinline)) int th_part") >= 3
    xv, yv = np.linspace(-2, 2, 11), np.linspace(1, 3, 11)
    for i, got in enumerate(f(xv, yv)):
        want = [np.exp(xv) * i, np.sin(xv) - i, xv * yv + i][i % 3] + np.sqrt(np.abs(xv) + i)
        np.testing.assert_allclose(got, want, rtol=1e-14)
    with pytest.raises(ValueError, match="broadcast"):  # a step in a later part fails
        f(xv, yv[:3])
    np.testing.assert_allclose(f(xv, yv)[2], xv * yv + 2 + np.sqrt(np.abs(xv) + 2), rtol=1e-14)



def test_the_shared_c_is_included_from_files_beside_runtime_h():
    """What every program shares is in program.h and dot.h (shipped as package data and
    hashed into the cache key with the other headers), not repeated in each source; softmax.h
    is included only by programs that use it."""
    from pathlib import Path

    import theanine.backends.cpu_c as cpu_c

    x = T.dmatrix("x")
    plain, with_softmax = _source([x], [T.exp(x).T]), _source([x], [T.nnet.softmax(x)])
    for source in (plain, with_softmax):
        assert '#include "program.h"' in source and "th_dimshuffle(int step" not in source
        assert "th_dgemm_t" not in source and "Py_INCREF" in source
    assert '#include "softmax.h"' in with_softmax and "softmax.h" not in plain
    here = Path(cpu_c.__file__).parent
    assert '#include "dot.h"' in (here / "program.h").read_text()
    assert "th_softmax(PyArrayObject *x" in (here / "softmax.h").read_text()

# A stand-in for gcc: starts a child that would run for minutes (as cc1 does on a large
# program), records both pids, then waits for it.
FAKE_CC = """#!/bin/sh
sleep 300 &
echo "$$ $!" > "$FAKE_PIDS.tmp" && mv "$FAKE_PIDS.tmp" "$FAKE_PIDS"
wait
"""

CHILD = """
import os, signal, sys, threading, time
from theanine.backends.cpu_c import compiler

compiler.find_compiler = lambda: (sys.argv[1], "fake-cc 1")
source = "int th_unique_%d;" % os.getpid()


def when_started(then):
    while not os.path.exists(os.environ["FAKE_PIDS"]):
        time.sleep(0.01)
    then()


if sys.argv[2] == "interrupt":  # Ctrl-C while the compiler runs
    interrupt = lambda: os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=when_started, args=(interrupt,), daemon=True).start()
    try:
        compiler.build_shared_object(source)
    except KeyboardInterrupt:
        print("interrupted")
else:  # the program ends while a thread waits for the compiler
    threading.Thread(target=compiler.build_shared_object, args=(source,), daemon=True).start()
    when_started(lambda: None)
    print("exiting")
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", ["interrupt", "exit"])
def test_an_abandoned_build_leaves_no_compiler_and_no_build_folder(tmp_path, how):
    cc = tmp_path / "fake-cc"
    cc.write_text(FAKE_CC)
    cc.chmod(0o755)
    pids = tmp_path / "pids"
    cache = tmp_path / "cache"
    env = dict(os.environ, THEANINE_CACHE_DIR=str(cache), FAKE_PIDS=str(pids))
    started = []
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(cc), how], env=env,
                             capture_output=True, text=True, timeout=60)
        started = [int(p) for p in pids.read_text().split()]
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == {"interrupt": "interrupted", "exit": "exiting"}[how]
        deadline = time.monotonic() + 5
        while any(map(_alive, started)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in started if _alive(p)], "the compiler or its child still runs"
        assert not list((cache / "cpu_c").glob(".build-*"))
    finally:  # (on failure: stop what the child left running)
        if not started and pids.exists():
            started = [int(p) for p in pids.read_text().split()]
        for p in started:
            if _alive(p):
                os.kill(p, 9)


OPENMP_CHILD = """
import gc, sys
import numpy as np
import theanine as th, theanine.tensor as T
from theanine.backends.cpu_c.backend import OPENMP_RUNTIMES
x = T.dvector("x")
for i in range(6):
    f = th.function([x], T.exp(x) * (1 + i), backend="c")  # parallel: OpenMP workers start
    f(np.ones(1_000_000))
    del f
    gc.collect()  # the program is unloaded; the OpenMP runtime must stay
    maps = open("/proc/self/maps").read()
    assert any(name in maps for name in OPENMP_RUNTIMES), "the OpenMP runtime was unloaded"
print("ok")
"""


def test_unloading_every_program_keeps_the_openmp_runtime_its_threads_run_in():
    """Dropping the last compiled function unloads its shared object; the OpenMP runtime it
    linked must stay, or its idle worker threads crash the process (a segfault in a thread)."""
    if not backends()["c"].available()[0]:
        pytest.skip("C backend unavailable")
    out = subprocess.run([sys.executable, "-c", OPENMP_CHILD], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
