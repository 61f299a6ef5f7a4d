"""The C backend's mechanics against NumPy: strided, broadcast and negative-stride inputs,
multithreaded sizes, fusion into few kernels, reductions over every axis set, BLAS calls,
availability without a compiler, and errors."""

import gc
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.codegen.fusion import KernelStep, NodeStep

pytestmark = pytest.mark.skipif(not backends()["c"].available()[0],
                                reason=f"C backend unavailable: {backends()['c'].available()[1]}")


def c_function(inputs, outputs, **kw):
    return th.function(inputs, outputs, backend="c", **kw)


def kinds(f):
    return [type(s).__name__ for s in f._run.steps]


def test_a_chain_of_elementwise_ops_is_one_kernel_with_two_outputs():
    a, b = T.dvector("a"), T.dvector("b")
    t = T.tanh(a * b + 1)
    f = c_function([a, b], [t, T.exp(t) - a])
    assert kinds(f) == ["KernelStep"]
    assert len(f._run.steps[0].outputs) == 2
    av, bv = np.linspace(-2, 2, 7), np.linspace(1, 3, 7)
    out = f(av, bv)
    np.testing.assert_allclose(out[0], np.tanh(av * bv + 1), rtol=1e-14)
    np.testing.assert_allclose(out[1], np.exp(np.tanh(av * bv + 1)) - av, rtol=1e-14)


def test_a_reduction_is_fused_with_its_elementwise_input():
    x = T.dmatrix("x")
    f = c_function([x], T.sum(T.exp(x) * 2, axis=1))
    assert kinds(f) == ["KernelStep"] and f._run.steps[0].kernel.reduce_op == "add"
    xv = np.random.default_rng(0).normal(size=(5, 6))
    np.testing.assert_allclose(f(xv), (np.exp(xv) * 2).sum(axis=1), rtol=1e-13)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "reversed"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_strided_inputs_and_threads(layout, dtype):
    rng = np.random.default_rng(1)
    base = (rng.normal(size=(300, 400)) * 10).astype(dtype)
    view = {"contiguous": base, "transposed": base.T, "strided": base[::2, ::3],
            "reversed": base[::-1, ::-1]}[layout]
    x = T.tensor(dtype, shape=(None, None), name="x")
    y = T.tensor(dtype, shape=(None,), name="y")
    f = c_function([x, y], [x * 3 - y, T.maximum(x, y)])
    yv = (rng.normal(size=view.shape[1]) * 10).astype(dtype)
    got = f(view, yv)
    np.testing.assert_array_equal(got[0], view * dtype_type(dtype)(3) - yv)
    np.testing.assert_array_equal(got[1], np.maximum(view, yv))


def dtype_type(dtype):
    return np.dtype(dtype).type


AXES = [None] + [c for r in (1, 2, 3) for c in itertools.combinations(range(3), r)]


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("kind", ["sum", "max", "min", "prod"])
def test_reductions_over_every_axis_set(axis, kind):
    rng = np.random.default_rng(2)
    # values near 1 so that a product of 60000 of them stays a normal float
    arr = rng.uniform(0.999, 1.001, size=(40, 30, 50)) if kind == "prod" else \
        rng.uniform(0.5, 1.5, size=(40, 30, 50))
    x = T.dtensor3("x")
    f = c_function([x], [getattr(T, kind)(x, axis=axis), getattr(T, kind)(x.T, axis=axis)])
    a, b = f(arr)
    ref = getattr(np, kind)
    np.testing.assert_allclose(a, ref(arr, axis=axis), rtol=1e-11)
    np.testing.assert_allclose(b, ref(arr.T, axis=axis), rtol=1e-11)


def test_full_reduction_of_a_large_array_splits_work_between_threads():
    v = np.random.default_rng(3).normal(size=1_000_003)
    x = T.dvector("x")
    f = c_function([x], [T.sum(x), T.max(x), T.any(x > 4)])
    s, m, a = f(v)
    np.testing.assert_allclose(s, v.sum(), rtol=1e-10)
    assert m == v.max() and bool(a) == bool((v > 4).any())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_integer_and_float_semantics_match_numpy(dtype):
    a = np.array([-7, -3, -1, 0, 1, 3, 7, 8], dtype="int64")
    b = np.array([2, -2, 3, 5, -3, 2, -4, 3], dtype="int64")
    x, y = T.lvector("x"), T.lvector("y")
    f = c_function([x, y], [x // y, x % y, T.maximum(x, y), abs(x), T.sign(x), x & y, ~x])
    for got, ref in zip(f(a, b), [a // b, a % b, np.maximum(a, b), np.abs(a), np.sign(a),
                                  a & b, ~a]):
        np.testing.assert_array_equal(got, ref)
    fa = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, np.nan, -np.inf, -0.0], dtype=dtype)
    fb = np.array([1.5, -0.7, 2.0, np.nan, -1.0, 0.3, 1.0, 2.0, 1.0], dtype=dtype)
    u, w = T.vector("u", dtype=dtype), T.vector("w", dtype=dtype)
    g = c_function([u, w], [T.round(u), u // w, u % w, T.maximum(u, w), T.minimum(u, w),
                            T.sign(u), T.isnan(u), T.isinf(u), T.clip(u, -1, 1)])
    with np.errstate(all="ignore"):
        refs = [np.round(fa), fa // fb, fa % fb, np.maximum(fa, fb), np.minimum(fa, fb),
                np.sign(fa), np.isnan(fa), np.isinf(fa), np.clip(fa, -1, 1)]
    for got, ref in zip(g(fa, fb), refs):
        np.testing.assert_array_equal(got, ref)


