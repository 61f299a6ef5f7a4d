"""The CUDA runtime without a GPU: cuBLAS on row-major views (emulated), DLPack and CUDA array
interface imports, the pycuda calls the runtime makes (a stand-in pycuda), device names and the
reasons the backend gives when it cannot run."""


import ctypes
import itertools
import re
import struct
import sys
import threading
import types
import weakref

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import BackendUnavailable, backends, get_backend
from theanine.backends.cuda import backend as cuda_backend_module
from theanine.backends.cuda import cublas
from theanine.backends.cuda import runtime as cuda_runtime_module
from theanine.backends.cuda.backend import CUDABackend
from theanine.backends.cuda.compiler import find_nvcc
from theanine.backends.cuda.interop import from_cuda_array_interface, from_dlpack
from theanine.backends.cuda.runtime import parse_device


class _EmulatedCublas(cublas.Cublas):
    """Cublas whose GEMM is NumPy reading and writing float64 `memory` (at byte address
    `base`) with BLAS's column-major meaning of (op, m, n, k, pointer, ld)."""

    def __init__(self, memory: np.ndarray, base: int = 0):
        self.memory, self.base, self.handle = memory, base, None
        self._fns = {"float64": (self._dgemm, ctypes.c_double)}

    def _dgemm(self, handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        mem, base = self.memory, self.base

        def op(ptr, trans, ld, rows, cols):  # op(M) is rows x cols; M is column-major
            r, q = (rows, cols) if trans == cublas.OP_N else (cols, rows)
            stored = np.array([[mem[(ptr - base) // 8 + i + j * ld] for j in range(q)]
                               for i in range(r)])
            return stored if trans == cublas.OP_N else stored.T

        product = alpha._obj.value * op(a, transa, lda, m, k) @ op(b, transb, ldb, k, n)
        for i, j in itertools.product(range(m), range(n)):
            mem[(c - base) // 8 + i + j * ldc] = product[i, j]
        return 0


VIEWS = {"whole": (lambda x: x, cublas.OP_N), "transposed": (lambda x: x.T, cublas.OP_T),
         "every other row": (lambda x: x[::2], cublas.OP_N),
         "columns from 1": (lambda x: x[:, 1:], cublas.OP_N),
         "one row": (lambda x: x[:1], cublas.OP_N), "one column": (lambda x: x[:, :1],
                                                                   cublas.OP_N),
         "one row of the transpose": (lambda x: x.T[:1], cublas.OP_T),
         "one element": (lambda x: x[2:3, 4:5], cublas.OP_N),
         "rows reversed": (lambda x: x[::-1], None), "column step 2": (lambda x: x[:, ::2], None),
         "strided transpose": (lambda x: x[1:, ::3].T, None),
         "broadcast row": (lambda x: np.broadcast_to(x[:1], (4, 12)), None)}


@pytest.mark.parametrize("name", VIEWS)
def test_cublas_reads_row_major_views_in_place(name):
    view, op = VIEWS[name]
    memory = np.zeros(400)
    base = memory[:96].reshape(8, 12)
    base[...] = np.arange(1.0, 97.0).reshape(8, 12)
    x = view(base)
    strides = tuple(s // 8 for s in x.strides)
    found = cublas.operand(x.shape, strides)
    assert (found and found[0]) == op  # None: the runtime copies it first
    if op is None:
        return
    address = x.__array_interface__["data"][0] - memory.__array_interface__["data"][0]
    blas = _EmulatedCublas(memory)
    rows, cols = x.shape
    for left in (True, False):  # x @ w and u @ x, w and u contiguous
        other = memory[100:100 + 3 * (cols if left else rows)]
        other[...] = np.arange(other.size) - 7.0
        o = other.reshape((cols, 3) if left else (3, rows))
        pair = [(address, *found), (800, *cublas.operand(o.shape, (o.shape[1], 1)))]
        a, b = pair if left else pair[::-1]
        m, n = (rows, 3) if left else (3, cols)
        blas.row_major_gemm("float64", m, n, cols if left else rows, 1.0, a, b, 0.0, 2400)
        got = memory[300:300 + m * n].reshape(m, n)
        np.testing.assert_array_equal(got, x @ o if left else o @ x)


# -- arrays of other libraries -------------------------------------------------------------------
def test_dlpack_export_is_read_in_place_and_released():
    base = np.arange(24, dtype=np.float32).reshape(4, 6).copy()  # owns its memory
    view = base[::2, 1::2]
    alive = weakref.ref(base)
    found = from_dlpack(view)
    assert found.device == (1, 0) and found.dtype == np.float32
    assert found.shape == (2, 3) and found.strides == (12, 2)
    assert int(found.pointer) == view.__array_interface__["data"][0]
    del base, view
    assert alive() is not None  # the capsule's owner keeps the memory
    del found
    assert alive() is None  # and the producer's deleter ran
    assert from_dlpack(np.zeros(3, bool)).dtype == np.bool_


def test_cuda_array_interface_is_read_in_place():
    holder = types.SimpleNamespace(__cuda_array_interface__={
        "shape": (3, 4), "typestr": "<f8", "data": (4096, False), "strides": (8, 24),
        "version": 3, "stream": 1})
    found = from_cuda_array_interface(holder)
    assert (int(found.pointer), found.shape, found.strides) == (4096, (3, 4), (1, 3))
    assert found.pointer.owner is holder and found.stream == 1
    holder.__cuda_array_interface__.update(strides=None)
    assert from_cuda_array_interface(holder).strides == (4, 1)
    holder.__cuda_array_interface__.update(strides=(8, 4))
    with pytest.raises(ValueError, match="not multiples of the float64 item size"):
        from_cuda_array_interface(holder)
    assert from_cuda_array_interface(np.zeros(3)) is None


# -- the runtime over a stand-in for pycuda ------------------------------------------------------
class _Allocation(int):
    """A pooled allocation: an address in the stand-in's host memory."""


class _Kernel:
    """A kernel fetched from a loaded module: prepare() and prepared_call() as pycuda has them;
    launches pack their arguments with the prepared format and are recorded, not run."""

    def __init__(self, name: str, launches: list):
        self.name, self.launches = name, launches

    def prepare(self, fmt: str):
        self.fmt = fmt
        return self

    def prepared_call(self, grid, block, *args):
        assert len(block) == 3 and all(isinstance(g, int) for g in (*grid, *block))
        struct.pack(self.fmt, *args)  # the arguments fit the format
        self.launches.append(self.name)


def _stand_in_pycuda(memory: np.ndarray, launches: list) -> dict[str, types.ModuleType]:
    """pycuda, pycuda.driver, pycuda.tools and pycuda.gpuarray as far as CUDARuntime uses them,
    over `memory` (device addresses are 4096 + index)."""
    base, top = 4096, [4096]

    current = threading.local()  # CUDA's context stack is per thread

    def view(address, nbytes):
        assert getattr(current, "stack", None), "no CUDA context is current in this thread"
        return memory[address - base:address - base + nbytes]

    class Context:
        synchronize = staticmethod(lambda: None)

        @staticmethod
        def pop():
            current.stack.pop()

        def push(self):
            current.stack = getattr(current, "stack", []) + [self]

    class Device:
        count = staticmethod(lambda: 1)

        def __init__(self, index):
            self.index = index

        def compute_capability(self):
            return (9, 0)

        def get_attribute(self, attribute):
            return 132

        def retain_primary_context(self):
            return Context()

        def name(self):
            return "stand-in H100"

        def total_memory(self):
            return memory.size

    class Module:
        def get_function(self, name):
            return _Kernel(name, launches)

    def allocate(nbytes):
        top[0] += -(-nbytes // 256) * 256
        return _Allocation(top[0] - -(-nbytes // 256) * 256)

    driver = types.ModuleType("pycuda.driver")
    driver.init = lambda: None
    driver.Device, driver.Context = Device, Context
    driver.device_attribute = types.SimpleNamespace(MULTIPROCESSOR_COUNT="sms")
    driver.module_from_buffer = lambda cubin: Module()

    def htod(dst, host):
        view(int(dst), host.nbytes)[...] = host.view(np.uint8).ravel()

    def dtoh(host, src):
        host.view(np.uint8).ravel()[...] = view(int(src), host.nbytes)

    driver.memcpy_htod, driver.memcpy_dtoh = htod, dtoh
    tools = types.ModuleType("pycuda.tools")
    tools.DeviceMemoryPool = lambda: types.SimpleNamespace(allocate=allocate)
    gpuarray = types.ModuleType("pycuda.gpuarray")
    gpuarray.GPUArray = lambda shape, dtype, gpudata, strides, base: types.SimpleNamespace(
        shape=shape, dtype=dtype, gpudata=gpudata, strides=strides, base=base)
    package = types.ModuleType("pycuda")
    package.driver, package.tools, package.gpuarray = driver, tools, gpuarray
    return {"pycuda": package, "pycuda.driver": driver, "pycuda.tools": tools,
            "pycuda.gpuarray": gpuarray}


def test_runtime_drives_pycuda_as_documented(monkeypatch):
    """The runtime's own code (transfers with byte offsets, building, prepared launches,
    adopting and handing out arrays) run against a stand-in for pycuda; the kernels compile
    with the real nvcc but do not run."""
    if find_nvcc() is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed here")
    memory, launches = np.zeros(1 << 20, np.uint8), []
    for name, module in _stand_in_pycuda(memory, launches).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cuda_runtime_module._Current, "runtime", None)
    backend = CUDABackend()
    assert backend.available() == (True, "")
    monkeypatch.setitem(backends(), "cuda", backend)
    rt = backend.runtime()
    assert rt.arch == "sm_90" and rt.max_groups == 132 * 32
    x = T.matrix("x")
    host = np.arange(12.0).reshape(3, 4)
    rows = th.function([x], x[1:], backend="cuda")  # a view: upload, then a download at offset
    np.testing.assert_array_equal(rows(host), host[1:])
    w = th.shared(np.ones((4, 2)), name="w")
    step = th.function([x], T.dot(T.exp(x), w).sum(axis=1), updates=[(w, w * 2)],
                       backend="cuda")
    step(host)
    assert any(n.startswith("th_gemm_float64_") for n in launches)
    assert any(n.startswith("th_c_") for n in launches)
    rt.blas = _EmulatedCublas(memory.view(np.float64), base=4096)  # GEMMs now really compute
    y = T.matrix("y")
    products = th.function([x, y], [T.dot(x.T, y[:, 1:]), T.dot(x[:, 0], y)], backend="cuda")
    yv = np.arange(15.0).reshape(3, 5) - 4
    got = products(host, yv)
    np.testing.assert_array_equal(got[0], host.T @ yv[:, 1:])
    np.testing.assert_array_equal(got[1], host[:, 0] @ yv)
    holder = types.SimpleNamespace(__cuda_array_interface__={
        "shape": (2, 3), "typestr": "<f8", "data": (int(rt.to_device(host).buffer) + 8, False),
        "strides": (32, 8), "version": 3, "stream": None})
    adopted = rt.adopt(holder)
    assert adopted.buffer.owner is holder and rt.adopt(adopted) is adopted
    np.testing.assert_array_equal(rt.to_host(adopted.view((2,), (1,))), host[0, 1:3])
    assert rt.adopt(host) is None
    shown = rt.export(adopted)
    assert (shown.gpudata, shown.strides, shown.base) == (int(adopted.buffer), (32, 8), adopted)


# -- unavailable is a state ----------------------------------------------------------------------
def test_each_thread_makes_the_context_current(monkeypatch):
    """CUDA's current context is per thread: a thread other than the one that made the runtime
    pushes the context before its first transfer, and switching back needs no pop there."""
    memory = np.zeros(1 << 16, np.uint8)
    for name, module in _stand_in_pycuda(memory, []).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cuda_runtime_module._Current, "runtime", None)
    rt = cuda_runtime_module.CUDARuntime("cuda")
    host = np.arange(6.0)
    results, errors = [], []

    def other_thread():
        try:
            results.append(rt.to_host(rt.to_device(host)))
        except AssertionError as e:
            errors.append(str(e))

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert errors == [] and len(results) == 1
    np.testing.assert_array_equal(results[0], host)
    np.testing.assert_array_equal(rt.to_host(rt.to_device(host)), host)


def test_device_names():
    assert [parse_device(s) for s in ("cuda", "gpu", "cuda:3", "gpu:1", "cuda1", "gpu12")] \
        == [0, 0, 3, 1, 1, 12]
    for bad in ("cuda:x", "cuda:", "cuda\u00b2", "gpux"):
        with pytest.raises(ValueError, match="expected one of cuda, gpu, cuda:N, gpu:N"):
            parse_device(bad)


def test_unavailable_backend_says_why():
    ok, why = backends()["cuda"].available()
    if ok:
        pytest.skip("the CUDA backend is available here")
    assert why
    x = T.vector("x")
    with pytest.raises(BackendUnavailable, match=re.escape(f"backend 'cuda' is not available: "
                                                           f"{why}")):
        th.function([x], x * 2, backend="cuda")
    with pytest.raises(BackendUnavailable, match="no available backend for device 'gpu'"):
        get_backend("gpu")


def _fake_pycuda(monkeypatch, init=None, count=0):
    driver = types.ModuleType("pycuda.driver")
    driver.init = init or (lambda: None)
    driver.Device = types.SimpleNamespace(count=lambda: count)
    package = types.ModuleType("pycuda")
    package.driver = driver
    package.tools = types.ModuleType("pycuda.tools")
    for name, module in (("pycuda", package), ("pycuda.driver", driver),
                         ("pycuda.tools", package.tools)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cuda_backend_module, "find_nvcc", lambda: "/usr/bin/nvcc")


def test_driver_failure_and_no_gpu_are_reasons(monkeypatch):
    def no_driver():
        raise RuntimeError("cuInit failed: no CUDA-capable device is detected")

    _fake_pycuda(monkeypatch, init=no_driver)
    assert CUDABackend().available() == (
        False, "RuntimeError: cuInit failed: no CUDA-capable device is detected")
    _fake_pycuda(monkeypatch, count=0)
    assert CUDABackend().available() == (False, "RuntimeError: no CUDA GPU found")
    monkeypatch.setattr(cuda_backend_module, "find_nvcc", lambda: None)
    ok, why = CUDABackend().available()
    assert not ok and "nvcc (CUDA toolkit) not found" in why


def test_info_describes_the_cuda_backend():
    from theanine.info import info_lines

    text = "\n".join(info_lines())
    assert re.search(r"cuda\s+devices=cuda,gpu,cuda:N,gpu:N,cudaN,gpuN\s+(available|unavailable: )",
                     text)
    assert "nvcc: " in text


# -- on a GPU ------------------------------------------------------------------------------------
