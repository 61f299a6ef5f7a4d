"""The C backend's op table: how each op class runs in a compiled program.

Fusable elementwise and reduction nodes become generated kernels (program.py); every other
node is rendered by its class's entry here, found along the class's MRO. An entry is called as
`fn(emitter, k, node)` for step `k` and appends C lines to the program (emitter.lines) that
give each of the node's outputs a slot holding a new reference (emitter.new_slot) and `goto
fail` on an error: a few ops are C calls (views, shapes, BLAS gemm, softmax), the rest call
their NumPy implementation from C (emitter.host_call). Each entry's docstring is the one line
`theanine info --coverage` shows. An op with no entry fails compilation by name; a user's op
(an `Op` subclass with only `perform`) runs that perform, its definition, on the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from theanine.distributed.ops import AllReduce
from theanine.gradient import StopGradient
from theanine.graph.basic import Apply, Op
from theanine.ifelse import IfElse
from theanine.op_table import OpTable
from theanine.tensor.allocation import ARange
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import DimShuffle, Elemwise, SumToShapeOf
from theanine.tensor.join import Join, Split
from theanine.tensor.linalg import Dot, MatMul, TensorDot
from theanine.tensor.nnet import CrossentropyCategorical1Hot, LogSoftmax, OneHot, Softmax
from theanine.tensor.random import FlatIndex
from theanine.tensor.random_ops import CheckParam, Choice, Multinomial, Permutation
from theanine.tensor.reduction import ArgReduce, Reduce
from theanine.tensor.shape_ops import ShapeI
from theanine.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedSubtensor,
)

if TYPE_CHECKING:
    from theanine.backends.cpu_c.program import Emitter

c_impl = OpTable("c")
FLOATS = ("float32", "float64")


def host_call(em: Emitter, k: int, node: Apply) -> None:
    """the op's NumPy implementation (its `py_fn`), called from the compiled program"""
    em.host_call(k, node)


c_impl.register(Op, how="its perform on the host (a user's op: perform is its "
                "definition)")(host_call)
c_impl.register(TensorDot, MatMul, ArgReduce, ARange, Join, Split, AdvancedSubtensor, IfElse,
                AdvancedIncSubtensor, OneHot, CrossentropyCategorical1Hot, StopGradient,
                FlatIndex, Permutation, Multinomial, Choice, CheckParam,
                how="its NumPy implementation, called from the compiled program")(host_call)
c_impl.register(AllReduce, how="MPI's all-reduce (mpi4py, fused buckets) on the program's "
                "arrays, called from the compiled program")(host_call)
# (the nodes the C renderer supports were fused into kernel steps before the table is read)
c_impl.register(Elemwise, Reduce, how="a generated C kernel; a NumPy call for dtypes or scalar "
                "ops the C renderer lacks")(host_call)


@c_impl.register(DimShuffle)
def dimshuffle_view(em: Emitter, k: int, node: Apply) -> None:
    """a view built in C (transpose, new and dropped axes)"""
    op = node.op
    order = [-1 if d == "x" else d for d in op.new_order]
    x = em.ref(node.inputs[0])
    s = em.new_slot(node.outputs[0])
    drop = list(op.drop) or [0]
    em.lines.append(
        f"    {{ static const int order[] = {{{', '.join(map(str, order)) or '0'}}}; "
        f"static const int drop[] = {{{', '.join(map(str, drop))}}}; "
        f"v[{s}] = th_dimshuffle({k}, {x}, {len(order)}, order, {len(op.drop)}, drop); "
        f"if (!v[{s}]) goto fail; }}")


@c_impl.register(ShapeI)
def shape_i(em: Emitter, k: int, node: Apply) -> None:
    """the axis length, read in C"""
    em.c_call(node, f"th_shape_i({em.ref(node.inputs[0])}, {node.op.i})")


@c_impl.register(Softmax, LogSoftmax)
def softmax_lines(em: Emitter, k: int, node: Apply) -> None:
    """a C loop per line (float32/64, exp vectorized), else NumPy"""
    if node.inputs[0].dtype not in FLOATS:
        return em.host_call(k, node)
    em.include("softmax.h")
    log = int(isinstance(node.op, LogSoftmax))
    em.c_call(node, f"th_softmax({em.ref(node.inputs[0])}, {node.op.axis}, {log})")


