"""The GPU op tables: one shared table and one per GPU backend over it, covering every library
op; the plans their entries make (kinds, placements, the host plan for dtypes a kernel lacks);
a plugin changing one backend; an op without an entry failing by name; JacobianMap compiled for
the same backend; pyopencl arrays recognised by the OpenCL backend, not by module name."""

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.backends.cuda.backend import CUDABackend
from theanine.backends.opencl.backend import OpenCLBackend
from theanine.gpu.backend import GpuBackend
from theanine.gpu.library import HOST_PLAN, gpu_impl
from theanine.gpu.plans import Place, Plan, PlanKind, places
from theanine.gpu.program import GpuProgram
from theanine.graph.basic import Apply, Op
from theanine.graph.fgraph import FunctionGraph
from theanine.op_table import MissingImplementation, OpTable
from theanine.plugins import hookimpl
from theanine.testing.meta import library_op_classes

GPU_TABLES = {"opencl": OpenCLBackend.impls, "cuda": CUDABackend.impls}


class Triple(Op):
    """A user's op: only perform (its definition)."""

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        return (inputs[0] * 3,)


@pytest.fixture
def ocl():
    ok, why = backends()["opencl"].available()
    if not ok:
        pytest.skip(f"OpenCL backend unavailable: {why}")
    return backends()["opencl"]


def _program(backend, inputs, outputs) -> GpuProgram:
    return GpuProgram(FunctionGraph(inputs, outputs), backend.runtime(), backend)


def _node_plans(program: GpuProgram) -> dict[str, Plan]:
    return {type(s.node.op).__name__: p for s, p in zip(program.steps, program.plans)
            if p.kind in (PlanKind.DEVICE, PlanKind.HOST)}


# -- the tables (no device needed) --------------------------------------------------------------
@pytest.mark.parametrize("backend", sorted(GPU_TABLES))
def test_every_library_op_has_a_gpu_entry_more_specific_than_op(backend):
    table = GPU_TABLES[backend]
    assert table.backend == backend and table.fallback is gpu_impl
    generic = [name for name, cls in library_op_classes().items()
               if table[cls].op_class is Op]
    assert generic == []
    assert backends()[backend].impls is table


def test_a_users_op_runs_its_perform_on_the_host_in_both_gpu_tables():
    for table in GPU_TABLES.values():
        entry = table[Triple]
        assert entry.op_class is Op
        assert entry.how == "its perform on the host (a user's op: perform is its definition)"


def test_a_table_without_an_op_entry_fails_naming_the_op_and_backend(ocl):
    class BareGpu(GpuBackend):
        name = "bare-gpu"
        impls = OpTable("bare-gpu")

        def runtime(self):
            return ocl.runtime()

    x, y = T.matrix("x"), T.matrix("y")
    with pytest.raises(MissingImplementation,
                       match=r"backend 'bare-gpu' has no implementation of op Dot"):
        _program(BareGpu(), [x, y], [T.dot(x, y)])


def test_placement_codes_are_an_enum():
    assert places("dh") == (Place.DEVICE, Place.HOST)
    assert Plan(PlanKind.DEVICE, reads=places("dh")).read_from(4) == \
        (Place.DEVICE, Place.HOST, Place.HOST, Place.HOST)
    with pytest.raises(ValueError, match="'x' is not a valid Place"):
        places("dx")


# -- plans ---------------------------------------------------------------------------------------
def test_plans_say_how_each_step_runs(ocl):
    x = T.matrix("x", dtype="float32")
    w = T.matrix("w", dtype="float32")
    y = T.nnet.softmax(T.dot(x, w)) + 1
    program = _program(ocl, [x, w], [y, T.concatenate([x, w]), x.shape[0] * 2])
    plans = _node_plans(program)
    assert plans["Dot"].kind is PlanKind.DEVICE and plans["Dot"].reads == places("dd")
    assert plans["Softmax"].kind is PlanKind.DEVICE
    assert plans["Join"] == HOST_PLAN
    assert plans["ShapeI"].host_values
    kinds = {p.kind for p in program.plans}
    assert PlanKind.KERNEL in kinds and PlanKind.HOST_NODES in kinds  # x + 1; shape[0] * 2
    xv = np.arange(6, dtype="float32").reshape(2, 3)
    wv = np.ones((3, 3), dtype="float32")
    out, joined, n = program.run(xv, wv)
    e = np.exp(xv @ wv - (xv @ wv).max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.get(), e / e.sum(axis=1, keepdims=True) + 1, rtol=1e-6)
    np.testing.assert_array_equal(joined, np.concatenate([xv, wv]))
    assert n == 4


