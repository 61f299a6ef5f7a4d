"""theanine.distributed: data-parallel training across processes and machines through MPI.

Each process (rank) holds the parameters and computes gradients on its share of each batch;
`allreduce` averages them inside the compiled step. Start the ranks with an MPI launcher
(`mpiexec -n 2 python train.py`); a process started alone is a job of one and runs unchanged.
Needs `pip install 'theanine[distributed]'` (mpi4py and MPICH) only when launched."""

from theanine.distributed.buckets import allreduce_arrays
from theanine.distributed.data import shard, shard_slice
from theanine.distributed.ops import AllReduce, allreduce
from theanine.distributed.shared import broadcast_shared
from theanine.distributed.world import (
    DistributedError,
    allgather_object,
    barrier,
    init,
    launched,
    local_rank,
    rank,
    size,
)

__all__ = ["AllReduce", "DistributedError", "allgather_object", "allreduce", "allreduce_arrays",
           "barrier", "broadcast_shared", "init", "launched", "local_rank", "rank", "shard",
           "shard_slice", "size"]
