"""The ops the C backend runs as library calls rather than generated kernels, and how.

Data movement and BLAS-backed ops call their NumPy implementation (NumPy's BLAS for Dot,
its indexing and copying routines for the rest) from the compiled program. A theanine op that
is in neither this table nor fusable into a kernel makes compilation fail with a message naming
the op and the backend: nothing falls back silently. Ops defined outside theanine (a user's Op
with only a `perform`) run that perform, their definition, on the host arrays.
"""

from __future__ import annotations

from theanine.gradient import StopGradient
from theanine.graph.basic import Apply
from theanine.tensor.allocation import Alloc, ARange
from theanine.tensor.blas import Gemm
from theanine.tensor.elemwise import DimShuffle, Elemwise, SumToShapeOf
from theanine.tensor.jacobian_map import JacobianMap
from theanine.tensor.join import Join, Split
from theanine.tensor.linalg import Dot, MatMul, TensorDot
from theanine.tensor.nnet import CrossentropyCategorical1Hot, LogSoftmax, OneHot, Softmax
from theanine.tensor.reduction import ArgReduce, Reduce
from theanine.tensor.shape_ops import MakeVector, Reshape, Shape, ShapeI, SpecifyShape
from theanine.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedSubtensor,
    IncSubtensor,
    Subtensor,
)

# op class -> what the library call is (shown by `theanine info --coverage` in a later issue)
LIBRARY_CALLS: dict[type, str] = {
    Dot: "BLAS gemm (NumPy's OpenBLAS) for float32/64, else NumPy dot",
    Gemm: "BLAS gemm with alpha and beta (NumPy's OpenBLAS), else NumPy",
    TensorDot: "NumPy tensordot (BLAS)",
    MatMul: "NumPy matmul (BLAS)",
    Elemwise: "NumPy ufunc (dtypes or ops the C renderer does not support)",
    Reduce: "NumPy ufunc.reduce (dtypes the C renderer does not support)",
    ArgReduce: "NumPy argmax/argmin",
    DimShuffle: "a view built in C (transpose / new axes)",
    Reshape: "NumPy reshape (view where possible)",
    SpecifyShape: "shape check",
    Shape: "array shape",
    ShapeI: "array shape (in C)",
    MakeVector: "NumPy array from scalars",
    SumToShapeOf: "no-op in C when shapes agree, else NumPy sum over broadcast axes",
    Alloc: "NumPy broadcast copy",
    ARange: "NumPy arange",
    Join: "NumPy concatenate",
    Split: "NumPy split (views)",
    Subtensor: "NumPy basic indexing (view)",
    AdvancedSubtensor: "NumPy advanced indexing",
    IncSubtensor: "NumPy copy and slice assignment",
    AdvancedIncSubtensor: "NumPy copy and np.add.at",
    Softmax: "a C loop per line (float32/64), else NumPy",
    LogSoftmax: "a C loop per line (float32/64), else NumPy",
    OneHot: "NumPy one-hot",
    CrossentropyCategorical1Hot: "NumPy indexing",
    StopGradient: "identity",
    JacobianMap: "loop over a compiled gradient (reference backend)",
}


class MissingImplementation(NotImplementedError):
    """The backend has no kernel and no library call for an op."""


def check_supported(node: Apply, backend: str) -> None:
    """Raise MissingImplementation if `node` is a theanine op without a library call here."""
    op_type = type(node.op)
    if op_type not in LIBRARY_CALLS and op_type.__module__.startswith("theanine."):
        raise MissingImplementation(
            f"backend {backend!r} has no implementation of op {type(node.op).__name__} "
            f"({node.op}); run it with backend='numpy', or register an implementation for it"
        )
