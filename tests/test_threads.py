"""Functions called from many threads: a call with its updates is atomic (no increment lost,
on every backend), functions sharing variables never deadlock, and OpenCL launches of kernels
that threads share keep each call's own arguments."""

import pickle
import sys
import threading

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends

THREADS = 8


def _available(name: str) -> None:
    ok, why = backends()[name].available()
    if not ok:
        pytest.skip(f"{name} backend unavailable: {why}")


@pytest.fixture
def switch_often():
    """Threads switch every microsecond, so a race shows within a few hundred calls."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _run_threads(targets: list) -> None:
    """Run each target in its own thread; fail if any raised or any is still running after
    60 s (a deadlock)."""
    errors: list = []

    def guarded(target):
        try:
            target()
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "threads still running after 60 s"
    if errors:
        raise errors[0]


def _calls(n: int, backend: str) -> int:
    return n // 4 if backend == "opencl" else n  # PoCL launches take about 0.1 ms


@pytest.mark.parametrize("backend", ["numpy", "c", "opencl"])
def test_concurrent_calls_lose_no_update(backend, switch_often):
    _available(backend)
    x = T.dscalar("x")
    w = th.shared(np.float64(0.0), name="w")
    add = th.function([x], w * 1.0, updates=[(w, w + x)], backend=backend)
    n = _calls(800, backend)
    _run_threads([lambda: [add(1.0) for _ in range(n)]] * THREADS)
    assert w.get_value() == THREADS * n


@pytest.mark.parametrize("backend", ["numpy", "c", "opencl"])
def test_functions_sharing_variables_interleave_exactly(backend, switch_often):
    """Two functions update the same two variables, naming them in opposite orders (the locks
    are taken in one global order: no deadlock); a third thread reads and writes one of them
    through get_value/set_value under its lock, which waits for calls in progress."""
    _available(backend)
    a = th.shared(np.zeros(2), name="a")
    b = th.shared(np.float64(0.0), name="b")
    c = th.shared(np.float64(0.0), name="c")
    x = T.dscalar("x")
    f = th.function([x], [], updates=[(a, a + x), (b, b + 1.0)], backend=backend)
    g = th.function([], b, updates=[(b, b + 2.0), (a, a + 2.0)], backend=backend)
    h = th.function([], [], updates=[(c, c + b)], backend=backend)  # locks b only to read it
    n = _calls(400, backend)
    seen: list = []

    def reader():
        for _ in range(n):
            seen.append(float(b.get_value()))
            with a.lock:  # a read and a write back as one step, as the README says
                a.set_value(a.get_value())

    workers = [lambda: [f(1.0) for _ in range(n)], lambda: [g() for _ in range(n)],
               lambda: [h() for _ in range(n)]] * (THREADS // 4) + [reader] * (THREADS // 4)
    _run_threads(workers)
    k = THREADS // 4 * n
    np.testing.assert_array_equal(a.get_value(), [3.0 * k] * 2)
    assert b.get_value() == 3.0 * k
    assert seen == sorted(seen) and all(v <= 3.0 * k for v in seen)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_function_of_many_shared_variables_is_atomic(backend, switch_often):
    """More shared variables than one `with` statement can hold (Python nests 20 blocks)."""
    _available(backend)
    ws = [th.shared(np.float64(0.0), name=f"w{k}") for k in range(30)]
    step = th.function([], [], updates=[(w, w + 1.0) for w in ws], backend=backend)
    odd = th.function([], [], updates=[(w, w + 2.0) for w in reversed(ws[1::2])],
                      backend=backend)
    n = 200
    _run_threads([lambda: [step() for _ in range(n)], lambda: [odd() for _ in range(n)]]
                 * (THREADS // 2))
    expected = [THREADS // 2 * n * (1 + 2 * (k % 2)) for k in range(30)]
    assert [float(w.get_value()) for w in ws] == expected


def test_opencl_launches_keep_each_calls_arguments(switch_often):
    """Kernel objects are shared by threads (and cached per process): setting a launch's
    arguments and enqueueing it is one step, so no call computes on another's input."""
    _available("opencl")
    x = T.vector("x", dtype="float32")
    f = th.function([x], x * 2 + 1, backend="opencl")
    wrong: list = []

    def caller(i: int):
        v = np.full(16, i, np.float32)
        for _ in range(150):
            got = f(v)
            if not np.array_equal(got, v * 2 + 1):
                wrong.append((i, got[0]))

    _run_threads([lambda i=i: caller(i) for i in range(THREADS)])
    assert wrong == []


def test_a_pickled_shared_variable_gets_a_lock_of_its_own():
    w = th.shared(np.arange(3.0), name="w")
    loaded = pickle.loads(pickle.dumps(w))
    np.testing.assert_array_equal(loaded.get_value(), np.arange(3.0))
    assert loaded.lock is not w.lock and loaded.lock_order != w.lock_order
    with loaded.lock:  # reentrant: a holder may still read and write the value
        loaded.set_value(loaded.get_value() + 1)
    np.testing.assert_array_equal(loaded.get_value(), np.arange(3.0) + 1)
