"""The CUDA backend.

Everywhere (no GPU needed): every kernel the conformance suite renders for CUDA compiles with
nvcc and every launch those programs make matches its kernel's signature (the runtime's other
GPU-free checks are in test_cuda_runtime.py). On a GPU machine (../shared/GPU.md): values on
the device, cuBLAS, GPUArray and DLPack inputs, a sample of the conformance suite
(tests/test_conformance.py runs all of it on every available backend) and the seeds with
THEANINE_FLAGS=device=cuda.
"""

import hashlib
import itertools
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import theanine as th
import theanine.tensor as T
from theanine.backend import backends, get_backend
from theanine.backends.cuda.backend import CUDABackend
from theanine.backends.cuda.compiler import NvccError, compile_cubin, find_nvcc
from theanine.backends.cuda.dialect import CUDARenderer
from theanine.backends.cuda.runtime import argument_format
from theanine.backends.numpy.backend import NumpyBackend
from theanine.gpu.array import DeviceArray
from theanine.gpu.backend import GpuBackend
from theanine.gpu.program import GpuProgram
from theanine.gpu.runtime import Runtime
from theanine.testing.cases import all_cases, case_dtypes
from theanine.testing.compare import PreparedComparison, Unsupported
from theanine.testing.strategies import FLOATS
from theanine.testing.test_suite import test_case as run_case
from theanine.testing.test_suite import test_random_graph as run_random_graphs

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")
ARCH = "sm_90"  # the H100's architecture; what CI compiles for
_KERNEL = re.compile(r'^extern "C" __global__ void (\w+)\(', re.M)
_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
_C_STRUCT = {"int64_t": "q", "uint64_t": "Q", "int32_t": "i", "uint32_t": "I", "int16_t": "h",
             "uint16_t": "H", "int8_t": "b", "uint8_t": "B", "npy_bool": "B", "float": "f",
             "double": "d"}
_SCALARS = {"q": np.int64, "Q": np.uint64, "i": np.int32, "I": np.uint32, "h": np.int16,
            "H": np.uint16, "b": np.int8, "B": np.uint8, "f": np.float32, "d": np.float64}


def _declared_formats(source: str) -> dict[str, str]:
    """Each kernel's parameters as a struct format read from its declaration in `source` (an
    independent reading of the text, to check the signatures the renderer hands over)."""
    formats = {}
    for name, params in _SIGNATURE.findall(source):
        fmt = ""
        for p in params.split(","):
            words = p.replace("*", " * ").split()
            fmt += "P" if "*" in words else _C_STRUCT[words[-2]]
        formats[name] = fmt
    return formats


# -- a device that only pretends: records sources, checks launches ------------------------------
class LaunchMismatch(AssertionError):
    """A launch whose arguments do not fit the kernel's signature."""


class _Address(int):
    """A fake device buffer (pointer arguments must be buffers, never host objects)."""


class _FakeDevice(Runtime):
    """Records every source it is asked to build, checking that the signatures handed over
    with it are the ones its text declares; checks every launch's arguments against that
    parameter format (what pycuda's prepare receives)."""

    device_name = "fake CUDA device"

    def __init__(self):
        super().__init__(CUDARenderer())
        self.sources: list[tuple[str, str]] = []  # (source, label of what rendered it)
        self.label = ""
        self.launches = 0
        self._addresses = itertools.count(1)

    def alloc(self, nbytes):
        return _Address(next(self._addresses) << 32)

    def upload_into(self, buffer, host):
        pass

    def download_into(self, host, buffer, byte_offset):
        host[...] = 0

    def build(self, source, signatures):
        self.sources.append((source, self.label))
        declared = _declared_formats(source)
        formats = {name: argument_format(args) for name, args in signatures.items()}
        assert formats == {name: declared[name] for name in signatures}, self.label
        return {name: (name, fmt) for name, fmt in formats.items()}

    def launch(self, kernel, global_size, local_size, args):
        name, fmt = kernel
        if len(fmt) != len(args):
            raise LaunchMismatch(f"{name}: {len(args)} arguments for parameters {fmt!r}")
        for k, (code, arg) in enumerate(zip(fmt, args)):
            want = _Address if code == "P" else _SCALARS[code]
            if type(arg) is not want:
                raise LaunchMismatch(f"{name}: argument {k} is {type(arg).__name__} "
                                     f"{arg!r}, the kernel takes {want.__name__} ({fmt!r})")
        if any(g % b for g, b in zip(global_size, local_size)) or np.prod(local_size) > 1024:
            raise LaunchMismatch(f"{name}: bad geometry {global_size} / {local_size}")
        self.launches += 1


