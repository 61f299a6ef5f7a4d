"""The OpenCL backend on whatever OpenCL device is installed (PoCL's CPU device in CI): values
stay in device memory, device choice, the binary cache, views without copies, the seeds."""

import os
from collections import OrderedDict

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import BackendUnavailable, backends, get_backend
from theanine.graph.basic import is_located

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def _opencl():
    ok, why = backends()["opencl"].available()
    if not ok:
        pytest.skip(f"OpenCL backend unavailable: {why}")
    return backends()["opencl"]


@pytest.fixture
def ocl():
    return _opencl()


def test_shared_values_stay_on_the_device(ocl):
    w = th.shared(np.arange(6.0).reshape(2, 3), name="w")
    x = T.matrix("x")
    step = th.function([x], (w * x).sum(), updates=[(w, w * 2)], backend="opencl")
    rt = ocl.runtime()
    assert float(step(np.ones((2, 3)))) == 15.0
    # the update lives on the device; no host copy was made
    assert w._host is None and w._device[0].runtime is rt
    on_device = w._device[1]
    assert float(step(np.ones((2, 3)))) == 30.0
    assert w._device[1] is not on_device  # a new value, the old one untouched
    np.testing.assert_array_equal(on_device.get(), np.arange(6.0).reshape(2, 3) * 2)
    np.testing.assert_array_equal(w.get_value(), np.arange(6.0).reshape(2, 3) * 4)


def test_get_and_set_value_copy_unless_borrowed(ocl):
    w = th.shared(np.zeros(3), name="w")
    f = th.function([], [], updates=[(w, w + 1)], backend="opencl")
    f()
    a = w.get_value()
    a[:] = 100  # a copy: the shared value is unaffected
    np.testing.assert_array_equal(w.get_value(), [1, 1, 1])
    b = w.get_value(borrow=True)
    assert w.get_value(borrow=True) is b  # the host copy is kept until the next update
    v = np.full(3, 5.0)
    w.set_value(v, borrow=True)
    f()
    np.testing.assert_array_equal(w.get_value(), [6, 6, 6])
    np.testing.assert_array_equal(v, [5, 5, 5])  # the function never writes the host array


def test_seed_style_training_step_matches_numpy(ocl):
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((60, 20))
    yv = rng.integers(0, 5, 60)
    w = th.shared(rng.standard_normal((20, 5)) * 0.1, name="w")
    b = th.shared(np.zeros(5), name="b")
    x, y = T.matrix("x"), T.lvector("y")
    p = T.nnet.softmax(T.dot(x, w) + b)
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y])
    gw, gb = th.grad(cost, [w, b])
    kw = dict(updates=[(w, w - 0.5 * gw), (b, b - 0.5 * gb)])
    f_ocl = th.function([x, y], cost, backend="opencl", **kw)
    w_ref = th.shared(w.get_value(), name="w")
    b_ref = th.shared(b.get_value(), name="b")
    p_ref = T.nnet.softmax(T.dot(x, w_ref) + b_ref)
    cost_ref = -T.mean(T.log(p_ref)[T.arange(y.shape[0]), y])
    gw_r, gb_r = th.grad(cost_ref, [w_ref, b_ref])
    f_ref = th.function([x, y], cost_ref, backend="numpy",
                        updates=[(w_ref, w_ref - 0.5 * gw_r), (b_ref, b_ref - 0.5 * gb_r)])
    for _ in range(5):
        np.testing.assert_allclose(f_ocl(xv, yv), f_ref(xv, yv), rtol=1e-10)
    np.testing.assert_allclose(w.get_value(), w_ref.get_value(), rtol=1e-9, atol=1e-12)


def test_device_choice(ocl):
    from theanine.backends.opencl.runtime import default_device

    (p, d, _), _ = default_device()
    assert get_backend(f"opencl:{p}:{d}").runtime().platform_index == p
    with pytest.raises(ValueError, match="no OpenCL device 'opencl:9:9'; devices: opencl:0:0"):
        get_backend("opencl:9:9")
    with pytest.raises(BackendUnavailable, match="no backend serves device 'opencl:x'; .*"
                                                 r"opencl \(devices: opencl, opencl:P:D\)"):
        get_backend("opencl:x")
    x = T.vector("x")
    f = th.function([x], T.exp(x), backend=f"opencl:{p}:{d}")
    np.testing.assert_allclose(f(np.zeros(4)), np.ones(4))


