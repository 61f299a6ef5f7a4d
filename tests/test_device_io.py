"""Device arrays at the call boundary of a function on a device backend: inputs already in the
device's memory are read in place, `return_device=True` hands outputs back as device arrays,
and neither lets a caller's array share memory with a stored value. Run on the OpenCL backend
(PoCL's CPU device in CI) with pyopencl Arrays; tests/test_cuda.py does the same for pycuda
GPUArrays and DLPack on a GPU machine."""

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends


@pytest.fixture
def rt():
    backend = backends()["opencl"]
    ok, why = backend.available()
    if not ok:
        pytest.skip(f"OpenCL backend unavailable: {why}")
    return backend.runtime()


def _to_device(rt, host):
    import pyopencl.array as cla

    return cla.to_device(rt.queue, np.ascontiguousarray(host))


def test_device_inputs_are_read_in_place(rt):
    x, y = T.matrix("x"), T.vector("y")
    f = th.function([x, y], T.exp(x).sum(axis=1) + y, backend="opencl")
    host = np.arange(12.0).reshape(3, 4) / 10
    g = _to_device(rt, host)
    uploads = []
    real = rt.upload_into
    rt.upload_into = lambda *a: uploads.append(a) or real(*a)
    try:
        for view, want in [(g, host), (g[:, 1:], host[:, 1:]), (g[1:], host[1:])]:
            got = f(view, _to_device(rt, np.ones(len(want))))
            np.testing.assert_allclose(got, np.exp(want).sum(axis=1) + 1, rtol=1e-12)
    finally:
        del rt.upload_into
    assert uploads == []  # every input was read where it lies: the function copied nothing up
    # a host array and a device array give the same answer through the same function
    np.testing.assert_allclose(f(host, np.zeros(3)), f(g, _to_device(rt, np.zeros(3))))


def test_trusted_inputs_may_be_device_arrays(rt):
    x = T.vector("x")
    f = th.function([x], x * 3, backend="opencl", trust_input=True)
    np.testing.assert_array_equal(f(_to_device(rt, np.arange(4.0))), [0, 3, 6, 9])


def test_return_device_hands_out_device_arrays(rt):
    from pyopencl.array import Array

    x = T.matrix("x")
    f = th.function([x], [x.T, (x * 2)[::-1], x.sum()], backend="opencl", return_device=True)
    host = np.arange(6.0).reshape(2, 3)
    g = _to_device(rt, host)
    t, flipped, total = f(g)
    assert all(isinstance(r, Array) for r in (t, flipped, total))
    np.testing.assert_array_equal(t.get(), host.T)
    np.testing.assert_array_equal(flipped.get(), (host * 2)[::-1])
    stepped = th.function([x], (x * 3)[::2], backend="opencl", return_device=True)
    rows = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal((stepped(rows) + 1).get(), (rows * 3)[::2] + 1)
    assert total.get() == host.sum() and total.shape == ()
    g.fill(-1)  # the caller's input changes: x.T was a view of it, so it was copied
    np.testing.assert_array_equal(t.get(), host.T)
    # the result of an unchanged host-backend function is still a NumPy array
    h = th.function([x], x.sum(), backend="numpy", return_device=True)
    assert isinstance(h(host), np.ndarray)


def test_outputs_on_device_never_share_memory(rt):
    w = th.shared(np.arange(3.0), name="w")
    x = T.vector("x")
    y = x + w
    f = th.function([x], [y, y, w], updates=[(w, y)], backend="opencl", return_device=True)
    a, b, c = f(_to_device(rt, np.ones(3)))
    a.fill(100.0)  # none of these may be the new shared value or each other
    c.fill(-5.0)
    np.testing.assert_array_equal(b.get(), [1, 2, 3])
    np.testing.assert_array_equal(w.get_value(), [1, 2, 3])


def test_updates_from_device_inputs_are_copied(rt):
    w = th.shared(np.zeros(3), name="w")
    x = T.vector("x")
    f = th.function([x], [], updates=[(w, x)], backend="opencl")
    g = _to_device(rt, np.arange(3.0))
    f(g)
    g.fill(7.0)  # the caller may write its array; the stored value must not change
    np.testing.assert_array_equal(w.get_value(), [0, 1, 2])


def test_updates_never_share_a_constant_or_another_shared_value(rt):
    w, w2 = th.shared(np.zeros(3), name="w"), th.shared(np.arange(3.0), name="w2")
    c = T.constant(np.ones(3))
    f = th.function([], [], updates=[(w, c), (w2, w2 * c)], backend="opencl")
    f()
    w.get_value(borrow=True, return_internal_type=True).fill(42.0)  # the caller's to write
    f()
    np.testing.assert_array_equal(w2.get_value(), [0, 1, 2])  # the constant is unchanged
    np.testing.assert_array_equal(w.get_value(), [1, 1, 1])