class _ShadowBackend(GpuBackend):
    """Compiles every graph for the fake CUDA device and runs it there (checking launches), but
    returns the NumPy reference's results, so whole conformance checks run through it."""

    name = "cuda-shadow"
    device_memory = False
    impls = CUDABackend.impls

    def __init__(self):
        self.device = _FakeDevice()

    def runtime(self):
        return self.device

    def compile(self, fgraph):
        program = GpuProgram(fgraph, self.device, self)
        reference = NumpyBackend().compile(fgraph)

        def run(*args):
            try:
                program.run(*args)
            except LaunchMismatch:
                raise
            except Exception:  # device values are fake (zeros): value-dependent steps may fail
                pass
            return reference(*args)

        return run


@pytest.fixture(scope="module")
def shadow():
    backend = _ShadowBackend()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(backends(), backend.name, backend)
        yield backend


def _compile_cases(backend: _ShadowBackend) -> None:
    """Every conformance case at every dtype, forward and gradient, compiled as the suite does."""
    for case in all_cases():
        for dtype in case_dtypes(case):
            backend.device.label = f"case {case.name} [{dtype}]"
            inputs, outputs = case.graph(dtype)
            try:
                PreparedComparison(backend.name, inputs, outputs, grad=case.grad,
                                   accumulates=case.accumulates)
            except Unsupported:
                continue


def _unique_kernels(sources: list[tuple[str, str]]) -> dict[str, str]:
    """Each distinct kernel definition (its name replaced by KNAME), mapped to the label of the
    first program that rendered it."""
    kernels: dict[str, str] = {}
    for source, label in sources:
        starts = [m.start() for m in _KERNEL.finditer(source)]
        for a, b in zip(starts, [*starts[1:], len(source)]):
            text = source[a:b]
            name = _KERNEL.match(text).group(1)
            kernels.setdefault(text.replace(f" {name}(", " KNAME(", 1), label)
    return kernels


def _batches(kernels: dict[str, str], prelude: str, n: int) -> list[str]:
    """Kernels in `n` sources, each kernel renamed after its hash and placed by it, so a batch's
    source (and its cache entry) only changes when one of its kernels does."""
    parts: list[list[str]] = [[] for _ in range(n)]
    for text in sorted(kernels):
        digest = hashlib.sha256(text.encode()).hexdigest()
        parts[int(digest, 16) % n].append(f"// {kernels[text]}\n" +
                                          text.replace(" KNAME(", f" k_{digest[:16]}(", 1))
    return [prelude + "\n" + "\n".join(p) for p in parts if p]


def _program_per_prelude(sources: list[tuple[str, str]]) -> list[str]:
    """The smallest program as rendered for each distinct prelude (the helpers a program's
    kernels use), so the helper selection is compiled too, not only the full prelude."""
    smallest: dict[str, str] = {}
    for source, _ in sources:
        prelude = source[:_KERNEL.search(source).start()]
        if len(source) < len(smallest.get(prelude, source + " ")):
            smallest[prelude] = source
    return list(smallest.values())


