"""The C backend's entries for convolution and pooling (conv.h, pool.h): im2col and BLAS gemm
per image across OpenMP threads for the three convolution ops, direct loops per plane for
pooling and its gradients. Float32/float64 run in C; other dtypes, and inputs whose shapes the
C declines (a mismatch the reference reports), call the NumPy implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from theanine.backends.cpu_c.library import FLOATS, c_impl
from theanine.graph.basic import Apply
from theanine.tensor.nnet.conv_fused import Conv2dBiasAct
from theanine.tensor.nnet.conv_ops import Conv2d, Conv2dGradInputs, Conv2dGradWeights
from theanine.tensor.signal.pool import (
    AveragePoolGrad,
    MaxPoolGrad,
    MaxPoolGradGrad,
    Pool,
    PoolGeometry,
)

if TYPE_CHECKING:
    from theanine.backends.cpu_c.program import Emitter

NPY = {"float32": "NPY_FLOAT32", "float64": "NPY_FLOAT64"}
ACTIVATIONS = {"identity": "TH_ACT_BIAS", "relu": "TH_ACT_RELU", "tanh": "TH_ACT_TANH",
               "sigmoid": "TH_ACT_SIGMOID"}
POOL_MODES = {"max": "TH_POOL_MAX", "sum": "TH_POOL_SUM", "average_inc_pad": "TH_POOL_AVG_INC",
              "average_exc_pad": "TH_POOL_AVG_EXC"}


def _c_or_numpy(em: Emitter, k: int, node: Apply, header: str, geometry: str, call: str) -> None:
    """The node's output from C call `call` (which sees the geometry struct `g`), or from the
    op's NumPy implementation when the call declines (NULL with no exception set)."""
    if node.outputs[0].dtype not in FLOATS:
        return em.host_call(k, node)
    em.include(header)
    fn = em.add_host(node.op.py_fn(node))
    s = em.new_slot(node.outputs[0])
    args = ", ".join(f"(PyObject *){em.ref(v)}" for v in node.inputs)
    em.lines += [
        f"    {{ /* step {k} */ static const {geometry};",
        f"    v[{s}] = {call};",
        f"    if (!v[{s}] && !PyErr_Occurred()) v[{s}] = PyObject_CallFunctionObjArgs("
        f"PyTuple_GET_ITEM(fns, {fn}), {args}, NULL);",
        f"    if (!v[{s}]) goto fail; }}"]


def _conv_geometry(node: Apply) -> str:
    g = node.op.geometry
    border, pads = {"full": 1, "half": 2}.get(g.border, 0), (0, 0, 0, 0)
    if not isinstance(g.border, str):
        (pt, pb), (pl, pr) = g.border
        pads = (pt, pb, pl, pr)
    values = (border, *pads, *g.subsample, *g.dilation, g.groups, int(g.flip))
    return f"th_conv_geom g = {{{', '.join(map(str, values))}}}"


def _scalar(em: Emitter, v) -> str:
    return f"PyArray_PyIntAsIntp((PyObject *){em.ref(v)})"


@c_impl.register(Conv2d)
def conv2d(em: Emitter, k: int, node: Apply) -> None:
    """im2col and BLAS gemm per image across OpenMP threads (float32/64), else NumPy"""
    x, w = (em.ref(v) for v in node.inputs)
    _c_or_numpy(em, k, node, "conv.h", _conv_geometry(node),
                f"th_conv2d({x}, {w}, NULL, TH_ACT_NONE, {NPY.get(node.outputs[0].dtype)}, &g)")


@c_impl.register(Conv2dBiasAct)
def conv2d_bias_act(em: Emitter, k: int, node: Apply) -> None:
    """conv2d's C, with the bias and activation applied to each image's output block after
    its gemm (float32/64), else NumPy"""
    x, w, b = (em.ref(v) for v in node.inputs)
    act = ACTIVATIONS[node.op.activation]
    _c_or_numpy(em, k, node, "conv.h", _conv_geometry(node),
                f"th_conv2d({x}, {w}, {b}, {act}, {NPY.get(node.outputs[0].dtype)}, &g)")


@c_impl.register(Conv2dGradInputs)
def conv2d_grad_inputs(em: Emitter, k: int, node: Apply) -> None:
    """BLAS gemm and col2im per image across OpenMP threads (float32/64), else NumPy"""
    w, top, rows, cols = node.inputs
    _c_or_numpy(em, k, node, "conv.h", _conv_geometry(node),
                f"th_conv2d_grad_inputs({em.ref(w)}, {em.ref(top)}, {_scalar(em, rows)}, "
                f"{_scalar(em, cols)}, {NPY.get(node.outputs[0].dtype)}, &g)")


@c_impl.register(Conv2dGradWeights)
def conv2d_grad_weights(em: Emitter, k: int, node: Apply) -> None:
    """im2col and BLAS gemm per image into per-thread sums (float32/64), else NumPy"""
    x, top, kh, kw = node.inputs
    _c_or_numpy(em, k, node, "conv.h", _conv_geometry(node),
                f"th_conv2d_grad_weights({em.ref(x)}, {em.ref(top)}, {_scalar(em, kh)}, "
                f"{_scalar(em, kw)}, {NPY.get(node.outputs[0].dtype)}, &g)")


def _pool_geometry(g: PoolGeometry) -> str:
    values = (*g.ws, *g.stride, *g.pad, POOL_MODES[g.mode], int(g.ignore_border))
    return f"th_pool_geom g = {{{', '.join(map(str, values))}}}"


@c_impl.register(Pool)
def pool(em: Emitter, k: int, node: Apply) -> None:
    """direct loops over each plane's windows across OpenMP threads (float32/64), else NumPy"""
    _c_or_numpy(em, k, node, "pool.h", _pool_geometry(node.op.geometry),
                f"th_pool({em.ref(node.inputs[0])}, &g)")


@c_impl.register(MaxPoolGrad)
def max_pool_grad(em: Emitter, k: int, node: Apply) -> None:
    """gz added at each window's maxima, planes across OpenMP threads (float32/64), else
    NumPy"""
    x, z, gz = (em.ref(v) for v in node.inputs)
    _c_or_numpy(em, k, node, "pool.h", _pool_geometry(node.op.geometry),
                f"th_pool_grad({x}, {z}, {gz}, &g, 0)")


@c_impl.register(AveragePoolGrad)
def average_pool_grad(em: Emitter, k: int, node: Apply) -> None:
    """gz / divisor spread over each window, planes across OpenMP threads (float32/64), else
    NumPy"""
    x, gz = (em.ref(v) for v in node.inputs)
    _c_or_numpy(em, k, node, "pool.h", _pool_geometry(node.op.geometry),
                f"th_pool_grad({x}, NULL, {gz}, &g, 0)")


@c_impl.register(MaxPoolGradGrad)
def max_pool_grad_grad(em: Emitter, k: int, node: Apply) -> None:
    """each window's sum of gg over its maxima, planes across OpenMP threads (float32/64),
    else NumPy"""
    x, z, gg = (em.ref(v) for v in node.inputs)
    _c_or_numpy(em, k, node, "pool.h", _pool_geometry(node.op.geometry),
                f"th_pool_grad({x}, {z}, {gg}, &g, 1)")