def test_device_inputs_are_checked_like_host_inputs(rt):
    x = T.matrix("x")
    f = th.function([x], x * 2, backend="opencl")
    ints = _to_device(rt, np.arange(6, dtype=np.int32).reshape(2, 3))
    np.testing.assert_array_equal(f(ints), np.arange(6.0).reshape(2, 3) * 2)  # cast on device
    with pytest.raises(TypeError, match=r"input 0 \('x'\): expected a 2-d array .* got a 1-d "
                                        r"Array with shape \(3,\)"):
        f(_to_device(rt, np.ones(3)))
    v = T.vector("v", dtype="float32")
    g = th.function([v], v + 1, backend="opencl")
    with pytest.raises(TypeError, match=r"expected dtype float32, got a Array of dtype float64 "
                                        "in device memory"):
        g(_to_device(rt, np.ones(3)))
    g2 = th.function([v], v + 1, backend="opencl", allow_input_downcast=True)
    np.testing.assert_array_equal(g2(_to_device(rt, np.ones(3))), [2, 2, 2])
    s = T.tensor("float64", shape=(2, None), name="s")
    h = th.function([s], s.sum(), backend="opencl")
    with pytest.raises(ValueError, match=r"expected shape \(2, \?\), got \(3, 3\)"):
        h(_to_device(rt, np.ones((3, 3))))
    # int64 holds integers float64 cannot represent (above 2**53): refused unless allowed
    big = _to_device(rt, np.array([[2 ** 53 + 1] * 3] * 2, dtype=np.int64))
    with pytest.raises(TypeError, match=r"expected dtype float64, got a Array of dtype int64 "
                                        "in device memory, which may lose values"):
        h(big)


def test_arrays_of_another_context_are_refused(rt):
    import pyopencl as cl
    import pyopencl.array as cla

    other = cl.CommandQueue(cl.Context([rt.device]))
    x = T.vector("x")
    f = th.function([x], x + 1, backend="opencl")
    with pytest.raises(ValueError, match="belongs to another OpenCL context"):
        f(cla.to_device(other, np.ones(3)))


def test_constant_outputs(rt):
    x = T.vector("x")
    f = th.function([x], [T.constant(np.arange(2.0)), x + 1], backend="opencl")
    c, y = f(np.zeros(3))
    np.testing.assert_array_equal(c, [0, 1])
    np.testing.assert_array_equal(y, [1, 1, 1])


def test_foreign_device_arrays_get_a_clear_error(rt):
    class CudaLike:
        __cuda_array_interface__ = {"shape": (3,), "typestr": "<f8", "data": (0, False),
                                    "version": 3}

    x = T.vector("x")
    f = th.function([x], x + 1, backend="opencl")
    with pytest.raises(TypeError, match=r"input 0 \('x'\): got a CudaLike in the memory of a "
                                        "device this function does not run on"):
        f(CudaLike())


def test_shared_values_cross_as_device_arrays(rt):
    from pyopencl.array import Array

    w = th.shared(np.arange(3.0), name="w")
    f = th.function([], [], updates=[(w, w * 2)], backend="opencl")
    f()
    got = w.get_value(return_internal_type=True)
    assert isinstance(got, Array) and w._host is None  # never copied down
    np.testing.assert_array_equal(got.get(), [0, 2, 4])
    got.fill(9.0)  # a copy unless borrowed
    np.testing.assert_array_equal(w.get_value(), [0, 2, 4])
    g = _to_device(rt, np.array([1.0, 2.0, 3.0]))
    w.set_value(g)
    g.fill(0.0)  # set_value copied it on the device
    f()
    np.testing.assert_array_equal(w.get_value(), [2, 4, 6])
    w.set_value(_to_device(rt, np.array([1, 1, 1], dtype=np.int32)))  # cast without loss
    np.testing.assert_array_equal(w.get_value(), [1, 1, 1])
    w.set_value(np.zeros(3))  # back on the host: a device array is still taken afterwards
    w.set_value(_to_device(rt, np.array([5.0, 6.0, 7.0])))
    np.testing.assert_array_equal(w.get_value(), [5, 6, 7])
    with pytest.raises(TypeError, match="expected a 1-d array"):
        w.set_value(_to_device(rt, np.ones((2, 2))))