# -- nvcc: every kernel the suite renders compiles ----------------------------------------------
def test_every_rendered_kernel_compiles_with_nvcc(shadow, tmp_path):
    if find_nvcc() is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed here")
    _compile_cases(shadow)
    shadow.device.label = "random expression graphs"
    for dtype in FLOATS:
        run_random_graphs(conformance_backend=shadow.name, conformance_dtype=dtype)
    rt = shadow.device
    rt.label = "runtime copy and add-into kernels"
    for src, dst in itertools.product(sorted(rt.dtypes), repeat=2):
        rt.copy(DeviceArray(rt, rt.alloc(2), (2,), src), DeviceArray(rt, rt.alloc(2), (2,), dst))
        if dst != "bool":
            rt.add_into(DeviceArray(rt, rt.alloc(2), (2,), src),
                        DeviceArray(rt, rt.alloc(2), (2,), dst))
    kernels = _unique_kernels(rt.sources)
    assert len(kernels) > 1000  # elementwise (both layouts), reductions, GEMM, copies
    sources = _batches(kernels, rt.renderer.d.prelude(), 16) + _program_per_prelude(rt.sources)
    jobs = len(os.sched_getaffinity(0))

    def build(source):
        try:
            compile_cubin(source, ARCH)
        except NvccError as e:
            return source, str(e)
        return source, None

    with ThreadPoolExecutor(jobs) as pool:
        failed = [(s, e) for s, e in pool.map(build, sources) if e is not None]
    kept = []
    for k, (source, _) in enumerate(failed):
        kept.append(tmp_path / f"batch{k}.cu")
        kept[-1].write_text(source)
    assert not failed, (f"{len(failed)} of {len(sources)} sources of rendered CUDA kernels do "
                        f"not compile (kept as {', '.join(map(str, kept))}; in a batch, each "
                        "kernel is preceded by what rendered it):\n" + failed[0][1][-6000:])


def test_nvcc_check_fails_on_a_broken_kernel():
    if find_nvcc() is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed here")
    broken = CUDARenderer().d.prelude() + \
        '\nextern "C" __global__ void k(float *x) { x[0] = th_undefined_helper(x[1]) }\n'
    with pytest.raises(NvccError, match="(?s)nvcc failed.*th_undefined_helper"):
        compile_cubin(broken, ARCH)


