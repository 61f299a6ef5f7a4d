"""The GPU backends' entries for convolution and pooling: the hand-written kernels of
codegen/conv_kernels.py, one per dtype combination, with the geometry passed as arguments.

Convolutions run on the device for float32/float64 outputs (inputs of any numeric dtype are
read with a cast), pooling for numeric inputs (max and sum of ints too), other dtypes on the
host. Inputs are read in place through their strides; outputs are new contiguous arrays.
Shapes are checked before any launch: inputs that do not fit go to the NumPy reference on
host copies, which raises its own error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from theanine.codegen import conv_kernels as ck
from theanine.gpu.array import DeviceArray
from theanine.gpu.library import FLOATS, HOST_PLAN, gpu_impl
from theanine.gpu.plans import Plan, PlanKind, ProgramKernels, places
from theanine.gpu.runtime import I64, simplify
from theanine.graph.basic import Apply
from theanine.tensor.nnet.conv_fused import Conv2dBiasAct
from theanine.tensor.nnet.conv_ops import (
    Conv2d,
    Conv2dGradInputs,
    Conv2dGradWeights,
    ConvGeometry,
)
from theanine.tensor.signal.pool import (
    AveragePoolGrad,
    MaxPoolGrad,
    MaxPoolGradGrad,
    Pool,
    PoolGeometry,
)


# -- shared --------------------------------------------------------------------------------------
def _numeric(dtype: str) -> bool:
    return np.dtype(dtype).kind in "iuf"


def _entry(render: Callable, run: Callable, reads: str,
           variant: Callable[[Apply], tuple | None]) -> Callable:
    """An entry running `run` with the kernel `render(renderer, name, *variant(node))` prints
    (variant: its dtypes, None when no kernel computes them), or the host plan when that is
    None or some dtype of the node is not the device's."""

    def entry(program, node: Apply, source: ProgramKernels) -> Plan:
        spec = variant(node)
        if spec is None or any(v.dtype not in program.rt.dtypes
                               for v in [*node.inputs, *node.outputs]):
            return HOST_PLAN
        name = source.hand_written(render, render.__name__, *spec)
        return Plan(PlanKind.DEVICE, name, run, places(reads))

    return entry


def _arrays(*arrays: DeviceArray) -> list:
    """Kernel arguments of read-only 4-d arrays: buffer, offset, strides."""
    return [x for a in arrays for x in (a.buffer, I64(a.offset), *(I64(s) for s in a.strides))]


def _output(out: DeviceArray) -> list:
    return [out.buffer, I64(out.offset)]


def _by_reference(rt, node: Apply, *inputs) -> tuple[DeviceArray]:
    """The NumPy reference on host copies of the inputs: it raises its error for shapes the
    kernels do not take."""
    host = [a.get() if isinstance(a, DeviceArray) else a for a in inputs]
    return (rt.to_device(node.op.perform(node, host)[0]),)


# -- convolution ---------------------------------------------------------------------------------
def _conv_dtypes(node: Apply) -> tuple | None:
    out = node.outputs[0].dtype
    return (out, node.inputs[0].dtype, node.inputs[1].dtype) if out in FLOATS else None


def _bias_act_variant(node: Apply) -> tuple | None:
    """conv2d's kernel dtypes, the bias's and the activation (Conv2dBiasAct)."""
    conv = _conv_dtypes(node)
    return None if conv is None else (*conv, node.inputs[2].dtype, node.op.activation)


def _conv_out(g: ConvGeometry, xshape: tuple, wshape: tuple) -> tuple[int, int] | None:
    """(oh, ow) when filters of wshape fit images of xshape in g's groups and the output has
    pixels; else None."""
    c, (f, cg) = xshape[1], wshape[:2]
    if f % g.groups or cg * g.groups != c:
        return None
    oh, ow = (int(g.out_len(a, xshape[2 + a], wshape[2 + a])) for a in (0, 1))
    return (oh, ow) if oh >= 1 and ow >= 1 else None


def _conv_geometry(g: ConvGeometry, xshape: tuple, wshape: tuple, oh: int, ow: int) -> list:
    (pad_y, _), (pad_x, _) = g.pads(wshape[2], wshape[3])
    values = (*xshape, wshape[0], wshape[1], wshape[0] // g.groups, *wshape[2:], oh, ow,
              pad_y, pad_x, *g.subsample, *g.dilation, int(g.flip))
    return [I64(int(v)) for v in values]