def test_dot_and_gemm_call_blas_with_transposed_operands():
    rng = np.random.default_rng(4)
    W = th.shared(rng.normal(size=(30, 20)), name="W")
    x, d = T.dmatrix("x"), T.dmatrix("d")
    W0 = W.get_value()
    f = c_function([x, d], T.dot(x, W), updates=[(W, W - 0.5 * T.dot(x.T, d))])
    assert "Gemm" in str([s.node.op for s in f._run.steps if isinstance(s, NodeStep)])
    xv, dv = rng.normal(size=(7, 30)), rng.normal(size=(7, 20))
    np.testing.assert_allclose(f(xv, dv), xv @ W0, rtol=1e-12)
    np.testing.assert_allclose(W.get_value(), W0 - 0.5 * xv.T @ dv, rtol=1e-12)


def test_softmax_in_c_matches_the_reference():
    x = T.fmatrix("x")
    xv = np.random.default_rng(5).normal(size=(64, 33)).astype("float32") * 20
    got = c_function([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)])(xv)
    ref = th.function([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)], backend="numpy")(xv)
    for g, r in zip(got, ref):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_lines_with_nan_and_infinities_match_the_reference(dtype, axis):
    rng = np.random.default_rng(6)
    xv = (rng.normal(size=(20, 2000)) * 30).astype(dtype)  # threaded, long vectorized lines
    xv[1, 7] = np.nan
    xv[2, 3] = np.inf
    xv[3, :] = -np.inf
    xv[4, 5] = -np.inf
    xv[5, 11] = np.inf
    xv[5, 12] = -np.inf
    if axis == 0:
        xv = np.ascontiguousarray(xv.T)
    x = T.tensor(dtype, shape=(None, None), name="x")
    outs = [T.nnet.softmax(x, axis=axis), T.nnet.log_softmax(x, axis=axis)]
    got = c_function([x], outs)(xv)
    with np.errstate(all="ignore"):
        ref = th.function([x], outs, backend="numpy")(xv)
    # float32: the reference rounds log(sum) near 1 to a few float32 ulps of 1
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-15)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, **tol)


def test_broadcast_error_names_the_operation_and_line():
    a, b = T.dvector("a"), T.dvector("b")
    f = c_function([a, b], a * b)
    with pytest.raises(ValueError, match=r"(?s)broadcast together.*mul\(input 0 \('a'\) "
                                         r"\(shape \(3,\).*test_cpu_c.py.*a \* b"):
        f(np.ones(3), np.ones(4))


def test_intermediate_buffers_are_reused_between_calls_without_leaking_results():
    x = T.dvector("x")
    f = c_function([x], [T.exp(x) + 1, T.sum(T.exp(x) + 1)])
    first = f(np.zeros(5))
    second = f(np.ones(5))
    np.testing.assert_array_equal(first[0], np.full(5, 2.0))
    np.testing.assert_allclose(second[0], np.exp(np.ones(5)) + 1)


def test_without_a_compiler_the_backend_says_why(tmp_path):
    code = ("import theanine as th, theanine.tensor as T\n"
            "from theanine.backend import backends, get_backend\n"
            "print(backends()['c'].available())\n"
            "print(get_backend('cpu').name)\n"
            "x = T.dscalar()\n"
            "try:\n    th.function([x], x + 1, backend='c')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = dict(os.environ, PATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "(False, 'no C compiler (gcc or cc) on PATH')" in out.stdout
    assert "\nnumpy\n" in out.stdout
    assert "BackendUnavailable backend 'c' is not available: no C compiler" in out.stdout


def test_steps_of_a_pure_numeric_graph_need_no_python_calls():
    x, w = T.dmatrix("x"), T.dmatrix("w")
    f = c_function([x, w], T.sum(T.tanh(T.dot(x, w) + 1), axis=0))
    assert all(isinstance(s, KernelStep) or type(s.node.op).__name__ == "Dot"
               for s in f._run.steps)
    assert not f._run.host_count


def test_an_output_array_is_reused_only_after_the_caller_lets_it_go():
    x = T.dvector("x")
    f = c_function([x], T.exp(x) + 1)
    kept = f(np.zeros(1000))
    again = f(np.ones(1000))
    assert again is not kept  # still held: a new array
    np.testing.assert_array_equal(kept, np.full(1000, 2.0))
    address = again.__array_interface__["data"][0]
    del again
    third = f(np.full(1000, 2.0))
    assert third.__array_interface__["data"][0] == address  # reused, no new page faults
    np.testing.assert_allclose(third, np.exp(2.0) + 1)
    np.testing.assert_array_equal(kept, np.full(1000, 2.0))


def _mapped_programs() -> set:
    """The compiled programs (shared objects in the cache's cpu_c folder) this process maps,
    by inode: each is loaded under a fresh name that is removed at once ("(deleted)")."""
    with open("/proc/self/maps") as maps:
        return {line.split()[4] for line in maps
                if f"{os.sep}cpu_c{os.sep}" in line and ".so" in line}


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc (Linux)")
def test_a_dropped_function_unloads_its_shared_object():
    """Each function's shared object is closed once the function is garbage, and stays loaded
    while another function built from the same source still uses it."""
    before = _mapped_programs()
    x = T.vector("x")
    exprs = [T.tanh(T.sin(T.tanh(x))), T.cos(T.tanh(T.cos(x))), T.sin(T.sin(T.tanh(x)))]
    functions = [c_function([x], e) for e in exprs]
    twin = c_function([x], exprs[0])
    loaded = _mapped_programs() - before
    assert len(loaded) == len(exprs)
    del functions
    gc.collect()
    assert len(_mapped_programs() & loaded) == 1  # the twin's
    v = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(twin(v), np.tanh(np.sin(np.tanh(v))))
    del twin
    gc.collect()
    assert not _mapped_programs() & loaded
