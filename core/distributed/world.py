"""The processes of a data-parallel job: MPI's world through mpi4py, or this process alone.

A process started by an MPI launcher (mpiexec, srun) joins its world on `init()`. One started
without a launcher is a world of one, so a program runs unchanged on one process, and mpi4py is
not even imported. Every wait for the other ranks is bounded by `config.distributed.timeout`
and watches for failure notices (`failure.py`), so a job whose rank died never hangs."""

from __future__ import annotations

import os
import time
from typing import Any

from theanine.config import config

# variables MPI launchers set in the processes they start (MPICH's hydra and PMI-1/2 clients,
# PMIx launchers such as srun and Open MPI's prterun, Open MPI, MVAPICH)
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                  "MV2_COMM_WORLD_SIZE")


class DistributedError(RuntimeError):
    """A collective operation that cannot complete: a rank failed or went silent, or the ranks
    disagree about what they exchange."""


def launched() -> bool:
    """Whether an MPI launcher started this process."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


class World:
    """This process's place in the job, and the communicators theanine's collectives use (its
    own duplicates of MPI's world, so a user's MPI traffic never mixes with them)."""

    def __init__(self, MPI: Any = None):
        self.MPI = MPI
        self.broken: str | None = None  # why this rank's collectives stopped, once they have
        if MPI is None:
            self.rank, self.size, self.local_rank, self.local_size = 0, 1, 0, 1
            self.comm = self.notices = None
            return
        world = MPI.COMM_WORLD
        self.rank, self.size = world.Get_rank(), world.Get_size()
        self.comm = world.Dup()      # collectives
        self.notices = world.Dup()   # failure notices and their acknowledgements
        local = world.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()

    def wait(self, requests: list, what: str) -> None:
        """Wait until `requests` complete. Raises DistributedError when another rank reports a
        failure, or when `config.distributed.timeout` seconds pass (a rank died or is stuck).
        Spins briefly, then yields the core between polls."""
        if self.broken:
            raise DistributedError(f"rank {self.rank}: {what} cannot run: {self.broken}")
        from theanine.distributed.failure import check_notices
        test = requests[0].Test if len(requests) == 1 else \
            (lambda test_all=self.MPI.Request.Testall: test_all(requests))
        timeout = config.distributed.timeout
        start = time.monotonic()
        polls = 0
        while not test():
            polls += 1
            if polls % 64:
                continue
            check_notices(self, what)
            waited = time.monotonic() - start
            if waited > timeout:
                self.broken = (f"{what} had no answer from every rank within {timeout:g} s "
                               "(config.distributed.timeout): a rank died, is stuck, or runs "
                               "a program that does not make the same collective calls")
                raise DistributedError(f"rank {self.rank}: {self.broken}")
            if waited > 0.002:
                time.sleep(0.0001 if waited < 0.1 else 0.001)


_world: World | None = None


def init() -> World:
    """Join the job (once; later calls return the same world): MPI's world when a launcher
    started this process, else a world of one. Where several ranks share a machine and
    OMP_NUM_THREADS is unset, each rank's OpenMP and BLAS threads get an equal share of its
    cores."""
    global _world
    if _world is not None:
        return _world
    if not launched():
        _world = World()
        return _world
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedError(
            "this process was started by an MPI launcher, but mpi4py cannot be imported "
            f"({e}); pip install 'theanine[distributed]' (mpi4py and MPICH)") from e
    _world = World(MPI)
    if _world.local_size > 1:
        _share_cores(_world.local_size)
    if _world.size > 1:
        from theanine.distributed.failure import install

        install(_world)
    return _world


def _share_cores(ranks_here: int) -> None:
    """Give each of the `ranks_here` ranks on this machine an equal share of its cores, unless
    the user chose thread counts: OpenMP reads OMP_NUM_THREADS when it loads (with the first
    compiled program), and BLAS libraries already loaded (NumPy's OpenBLAS) are limited through
    threadpoolctl. Otherwise every rank's BLAS starts a thread per core and the ranks' spinning
    threads fight over the cores (a 2-rank MLP step on 2 cores ran 15x slower)."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    share = max(1, cores // ranks_here)
    os.environ["OMP_NUM_THREADS"] = str(share)
    if not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        threadpool_limits(limits=share, user_api="blas")


def rank() -> int:
    """This process's rank in the job (0 alone)."""
    return init().rank


def size() -> int:
    """The number of processes in the job (1 alone)."""
    return init().size


def local_rank() -> int:
    """This process's rank among the job's processes on its machine: the GPU it should use."""
    return init().local_rank


def barrier() -> None:
    """Return once every rank has called barrier (bounded by config.distributed.timeout)."""
    w = init()
    if w.size > 1:
        w.wait([w.comm.Ibarrier()], "barrier")


def allgather_object(obj: Any) -> list:
    """Every rank's `obj` (any picklable object), in rank order, on every rank."""
    w = init()
    if w.size == 1:
        return [obj]
    import pickle

    import numpy as np

    data = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
    lengths = np.zeros(w.size, np.int64)
    w.wait([w.comm.Iallgather(np.array([data.size], np.int64), lengths)],
           "allgather_object (sizes)")
    gathered = np.empty(int(lengths.sum()), np.uint8)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    w.wait([w.comm.Iallgatherv(data, [gathered, lengths, offsets, w.MPI.BYTE])],
           "allgather_object")
    return [pickle.loads(gathered[o:o + n].tobytes()) for o, n in zip(offsets, lengths)]