# -- launches fit the kernels --------------------------------------------------------------------
def _check_draws(case, dtype, prepared: PreparedComparison) -> None:
    @settings(max_examples=3, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        prepared.check(case.draw_values(data, dtype))

    check()


def test_every_launch_matches_its_kernel_signature(shadow):
    """The suite's graphs run on drawn inputs through the fake device."""
    before = shadow.device.launches
    for case in all_cases():
        for dtype in case_dtypes(case):
            inputs, outputs = case.graph(dtype)
            try:
                prepared = PreparedComparison(shadow.name, inputs, outputs, grad=case.grad,
                                              accumulates=case.accumulates)
            except Unsupported:
                continue
            _check_draws(case, dtype, prepared)
    assert shadow.device.launches - before > 5000


def test_kernels_come_with_the_signatures_they_declare():
    """The renderer hands over each kernel's parameters with its text (the runtime never
    reads them back from the source), and they are the ones the text declares."""
    r = CUDARenderer()
    from theanine.codegen.ir import Kernel, Load

    k = Kernel("th_k1", 2, [("int8", 2), ("bool", 2)], ["float64", "bool"],
               [Load("int8", 0)], output_dtypes=["float32"])
    red = Kernel("th_r", 2, [("int16", 2)], ["uint32"], [Load("int16", 0)], reduce_op="add",
                 reduce_axes=(1,), acc_dtype="int64", output_dtypes=["int64"])
    expected = {"th_k1_c": "q" + "Pq" * 3 + "dB", "th_k1_s": "qqq" + "Pqqq" * 3 + "dB",
                "th_gemm_float32": "qqqff" + "Pqqq" * 3 + "Pq",
                "th_r": "qqqq" + "qq" + "Pq" + "Pqqq" + "I"}
    rendered = [r.contiguous(k, "th_k1_c"), r.strided(k, "th_k1_s"),
                r.gemm("th_gemm_float32", "float32"), r.reduction(red)]
    for (name, fmt), source in zip(expected.items(), rendered):
        assert argument_format(source.args) == fmt
        assert _declared_formats(source.text) == {name: fmt}
    assert [a.name for a in rendered[2].args][-2:] == ["C", "offC"]
    assert not rendered[2].args[-2].const and rendered[2].args[5].const  # C written, A read


def test_reductions_finish_with_warp_shuffles():
    from theanine.codegen.ir import Kernel, Load

    for dtype, op, shuffled in [("float32", "add", "__shfl_down_sync(0xffffffffu, red_, 16)"),
                                ("bool", "and", "__shfl_down_sync(0xffffffffu, (int)red_, 1)"),
                                ("int64", "max", "th_max_int64_t(red_, (int64_t)__shfl")]:
        k = Kernel("th_k1", 1, [(dtype, 1)], [], [Load(dtype, 0)], reduce_op=op,
                   reduce_axes=(0,), acc_dtype=dtype, output_dtypes=[dtype])
        text = CUDARenderer().reduction(k).text
        assert shuffled in text and "part[lid] = acc" not in text
    with pytest.raises(ValueError, match="multiple of 32"):
        CUDARenderer(workgroup=48)


# -- cuBLAS operand layouts ----------------------------------------------------------------------
@pytest.fixture
def gpu():
    ok, why = backends()["cuda"].available()
    if not ok:
        pytest.skip(f"CUDA backend unavailable: {why}")
    return backends()["cuda"]


def test_shared_values_stay_on_the_device(gpu):
    w = th.shared(np.arange(6.0).reshape(2, 3), name="w")
    x = T.matrix("x")
    step = th.function([x], (w * x).sum(), updates=[(w, w * 2)], backend="cuda")
    rt = gpu.runtime()
    assert float(step(np.ones((2, 3)))) == 15.0
    assert w._host is None and w._device[0].runtime is rt
    on_device = w._device[1]
    assert float(step(np.ones((2, 3)))) == 30.0
    assert w._device[1] is not on_device
    np.testing.assert_array_equal(on_device.get(), np.arange(6.0).reshape(2, 3) * 2)
    np.testing.assert_array_equal(w.get_value(), np.arange(6.0).reshape(2, 3) * 4)


def test_get_and_set_value_copy_unless_borrowed(gpu):
    w = th.shared(np.zeros(3), name="w")
    f = th.function([], [], updates=[(w, w + 1)], backend="cuda")
    f()
    a = w.get_value()
    a[:] = 100
    np.testing.assert_array_equal(w.get_value(), [1, 1, 1])
    v = np.full(3, 5.0)
    w.set_value(v, borrow=True)
    f()
    np.testing.assert_array_equal(w.get_value(), [6, 6, 6])
    np.testing.assert_array_equal(v, [5, 5, 5])


def test_strided_broadcast_and_large_reductions(gpu):
    x, y = T.matrix("x"), T.vector("y")
    f = th.function([x, y], [T.exp(2 * x * y + y), (x * y).sum(axis=0)], backend="cuda")
    xv = np.random.default_rng(1).standard_normal((7, 10))[:, ::-2]
    yv = np.linspace(-1, 1, 5)
    e, s = f(xv, yv)
    np.testing.assert_allclose(e, np.exp(2 * xv * yv + yv), rtol=1e-12)
    np.testing.assert_allclose(s, (xv * yv).sum(axis=0), rtol=1e-12)
    v = T.vector("v", dtype="float32")
    b = T.vector("b", dtype="bool")
    i = T.vector("i", dtype="int8")
    g = th.function([v, b, i], [v.sum(), v.max(), T.all(b), T.any(b), i.max(), i.min()],
                    backend="cuda")
    rng = np.random.default_rng(2)
    vv = rng.random(3_000_001).astype("float32")
    bv = np.ones(100_003, bool)
    bv[77_777] = False  # one False far from the start: all() must see it
    iv = rng.integers(-128, 128, 100_003).astype("int8")
    out = g(vv, bv, iv)
    np.testing.assert_allclose(out[0], vv.astype("float64").sum(), rtol=1e-5)
    assert out[1] == vv.max() and out[2] == bv.all() and out[3] == bv.any()
    assert out[4] == iv.max() and out[5] == iv.min()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_gemm_on_views_matches_numpy(gpu, dtype):
    a, b, c = (T.matrix(n, dtype=dtype) for n in "abc")
    f = th.function([a, b, c], [T.dot(a[::2].T, b[::2, 1:]), T.dot(a.T, b[::-1]),
                                2 * T.dot(a.T, c) + 3 * c[:1], T.dot(a[:, 0], b)],
                    backend="cuda")
    rng = np.random.default_rng(3)
    av, bv, cv = (rng.integers(-4, 5, s).astype(dtype) for s in [(64, 33), (64, 40), (64, 33)])
    got = f(av, bv, cv)
    want = [av[::2].T @ bv[::2, 1:], av.T @ bv[::-1], 2 * (av.T @ cv) + 3 * cv[:1],
            av[:, 0] @ bv]
    for g_, w_ in zip(got, want):
        np.testing.assert_allclose(g_, w_, rtol=1e-5 if dtype == "float32" else 1e-12)


def test_gpuarray_and_dlpack_inputs_without_a_copy(gpu):
    import pycuda.gpuarray as gpuarray

    rt = gpu.runtime()
    host = np.arange(12.0).reshape(3, 4)
    g = gpuarray.to_gpu(host)
    d = rt.adopt(g)
    assert int(d.buffer) == int(g.gpudata) and d.shape == (3, 4) and d.strides == (4, 1)
    x = T.matrix("x")
    for kw in ({}, {"trust_input": True}):
        f = th.function([x], T.exp(x).sum(axis=1), backend="cuda", **kw)
        np.testing.assert_allclose(f(g), np.exp(host).sum(axis=1), rtol=1e-12)
    f = th.function([x], [x.T, T.exp(x).sum(axis=1)], backend="cuda", return_device=True)
    t, s = f(g)
    assert isinstance(t, gpuarray.GPUArray) and isinstance(s, gpuarray.GPUArray)
    g.fill(0.0)  # x.T viewed the caller's array, so it was copied before it was handed out
    np.testing.assert_array_equal(t.get(), host.T)
    np.testing.assert_allclose(s.get(), np.exp(host).sum(axis=1), rtol=1e-12)
    back = rt.export(rt.adopt(g))
    np.testing.assert_array_equal(back.get(), np.zeros((3, 4)))
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float64, device="cuda").reshape(2, 3)
    for value in (t, t.T):
        dt = rt.adopt(value)
        assert int(dt.buffer) == value.data_ptr()
        np.testing.assert_array_equal(dt.get(), value.cpu().numpy())
        np.testing.assert_allclose(f(value)[1].get(), np.exp(value.cpu().numpy()).sum(axis=1))