def test_views_need_no_device_copy(ocl):
    from theanine.gpu.library import view_through

    rt = ocl.runtime()
    host = np.arange(24.0).reshape(2, 3, 4)
    arr = rt.to_device(host)
    for index in [np.s_[:, ::-1, 1:], np.s_[1, :, ::2], np.s_[..., None, 2], np.s_[::-1, -1],
                  np.s_[1, -1, 2]]:
        v = view_through(arr, lambda p, i=index: p[i])
        assert v is not None and v.buffer is arr.buffer
        np.testing.assert_array_equal(v.get(), host[index])
    assert view_through(arr.view((3, 2, 4), (4, 12, 1)), lambda p: p.reshape(24)) is None


def test_strided_and_broadcast_inputs(ocl):
    x, y = T.matrix("x"), T.vector("y")
    f = th.function([x, y], [T.exp(2 * x * y + y), (x * y).sum(axis=0)], backend="opencl")
    xv = np.random.default_rng(1).standard_normal((7, 10))[:, ::-2]
    yv = np.linspace(-1, 1, 5)
    e, s = f(xv, yv)
    np.testing.assert_allclose(e, np.exp(2 * xv * yv + yv), rtol=1e-12)
    np.testing.assert_allclose(s, (xv * yv).sum(axis=0), rtol=1e-12)


def test_large_reduction_combines_partials(ocl):
    x = T.vector("x", dtype="float32")
    f = th.function([x], [x.sum(), x.max()], backend="opencl")
    xv = np.random.default_rng(2).random(3_000_001).astype("float32")
    s, m = f(xv)
    np.testing.assert_allclose(s, xv.astype("float64").sum(), rtol=1e-5)
    assert m == xv.max()


def test_a_kernel_shared_by_graphs_is_built_once(ocl, monkeypatch):
    """Kernels are named after their text, not their place in a graph: on a CPU device a
    second graph builds only the kernels the process has not built yet."""
    rt = ocl.runtime()
    monkeypatch.setattr(rt, "binary_cache", False)  # what PoCL's CPU device does
    monkeypatch.setattr(rt, "_built", OrderedDict())
    built: list[list[str]] = []
    build = rt.build
    monkeypatch.setattr(rt, "build", lambda src, names: built.append(names) or build(src, names))
    x, y = T.fvector("x"), T.fvector("y")
    f = th.function([x], T.tanh(x) * 3, backend="opencl")
    g = th.function([x, y], [T.exp(y) + 1, T.tanh(x) * 3], backend="opencl")  # tanh is second
    h = th.function([y], T.tanh(y) * 3, backend="opencl")
    assert len(built) == 2 and len(built[0]) == 2 and not set(built[0]) & set(built[1])
    v = np.linspace(-2, 2, 5, dtype="float32")
    np.testing.assert_allclose(f(v), np.tanh(v) * 3, rtol=1e-6)
    np.testing.assert_allclose(g(v, v)[1], np.tanh(v) * 3, rtol=1e-6)
    np.testing.assert_allclose(h(v), np.tanh(v) * 3, rtol=1e-6)
    np.testing.assert_allclose(g(v, v)[0], np.exp(v) + 1, rtol=1e-6)


def test_long_runs_rows_and_chunks(ocl):
    """Sizes that cross the CPU kernels' runs (elementwise) and chunks (reductions), with
    broadcast, transposed and reversed operands."""
    from theanine.codegen.gpu import CPU_RUN
    from theanine.gpu.runtime import SERIAL_CHUNK

    rng = np.random.default_rng(3)
    x, y = T.matrix("x"), T.vector("y")
    outs = [T.exp(x * y) - y, x.T * 2, x.sum(axis=0), x.sum(axis=1), x.max(), x.sum()]
    f = th.function([x, y], outs, backend="opencl")
    for rows, cols in [(3, 2 * CPU_RUN + 7), (2 * SERIAL_CHUNK + 3, 5), (1, 3 * SERIAL_CHUNK)]:
        xv = rng.standard_normal((rows, cols))
        yv = rng.standard_normal(cols)
        for xx in (xv, xv[::-1, ::-1]):
            want = [np.exp(xx * yv) - yv, xx.T * 2, xx.sum(axis=0), xx.sum(axis=1), xx.max(),
                    xx.sum()]
            for got, w in zip(f(xx, yv), want):
                np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-9)


