"""The GPU backends' entries for theanine.sparse: a refusal. Sparse matrices are scipy
objects that live on the host; these backends keep values on the device, so compiling a
graph with a sparse op on them fails, naming the op and where sparse runs."""

from __future__ import annotations

from theanine.gpu.library import gpu_impl
from theanine.graph.basic import Apply, format_trace, located
from theanine.sparse import OPS


class SparseOnGpuError(NotImplementedError):
    """A sparse op compiled for a GPU backend."""


def refuse_sparse(program, node: Apply, source) -> None:
    """not supported: sparse runs on the numpy and c backends"""
    raise located(SparseOnGpuError(
        f"the GPU backends (opencl, cuda) do not support sparse ops: {node.op} is a "
        "theanine.sparse op; sparse runs on the numpy and c backends (function(..., "
        f"backend='c')). The node was built at:\n{format_trace(node.trace)}"))


for _cls in OPS:
    gpu_impl.add(_cls, refuse_sparse)
