"""The GPU backends' entry for theanine.distributed's AllReduce: MPI on host copies of the
device arrays (downloaded, all-reduced in fused buckets, uploaded). The CUDA backend's table
overrides it with NCCL on the device buffers where NCCL is present (`cuda/nccl.py`)."""

from __future__ import annotations

from theanine.distributed.ops import AllReduce
from theanine.gpu.library import HOST_PLAN, gpu_impl
from theanine.graph.basic import Apply


def allreduce_on_host(program, node: Apply, source):
    """MPI's all-reduce on host copies (download, exchange, upload)"""
    return HOST_PLAN


gpu_impl.add(AllReduce, allreduce_on_host)
