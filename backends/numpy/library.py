"""The NumPy reference backend's op table: the Python callable its executor calls for a node.

An entry is called as `fn(node, backend)` and returns `f(*input_values)` giving the node's
output (one output) or a tuple of them (several). Library ops run their NumPy implementation
(`py_fn`), which defines what they mean; a user's op runs its perform.
"""

from __future__ import annotations

from collections.abc import Callable

from theanine.backend import Backend
from theanine.distributed.ops import AllReduce
from theanine.gradient import StopGradient
from theanine.graph.basic import Apply, Op
from theanine.ifelse import IfElse, LazyIfElse
from theanine.op_table import OpTable
from theanine.scan_module.op import Scan
from theanine.tensor.allocation import Alloc, ARange
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import DimShuffle, Elemwise, SumToShapeOf
from theanine.tensor.join import Join, Split
from theanine.tensor.linalg import Dot, MatMul, TensorDot
from theanine.tensor.nnet import CrossentropyCategorical1Hot, LogSoftmax, OneHot, Softmax
from theanine.tensor.nnet.conv_fused import Conv2dBiasAct
from theanine.tensor.nnet.conv_ops import Conv2d, Conv2dGradInputs, Conv2dGradWeights
from theanine.tensor.random import FlatIndex
from theanine.tensor.random_ops import CheckParam, Choice, Multinomial, Permutation
from theanine.tensor.reduction import ArgReduce, Reduce
from theanine.tensor.shape_ops import MakeVector, Reshape, Shape, ShapeI, SpecifyShape
from theanine.tensor.signal.pool import AveragePoolGrad, MaxPoolGrad, MaxPoolGradGrad, Pool
from theanine.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedSubtensor,
    IncSubtensor,
    Subtensor,
)

numpy_impl = OpTable("numpy")


def reference(node: Apply, backend: Backend) -> Callable:
    """the op's `py_fn`: its perform, the reference that defines the op"""
    return node.op.py_fn(node)


numpy_impl.register(Op, how="its perform on the host (a user's op: perform is its "
                    "definition)")(reference)
numpy_impl.register(Elemwise, Reduce, ArgReduce, DimShuffle, SumToShapeOf, Dot, Gemm, TensorDot,
                    MatMul, Reshape, SpecifyShape, Shape, ShapeI, MakeVector, Alloc, ARange,
                    Join, Split, Subtensor, AdvancedSubtensor, IncSubtensor,
                    AdvancedIncSubtensor, Softmax, LogSoftmax, OneHot,
                    CrossentropyCategorical1Hot, StopGradient, FlatIndex,
                    Permutation, Multinomial, Choice, CheckParam, IfElse, Conv2d,
                    Conv2dGradInputs, Conv2dGradWeights, Pool, MaxPoolGrad, MaxPoolGradGrad,
                    AveragePoolGrad, Conv2dBiasAct,
                    how="its NumPy implementation (the reference that defines the op)")(reference)
numpy_impl.register(Scan, how="its reference: the inner graph walked node by node each step")(
    reference)
numpy_impl.register(LazyIfElse, how="its reference: the condition, then only the chosen "
                    "branch's inner graph")(reference)
numpy_impl.register(AllReduce, how="MPI's all-reduce through mpi4py on the host arrays, in "
                    "fused buckets")(reference)
