"""The GPU backends' convolution and pooling kernels (gpu/conv.py) on OpenCL: both kernel
flavours (for CPU devices, and for GPUs: the filters' gradient by work-group reductions, run
here on PoCL) against the NumPy reference in every geometry; strided, reversed and broadcast
inputs read in place; pooled arrays of 2 to 5 dims; ties and NaN; the reference's errors for
shapes that do not fit; plans (device for float32/64, host for float16)."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine.backend import backends
from theanine.backends.opencl.backend import OpenCLBackend
from theanine.codegen.gpu import GpuRenderer
from theanine.gpu.plans import PlanKind
from theanine.gpu.program import GpuProgram
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.nnet.conv_fused import Conv2dBiasAct
from theanine.tensor.nnet.conv_ops import (
    Conv2d,
    Conv2dGradInputs,
    Conv2dGradWeights,
    ConvGeometry,
    conv2d_forward,
    conv2d_grad_inputs,
    conv2d_grad_weights,
)
from theanine.tensor.signal import pool as P

CONV_GEOMETRIES = [
    dict(),
    dict(border_mode="full", subsample=(2, 3), filter_flip=False),
    dict(border_mode="half", subsample=(1, 2), filter_dilation=(2, 1)),
    dict(border_mode=((1, 2), (0, 1)), subsample=(2, 1), num_groups=2),
    dict(border_mode=(1, 2), filter_dilation=(1, 2), num_groups=4),
]
POOLS = [
    dict(ws=(2, 2), ignore_border=True),
    dict(ws=(3, 2), ignore_border=False, stride=(1, 2)),
    dict(ws=(2, 3), ignore_border=True, stride=(2, 1), pad=(1, 2)),
    dict(ws=(3, 3), ignore_border=True, stride=(1, 2), pad=(1, 1), mode="sum"),
    dict(ws=(2, 3), ignore_border=True, pad=(1, 1), mode="average_inc_pad"),
    dict(ws=(2, 2), ignore_border=True, stride=(1, 1), pad=(1, 0), mode="average_exc_pad"),
    dict(ws=(3, 3), ignore_border=False, stride=(2, 2), mode="average_exc_pad"),
]


@pytest.fixture(scope="module", params=["cpu", "gpu"])
def device(request):
    """(backend, runtime) of OpenCL with the kernels for CPU devices or those for GPUs."""
    ok, why = backends()["opencl"].available()
    if not ok:
        pytest.skip(f"OpenCL backend unavailable: {why}")
    backend = OpenCLBackend()
    rt = backend.runtime()
    rt.renderer = GpuRenderer(rt.renderer.d, rt.workgroup, cpu=request.param == "cpu")
    return backend, rt


def _run(device, inputs, outputs, *values) -> list[np.ndarray]:
    backend, rt = device
    program = GpuProgram(FunctionGraph(inputs, outputs), rt, backend)
    kinds = {type(s.node.op).__name__: p.kind for s, p in zip(program.steps, program.plans)
             if hasattr(s, "node")}
    assert all(kinds[type(o.owner.op).__name__] is PlanKind.DEVICE for o in outputs), kinds
    return [o.get() if hasattr(o, "get") else o for o in program.run(*values)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", CONV_GEOMETRIES)
def test_convolutions_match_the_reference(device, dtype, kw, rng):
    g = ConvGeometry.build(**kw)
    xt, wr, top2 = (T.tensor4(n, dtype=dtype) for n in ("xt", "wr", "top2"))
    # device views: transposed, reversed and every other channel
    x, w, top = xt.dimshuffle(0, 1, 3, 2), wr[:, :, ::-1, ::-1], top2[:, ::2]
    xv = rng.standard_normal((2, 4, 7, 8)).astype(dtype)
    wv = rng.standard_normal((4, 4 // g.groups, 3, 2)).astype(dtype)
    fwd = conv2d_forward(xv, wv, g, dtype)
    tv = rng.standard_normal(fwd.shape).astype(dtype)
    outs = [Conv2d(g)(x, w), Conv2dGradInputs(g)(w, top, 7, 8),
            Conv2dGradWeights(g)(x, top, 3, 2)]
    got = _run(device, [xt, wr, top2], outs, xv.transpose(0, 1, 3, 2).copy(),
               wv[:, :, ::-1, ::-1].copy(), np.repeat(tv, 2, axis=1))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[0], fwd, **tol)
    np.testing.assert_allclose(got[1], conv2d_grad_inputs(wv, tv, 7, 8, g, dtype), **tol)
    np.testing.assert_allclose(got[2], conv2d_grad_weights(xv, tv, 3, 2, g, dtype), **tol)


def test_mixed_dtypes_and_broadcast_filters(device, rng):
    g = ConvGeometry.build(border_mode="half")
    x, w = T.tensor4("x", dtype="int32"), T.tensor4("w", dtype="float32")
    b = T.vector("b", dtype="float32")
    xv = rng.integers(-3, 4, (1, 2, 5, 5)).astype("int32")
    wv = np.broadcast_to(np.float32(0.5), (3, 2, 3, 3))  # stride 0 on the device
    bv = np.array([-100.0, 0.0, 100.0], dtype="float32")
    outs = [Conv2d(g)(x, w)] + [Conv2dBiasAct(g, act)(x, w, b)
                                for act in ("identity", "relu", "tanh", "sigmoid")]
    got = _run(device, [x, w, b], outs, xv, wv, bv)
    ref = conv2d_forward(xv, wv, g, "float64")
    biased = ref + bv[None, :, None, None]
    for out, want in zip(got, [ref, biased, np.maximum(biased, 0), np.tanh(biased),
                               1 / (1 + np.exp(-biased))]):
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", POOLS)
def test_pooling_and_its_gradients_match_the_reference_exactly(device, dtype, kw, rng):
    g = P.pool_geometry(kw["ws"], kw["ignore_border"], kw.get("stride"), kw.get("pad"),
                        kw.get("mode", "max"))
    xp, g2 = T.tensor4("xp", dtype=dtype), T.tensor4("g2", dtype=dtype)
    x = xp.dimshuffle(1, 0, 2, 3)  # device views: leading axes swapped, reversed columns
    gz = g2[:, :, :, ::-2]
    xv = rng.integers(-2, 3, (2, 3, 7, 8)).astype(dtype)  # ties
    xv[0, 0, 1, 1] = np.nan
    z = P.pool_forward(xv, g)
    gzv = rng.standard_normal(z.shape).astype(dtype)
    outs = [P.Pool(g)(x)]
    if g.mode == "max":
        want = [z, P.max_pool_grad(xv, z, gzv, g),
                P.MaxPoolGradGrad(g).py_fn(None)(xv, z, xv * 2)]
        outs += [P.MaxPoolGrad(g)(x, outs[0], gz), P.MaxPoolGradGrad(g)(x, outs[0], x * 2)]
    else:
        want = [z, P.average_pool_grad(xv, gzv, g)]
        outs.append(P.AveragePoolGrad(g)(x, gz))
    got = _run(device, [xp, g2], outs, xv.transpose(1, 0, 2, 3).copy(),
               np.repeat(gzv[..., ::-1], 2, axis=-1))
    for out, ref in zip(got, want):
        np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("shape", [(6, 7), (3, 6, 7), (2, 2, 3, 6, 7)])
def test_pooling_any_leading_axes_and_ints(device, shape, rng):
    g = P.pool_geometry((2, 3), True, (2, 1), (1, 1), "max")
    gs = P.pool_geometry((2, 2), False, None, None, "sum")
    nd = len(shape)
    xin = T.tensor(dtype="int32", shape=(None,) * nd)
    # a device view with its last axes swapped; 5-d: leading axes no stride merges (copied)
    lead = [2, 1, 0] if nd == 5 else list(range(nd - 2))
    x = xin.dimshuffle(*lead, nd - 1, nd - 2)
    xv = rng.integers(-5, 5, shape).astype("int32")
    z = P.Pool(g)(x)
    got = _run(device, [xin], [z, P.Pool(gs)(x), P.MaxPoolGrad(g)(x, z, z)],
               xv.transpose(*lead, nd - 1, nd - 2).copy())
    zv = P.pool_forward(xv, g)
    for out, ref in zip(got, [zv, P.pool_forward(xv, gs), P.max_pool_grad(xv, zv, zv, g)]):
        np.testing.assert_array_equal(out, ref)


def test_shapes_that_do_not_fit_raise_the_references_errors(device, rng):
    g = ConvGeometry.build(subsample=(2, 2))
    x, w, top = (T.tensor4(n) for n in ("x", "w", "top"))
    f32 = np.float32
    with pytest.raises(ValueError, match="the input has 3 channels and the filters"):
        _run(device, [x, w], [Conv2d(g)(x, w)], np.ones((1, 3, 5, 5), f32),
             np.ones((2, 2, 3, 3), f32))
    with pytest.raises(ValueError, match="is larger than the padded input"):
        _run(device, [x, w], [Conv2d(g)(x, w)], np.ones((1, 2, 2, 5), f32),
             np.ones((2, 2, 3, 3), f32))
    with pytest.raises(ValueError, match="the output gradient has shape"):
        _run(device, [w, top], [Conv2dGradInputs(g)(w, top, 5, 5)],
             np.ones((2, 2, 3, 3), f32), np.ones((1, 2, 3, 3), f32))
    gp = P.pool_geometry((2, 2), True, None, None, "max")
    z = P.Pool(gp)(x)
    with pytest.raises(ValueError, match="but a pooled value has shape"):
        _run(device, [x, top], [P.MaxPoolGrad(gp)(x, z, top)], np.ones((1, 2, 4, 4), f32),
             np.ones((1, 2, 3, 2), f32))


def test_dtypes_without_a_kernel_take_the_host_plan(device):
    backend, rt = device
    g = ConvGeometry.build()
    x = T.tensor4("x", dtype="float16")
    y = T.tensor4("y", dtype="float32")
    program = GpuProgram(FunctionGraph([x, y], [Conv2d(g)(x, x), P.pool_2d(
        x, ws=(2, 2), ignore_border=True), Conv2d(g)(y, y)]), rt, backend)
    plans = [(type(s.node.op).__name__, s.node.outputs[0].dtype, p)
             for s, p in zip(program.steps, program.plans)]
    assert [(op, dt) for op, dt, p in plans if p.kind is PlanKind.HOST] == [
        ("Conv2d", "float16"), ("Pool", "float16")]
    assert [p.kind for op, dt, p in plans if dt == "float32"] == [PlanKind.DEVICE]