def test_device_choice_and_binary_cache(gpu, tmp_path, monkeypatch):
    assert get_backend("cuda:0").runtime().index == 0
    with pytest.raises(ValueError, match="no CUDA device 'cuda:99'; devices: device cuda:0"):
        get_backend("cuda:99")
    monkeypatch.setenv("THEANINE_CACHE_DIR", str(tmp_path))
    x = T.vector("x")
    th.function([x], T.tanh(x) * 3, backend="cuda")
    entries = list((tmp_path / "cuda").glob("*.cubin"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    f = th.function([x], T.tanh(x) * 3, backend="cuda:0")
    assert entries[0].stat().st_mtime_ns == stamp
    np.testing.assert_allclose(f(np.ones(3)), np.tanh(1.0) * 3)


def test_bad_call_is_located_like_the_reference(gpu):
    x, y = T.vector("x"), T.vector("y")
    f = th.function([x, y], x + y, backend="cuda")
    with pytest.raises(ValueError) as info:
        f(np.ones(3), np.ones(4))
    assert "test_cuda.py" in str(info.value)


@pytest.mark.parametrize("name", ["elemwise[large]", "reduce[large]", "elemwise[5d]", "dot",
                                  "softmax", "sum", "max", "any", "exp", "int_div", "mod"])
def test_conformance_sample_on_cuda(gpu, name):
    for case in all_cases():
        if case.name == name:
            for dtype in case_dtypes(case):
                run_case("cuda", (case, dtype))


@pytest.mark.parametrize("seed", ["seed_001_xor_network.py",
                                  "seed_002_intro_linear_regression.py"])
def test_seed_programs_run_on_cuda(gpu, seed):
    from examples_runner import check_seed_on_device

    check_seed_on_device(seed, "cuda")