def _conv2d(rt, node: Apply, kernel, x: DeviceArray, w: DeviceArray) -> tuple:
    g = node.op.geometry
    out_len = _conv_out(g, x.shape, w.shape)
    if out_len is None:
        return _by_reference(rt, node, x, w)
    out = rt.empty((x.shape[0], w.shape[0], *out_len), node.outputs[0].dtype)
    rt.launch_items(kernel, out.size, _conv_geometry(g, x.shape, w.shape, *out_len) +
                    _arrays(x, w) + _output(out))
    return (out,)


def _conv2d_bias_act(rt, node: Apply, kernel, x: DeviceArray, w: DeviceArray,
                     b: DeviceArray) -> tuple:
    g = node.op.geometry
    out_len = _conv_out(g, x.shape, w.shape)
    if out_len is None or b.shape != (w.shape[0],):
        return _by_reference(rt, node, x, w, b)
    out = rt.empty((x.shape[0], w.shape[0], *out_len), node.outputs[0].dtype)
    rt.launch_items(kernel, out.size, _conv_geometry(g, x.shape, w.shape, *out_len) +
                    _arrays(x, w) + [b.buffer, I64(b.offset), I64(b.strides[0])] +
                    _output(out))
    return (out,)


def _conv2d_grad_inputs(rt, node: Apply, kernel, w: DeviceArray, top: DeviceArray, rows,
                        cols) -> tuple:
    g = node.op.geometry
    xshape = (top.shape[0], w.shape[1] * g.groups, int(rows), int(cols))
    out_len = _conv_out(g, xshape, w.shape) if min(xshape[2:]) >= 0 else None
    if out_len is None or top.shape != (xshape[0], w.shape[0], *out_len):
        return _by_reference(rt, node, w, top, rows, cols)
    out = rt.empty(xshape, node.outputs[0].dtype)
    rt.launch_items(kernel, out.size, _conv_geometry(g, xshape, w.shape, *out_len) +
                    _arrays(w, top) + _output(out))
    return (out,)