def _c_unless_numpy(em: Emitter, node: Apply, condition: str, c_expr: str,
                    args: list[str], otherwise: str | None = None) -> None:
    """The output is C expression `c_expr` (a new reference) when `condition` holds at run
    time, else C expression `otherwise` when given and not NULL (with no exception set), else
    the op's NumPy implementation called on `args`."""
    call = em.add_host(node.op.py_fn(node))
    s = em.new_slot(node.outputs[0])
    em.lines += [
        f"    if ({condition}) {{",
        f"        v[{s}] = {c_expr};",
        *([f"    }} else if ((v[{s}] = {otherwise}) || PyErr_Occurred()) {{"] if otherwise else []),
        "    } else {",
        f"        v[{s}] = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, {call}), "
        f"{', '.join(args)}, NULL);",
        "    }",
        f"    if (!v[{s}]) goto fail;"]


@c_impl.register(SumToShapeOf)
def sum_to_shape(em: Emitter, k: int, node: Apply) -> None:
    """the gradient itself when it has the input's shape, NumPy's C sum over the one broadcast
    axis (a target shape given as a vector), else NumPy's sum over broadcast axes"""
    g, x = (em.ref(v) for v in node.inputs)
    if node.op.from_shape:  # x: the target shape, an int64 vector
        same = (f"PyArray_IS_C_CONTIGUOUS({x}) && PyArray_NDIM({g}) == PyArray_DIM({x}, 0) "
                f"&& th_dims_equal({g}, (const npy_int64 *)PyArray_DATA({x}))")
        total = (f"(PyArray_IS_C_CONTIGUOUS({x}) ? th_sum_to_shape({g}, (int)PyArray_DIM({x}, "
                 f"0), (const npy_int64 *)PyArray_DATA({x})) : NULL)")
    else:
        same = (f"PyArray_NDIM({g}) == PyArray_NDIM({x}) && PyArray_CompareLists("
                f"PyArray_DIMS({g}), PyArray_DIMS({x}), PyArray_NDIM({g}))")
        total = (f"th_sum_to_shape({g}, PyArray_NDIM({x}), "
                 f"(const npy_int64 *)PyArray_DIMS({x}))")
    _c_unless_numpy(em, node, same, f"(Py_INCREF({g}), (PyObject *){g})", [g, x], total)


def _blas_dtypes(em: Emitter, node: Apply) -> bool:
    """True if gemm can compute `node`: BLAS found, and inputs and output all float32/64."""
    dtype = node.outputs[0].dtype
    return em.blas and dtype in FLOATS and all(v.dtype == dtype for v in node.inputs)


@c_impl.register(Dot)
def dot(em: Emitter, k: int, node: Apply) -> None:
    """BLAS gemm (NumPy's OpenBLAS) for float32/64, else NumPy's dot"""
    if not _blas_dtypes(em, node):
        return em.host_call(k, node)
    a, b = (em.ref(v) for v in node.inputs)
    em.c_call(node, f"th_dot({k}, {a}, {b}, NULL, 1.0, 0.0, "
                    f"{em.into(node.outputs[0])})")


@c_impl.register(Gemm)
def gemm(em: Emitter, k: int, node: Apply) -> None:
    """BLAS gemm with alpha and beta (NumPy's OpenBLAS) for float32/64, else NumPy"""
    if not _blas_dtypes(em, node):
        return em.host_call(k, node)
    z, a, b = (em.ref(v) for v in node.inputs)
    op = node.op
    call = f"th_dot({k}, {a}, {b}, {z}, {op.alpha!r}, {op.beta!r}, NULL)"
    # z must have the product's shape for an in-place gemm; otherwise NumPy broadcasts it
    same = (f"PyArray_DIM({z}, 0) == PyArray_DIM({a}, 0) && "
            f"PyArray_DIM({z}, 1) == PyArray_DIM({b}, 1)")
    _c_unless_numpy(em, node, same, call, [z, a, b])


# entries in modules of their own (they import c_impl from here)
from theanine.backends.cpu_c import conv as _conv  # noqa: E402, F401
from theanine.backends.cpu_c import ifelse as _ifelse  # noqa: E402, F401
from theanine.backends.cpu_c import scan as _scan  # noqa: E402, F401
from theanine.backends.cpu_c import sparse as _sparse  # noqa: E402, F401
from theanine.backends.cpu_c import views as _views  # noqa: E402, F401