def test_binary_cache_is_reused(ocl, tmp_path, monkeypatch):
    monkeypatch.setenv("THEANINE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(ocl.runtime(), "binary_cache", True)  # GPU drivers' default
    x = T.vector("x")
    th.function([x], T.tanh(x) * 3, backend="opencl")
    entries = list((tmp_path / "opencl").glob("*.clbin"))
    assert len(entries) == 1 and oct((tmp_path / "opencl").stat().st_mode & 0o777) == "0o700"
    stamp = entries[0].stat().st_mtime_ns
    f = th.function([x], T.tanh(x) * 3, backend="opencl")
    assert entries[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    np.testing.assert_allclose(f(np.ones(3)), np.tanh(1.0) * 3)


def test_no_float64_device_is_a_clear_error(ocl, monkeypatch):
    rt = ocl.runtime()
    monkeypatch.setattr(rt, "dtypes", rt.dtypes - {"float64"})
    x = T.dvector("x")
    with pytest.raises(TypeError, match="has no float64 support, needed by"):
        th.function([x], x * 2, backend="opencl")


def test_bad_call_is_located_like_the_reference(ocl):
    x, y = T.vector("x"), T.vector("y")
    f = th.function([x, y], x + y, backend="opencl")
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones(4))
    assert "test_opencl.py" in str(info.value)


def test_info_lists_opencl_devices(ocl):
    from theanine.info import info_lines

    text = "\n".join(info_lines())
    assert "device opencl:0:0:" in text


@pytest.mark.parametrize("seed", ["seed_001_xor_network.py",
                                  "seed_002_intro_linear_regression.py"])
def test_seed_programs_run_on_opencl(ocl, seed):
    from examples_runner import check_seed_on_device

    check_seed_on_device(seed, "opencl")


def _count_uploads(monkeypatch, rt) -> list:
    sizes: list = []
    upload = rt.upload_into

    def counted(buffer, host):
        sizes.append(host.nbytes)
        upload(buffer, host)

    monkeypatch.setattr(rt, "upload_into", counted)
    return sizes


def test_broadcast_inputs_upload_only_their_memory(ocl, monkeypatch):
    """A broadcast view is uploaded as the memory it reads and used through its strides."""
    rt = ocl.runtime()
    x = T.vector("x", dtype="float32")
    m = T.matrix("m", dtype="float32")
    f = th.function([x], x * 2, backend="opencl")
    g = th.function([m], (m + 1).sum(axis=0), backend="opencl")
    uploads = _count_uploads(monkeypatch, rt)
    one = np.broadcast_to(np.float32(1.5), (2**24,))
    np.testing.assert_array_equal(f(one), np.full(2**24, 3.0, np.float32))
    assert uploads == [4]
    rows = np.broadcast_to(np.arange(3, dtype=np.float32)[::-1], (1000, 3))
    cols = np.broadcast_to(np.arange(4, dtype=np.float32)[::-1, None], (4, 5)).T
    for value in (rows, cols):
        np.testing.assert_array_equal(g(value), (value + 1).sum(axis=0))
    assert uploads == [4, 12, 16]


def test_output_larger_than_the_device_allocates_fails_before_uploads(ocl, monkeypatch):
    rt = ocl.runtime()
    x = T.vector("x", dtype="float32")
    y = T.vector("y", dtype="float32")
    f = th.function([x, y], x * y, backend="opencl")
    monkeypatch.setattr(rt, "max_alloc", 2**20)
    uploads = _count_uploads(monkeypatch, rt)
    with pytest.raises(MemoryError) as info:
        f(np.ones(2**18 + 1, np.float32), np.ones(1, np.float32))
    message = str(info.value)
    assert "the output (x * y) has shape (262145,) and dtype float32: 1048580 bytes" in message
    assert "1048576 bytes" in message and "max_mem_alloc_size" in message
    assert "test_opencl.py" in message  # the line that built it
    assert is_located(info.value) and "The call's inputs" not in message  # raised as it is
    assert uploads == []
    np.testing.assert_array_equal(f(np.ones(2**18, np.float32), np.ones(1, np.float32)),
                                  np.ones(2**18, np.float32))


def test_kernels_kept_for_later_programs_are_bounded(ocl, monkeypatch):
    """A CPU device keeps the most recently used kernels for later programs, no more than
    KEPT_KERNELS; a function keeps working after its kernels leave that cache."""
    from theanine.backends.opencl import runtime as ocl_runtime

    rt = ocl.runtime()
    if rt.binary_cache:
        pytest.skip("GPU drivers build whole programs from the disk cache")
    monkeypatch.setattr(ocl_runtime, "KEPT_KERNELS", 2)
    monkeypatch.setattr(rt, "_built", type(rt._built)())
    x = T.vector("x")
    fs = [th.function([x], op(x) * 2, backend="opencl") for op in (T.tanh, T.arctan, T.cosh)]
    assert len(rt._built) == 2
    v = np.linspace(-1, 1, 5)
    for f, ref in zip(fs, (np.tanh, np.arctan, np.cosh)):
        np.testing.assert_allclose(f(v), ref(v) * 2)