def _conv2d_grad_weights(rt, node: Apply, kernel, x: DeviceArray, top: DeviceArray, kh,
                         kw) -> tuple:
    g = node.op.geometry
    wshape = (top.shape[1], x.shape[1] // g.groups, int(kh), int(kw))
    fits = x.shape[1] % g.groups == 0 and min(wshape[2:]) >= 0
    out_len = _conv_out(g, x.shape, wshape) if fits else None
    if out_len is None or top.shape != (x.shape[0], wshape[0], *out_len):
        return _by_reference(rt, node, x, top, kh, kw)
    out = rt.empty(wshape, node.outputs[0].dtype)
    args = _conv_geometry(g, x.shape, wshape, *out_len) + _arrays(x, top) + _output(out)
    n = out.size
    if rt.renderer.cpu:
        rt.launch_items(kernel, n, args)
    elif n:  # one work-group per weight element
        wg = rt.renderer.workgroup
        rt.launch(kernel, (min(n, rt.max_groups) * wg,), (wg,), args)
    return (out,)


gpu_impl.add(Conv2d, _entry(ck.conv2d_forward, _conv2d, "dd", _conv_dtypes),
             how="direct kernel, a work-item per output element (float32/64 outputs); other "
                 "dtypes on the host")
gpu_impl.add(Conv2dBiasAct,
             _entry(ck.conv2d_forward, _conv2d_bias_act, "ddd", _bias_act_variant),
             how="conv2d's direct kernel adding the bias and applying the activation before "
                 "its store (float32/64 outputs); other dtypes on the host")
gpu_impl.add(Conv2dGradInputs,
             _entry(ck.conv2d_grad_inputs, _conv2d_grad_inputs, "ddh", _conv_dtypes),
             how="direct kernel, a work-item per input element gathering the taps that reach "
                 "it (float32/64 outputs); other dtypes on the host")
gpu_impl.add(Conv2dGradWeights,
             _entry(ck.conv2d_grad_weights, _conv2d_grad_weights, "ddh", _conv_dtypes),
             how="a work-group per weight element with an in-group reduction (a work-item on "
                 "CPU devices; float32/64 outputs); other dtypes on the host")


# -- pooling -------------------------------------------------------------------------------------
def _pooled(g: PoolGeometry, shape: tuple) -> tuple:
    """The pooled shape of an input of `shape`."""
    return tuple(shape[:-2]) + tuple(int(g.out_len(a, shape[-2 + a])) for a in (0, 1))


def _planes(rt, arrays: list[DeviceArray]) -> list[DeviceArray]:
    """4-d views (P0, P1, rows, cols) of arrays sharing their leading axes, merged where every
    array's strides allow (arrays that need more than two leading axes are copied first)."""
    lead = arrays[0].shape[:-2]
    dims, strides = simplify(lead, [list(a.strides[:-2]) for a in arrays])
    dims, strides = [1, 1] + dims, [[0, 0] + s for s in strides]
    if any(n != 1 for n in dims[:-2]):
        return _planes(rt, [a if a.is_contiguous() else rt.copy(a) for a in arrays])
    return [a.view((*dims[-2:], *a.shape[-2:]), (*s[-2:], *a.strides[-2:]))
            for a, s in zip(arrays, strides)]


def _pool_geometry(g: PoolGeometry, planes: tuple, rows: int, cols: int, pooled: tuple) -> list:
    values = (*planes, rows, cols, *pooled, *g.ws, *g.stride, *g.pad, ck.POOL_MODES[g.mode])
    return [I64(v) for v in values]


def _pool(rt, node: Apply, kernel, x: DeviceArray) -> tuple:
    g = node.op.geometry
    out = rt.empty(_pooled(g, x.shape), x.dtype)
    if out.size:
        (xv,) = _planes(rt, [x])
        rt.launch_items(kernel, out.size, _pool_geometry(g, xv.shape[:2], *x.shape[-2:],
                                                         out.shape[-2:]) +
                        _arrays(xv) + _output(out))
    return (out,)


def _max_pool_grad(rt, node: Apply, kernel, x: DeviceArray, z: DeviceArray,
                   gz: DeviceArray) -> tuple:
    g = node.op.geometry
    pooled = _pooled(g, x.shape)
    if z.shape != pooled or gz.shape != pooled:
        return _by_reference(rt, node, x, z, gz)
    out = rt.empty(x.shape, gz.dtype)
    if out.size:
        views = _planes(rt, [x, z, gz])
        rt.launch_items(kernel, out.size, _pool_geometry(g, views[0].shape[:2], *x.shape[-2:],
                                                         pooled[-2:]) +
                        _arrays(*views) + _output(out))
    return (out,)


def _average_pool_grad(rt, node: Apply, kernel, x: DeviceArray, gz: DeviceArray) -> tuple:
    g = node.op.geometry
    pooled = _pooled(g, x.shape)
    if gz.shape != pooled:
        return _by_reference(rt, node, x, gz)
    out = rt.empty(x.shape, gz.dtype)
    if out.size:
        (gv,) = _planes(rt, [gz])
        rt.launch_items(kernel, out.size, _pool_geometry(g, gv.shape[:2], *x.shape[-2:],
                                                         pooled[-2:]) +
                        _arrays(gv) + _output(out))
    return (out,)


def _max_pool_grad_grad(rt, node: Apply, kernel, x: DeviceArray, z: DeviceArray,
                        gg: DeviceArray) -> tuple:
    g = node.op.geometry
    pooled = _pooled(g, x.shape)
    if z.shape != pooled or gg.shape != x.shape:
        return _by_reference(rt, node, x, z, gg)
    out = rt.empty(pooled, gg.dtype)
    if out.size:
        views = _planes(rt, [x, z, gg])
        rt.launch_items(kernel, out.size, _pool_geometry(g, views[0].shape[:2], *x.shape[-2:],
                                                         pooled[-2:]) +
                        _arrays(*views) + _output(out))
    return (out,)


def _pool_dtypes(node: Apply) -> tuple | None:
    return (node.inputs[0].dtype,)


def _max_grad_dtypes(node: Apply) -> tuple | None:
    """(x's, the gradient's): x and the pooled z must share a dtype (the comparisons')."""
    x, z, grad = (v.dtype for v in node.inputs)
    return (x, grad) if x == z and _numeric(grad) else None


def _average_grad_dtypes(node: Apply) -> tuple | None:
    grad = node.inputs[1].dtype
    return (grad,) if grad in FLOATS else None


gpu_impl.add(Pool, _entry(ck.pool_forward, _pool, "d", _pool_dtypes),
             how="direct kernel, a work-item per pooled element; other dtypes on the host")
gpu_impl.add(MaxPoolGrad, _entry(ck.max_pool_grad, _max_pool_grad, "d", _max_grad_dtypes),
             how="direct kernel, a work-item per input element over the windows holding it; "
                 "other dtypes on the host")
gpu_impl.add(AveragePoolGrad,
             _entry(ck.average_pool_grad, _average_pool_grad, "d", _average_grad_dtypes),
             how="direct kernel, a work-item per input element over the windows holding it "
                 "(float32/64); other dtypes on the host")
gpu_impl.add(MaxPoolGradGrad,
             _entry(ck.max_pool_grad_grad, _max_pool_grad_grad, "d", _max_grad_dtypes),
             how="direct kernel, a work-item per pooled element; other dtypes on the host")