def test_dtypes_without_a_kernel_take_the_host_plan(ocl):
    x = T.matrix("x", dtype="float16")
    i = T.matrix("i", dtype="int32")
    program = _program(ocl, [x, i], [T.nnet.softmax(x), T.dot(i, i), T.dot(i > 0, i > 0)])
    kinds = [(type(s.node.op).__name__, s.node.outputs[0].dtype, p.kind)
             for s, p in zip(program.steps, program.plans) if p.kind is not PlanKind.KERNEL]
    assert [k for k in kinds if k[0] in ("Softmax", "Dot")] == [
        ("Softmax", "float16", PlanKind.HOST), ("Dot", "int32", PlanKind.DEVICE),
        ("Dot", "bool", PlanKind.HOST)]
    xv = np.array([[0, 1], [2, 4]], dtype="float16")
    iv = np.array([[1, 2], [0, -3]], dtype="int32")
    sm, prod, bprod = program.run(xv, iv)
    e = np.exp(xv - xv.max(axis=1, keepdims=True))
    np.testing.assert_allclose(sm, e / e.sum(axis=1, keepdims=True), rtol=1e-3)
    np.testing.assert_array_equal(prod.get(), iv @ iv)
    np.testing.assert_array_equal(bprod, np.dot(iv > 0, iv > 0))


# -- a plugin's entry changes one backend --------------------------------------------------------
class _TriplePlugin:
    def __init__(self):
        self.planned: list = []

    @hookimpl
    def theanine_register_impls(self, register):
        def plan(program, node, source):
            """Triple on the device (a test plugin's entry)."""
            self.planned.append(program.backend.name)
            return Plan(PlanKind.DEVICE, run=lambda rt, node, prepared, x: (rt.to_device(
                x.get() * 3),), reads=places("d"))

        register("opencl", Triple, plan)


@pytest.fixture
def triple_plugin(monkeypatch):
    from theanine.plugins.manager import get_plugin_state, reset_collected

    state = get_plugin_state()
    monkeypatch.setattr(state, "failed", dict(state.failed))
    plugin = _TriplePlugin()
    state.pm.register(plugin, name="test-triple-plugin")
    reset_collected()
    yield plugin
    state.pm.unregister(plugin)
    reset_collected()


def test_a_plugin_entry_serves_only_the_backend_it_names(ocl, triple_plugin):
    assert OpenCLBackend.impls[Triple].how == "Triple on the device (a test plugin's entry)"
    assert OpenCLBackend.impls[Triple].plugin == "test-triple-plugin"
    assert CUDABackend.impls[Triple].op_class is Op  # the other GPU backend keeps perform
    x = T.vector("x")
    f = th.function([x], Triple()(x) + 1, backend="opencl")
    np.testing.assert_array_equal(f(np.arange(3.0)), [1, 4, 7])
    assert triple_plugin.planned == ["opencl"]
    program = _program(ocl, [x], [Triple()(x)])
    assert _node_plans(program)["Triple"].kind is PlanKind.DEVICE


# -- jacobian: a scan ------------------------------------------------------------------------------
def test_a_jacobian_runs_on_the_gpu_backend(ocl):
    x = T.vector("x")
    f = th.function([x], th.jacobian(T.sin(x) * x[0], x), backend="opencl")
    xv = np.array([0.5, -1.0, 2.0])
    expected = np.diag(np.cos(xv) * xv[0])
    expected[:, 0] += np.sin(xv)
    np.testing.assert_allclose(f(xv), expected, rtol=1e-12)


# -- device arrays the OpenCL backend owns -------------------------------------------------------
def test_the_opencl_backend_says_which_arrays_are_its_own(ocl):
    import pyopencl.array as cla

    rt = ocl.runtime()
    own = cla.to_device(rt.queue, np.ones(3))
    assert ocl.owns_array(own)
    lookalike = type("Array", (), {"__module__": "pyopencl.array"})()
    assert not ocl.owns_array(lookalike) and not ocl.owns_array(np.ones(3))
    assert not backends()["cuda"].owns_array(own)


def test_an_opencl_array_given_to_another_gpu_backend_is_refused(ocl):
    import pyopencl.array as cla

    from theanine.gpu.boundary import device_filter
    from theanine.gpu.runtime import Runtime

    class OtherDevice(Runtime):
        device_name = "another device"

    x = T.vector("x")
    filt = device_filter(OtherDevice(ocl.runtime().renderer), x.type, np.asarray, "input 0",
                         False)
    with pytest.raises(TypeError, match=r"input 0: got a Array in the memory of a device this "
                                        r"function does not run on \(it runs on another"):
        filt(cla.to_device(ocl.runtime().queue, np.ones(3)))
    np.testing.assert_array_equal(filt([1.0, 2.0]), [1.0, 2.0])
