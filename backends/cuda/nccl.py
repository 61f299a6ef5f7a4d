"""The CUDA backend's AllReduce: NCCL on the device buffers, with no host copy.

NCCL comes from the nvidia-nccl wheel (`pip install nvidia-nccl-cu12`, CuPy's dependency too)
or the system's libnccl.so.2, through ctypes. The ranks' communicator is made at the first
exchange, from a unique id broadcast over MPI. Each bucket of gradients is one flat device
buffer (the inputs copied in on the device) all-reduced in place inside one NCCL group, on the
legacy default stream the program's kernels and cuBLAS run on. The host waits on an event,
polling for NCCL's asynchronous errors, MPI failure notices and the job's timeout, so a lost
rank aborts the communicator instead of hanging. Without NCCL, or in a process started
without a launcher, the shared GPU entry applies (MPI on host copies; a copy alone)."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from pathlib import Path

import numpy as np

from theanine.backends.cuda.backend import CUDABackend
from theanine.config import config
from theanine.distributed.buckets import buckets, check_agreement
from theanine.distributed.ops import AllReduce
from theanine.distributed.world import DistributedError, World, init
from theanine.gpu.array import DeviceArray, contiguous_strides
from theanine.gpu.library import HOST_PLAN
from theanine.gpu.plans import Plan, PlanKind, places
from theanine.graph.basic import Apply

# ncclDataType_t and ncclRedOp_t values (nccl.h)
DTYPES = {"int8": 0, "uint8": 1, "int32": 2, "uint32": 3, "int64": 4, "uint64": 5,
          "float16": 6, "float32": 7, "float64": 8}
SUM, AVG = 0, 4
IN_PROGRESS = 7  # ncclInProgress: an asynchronous operation has not finished


class UniqueId(ctypes.Structure):
    """ncclUniqueId: 128 opaque bytes rank 0 makes and every rank passes to ncclCommInitRank."""

    _fields_ = [("internal", ctypes.c_char * 128)]


def find_library() -> str | None:
    """The path of libnccl.so.2 from the nvidia-nccl wheel, else the system's; None if none."""
    try:
        import nvidia.nccl

        found = [p for d in nvidia.nccl.__path__ for p in Path(d, "lib").glob("libnccl.so*")]
        if found:
            return str(found[0])
    except ImportError:
        pass
    return ctypes.util.find_library("nccl")


class Nccl:
    """One process's NCCL communicator over every rank of the job, on one CUDA device."""

    def __init__(self, path: str, world: World, rt):
        self.lib = lib = ctypes.CDLL(path)
        self.world, self.rt = world, rt
        uid = UniqueId()
        if world.rank == 0:
            self._check(lib.ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
        raw = np.frombuffer(bytearray(ctypes.string_at(ctypes.addressof(uid), 128)), np.uint8)
        world.wait([world.comm.Ibcast(raw, root=0)], "NCCL set-up (unique id)")
        ctypes.memmove(ctypes.addressof(uid), raw.ctypes.data, 128)
        self.comm = ctypes.c_void_p()
        rt.activate()
        self._check(lib.ncclCommInitRank(ctypes.byref(self.comm), world.size, uid, world.rank),
                    "ncclCommInitRank")
        lib.ncclAllReduce.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                      ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                      ctypes.c_void_p]

    def _check(self, status: int, call: str) -> None:
        if status not in (0, IN_PROGRESS):
            text = self.lib.ncclGetErrorString
            text.restype = ctypes.c_char_p
            raise DistributedError(f"rank {self.world.rank}: {call} failed: "
                                   f"{text(status).decode()} (NCCL error {status})")

    def allreduce(self, bufs: list[DeviceArray], op: str, what: str) -> None:
        """All-reduce each flat buffer in place, as one NCCL group; wait, bounded."""
        self.rt.activate()
        lib = self.lib
        reduce = AVG if op == "mean" else SUM
        self._check(lib.ncclGroupStart(), "ncclGroupStart")
        for b in bufs:
            ptr = int(b.buffer) + b.offset * b.dtype.itemsize
            self._check(lib.ncclAllReduce(ptr, ptr, b.size, DTYPES[b.dtype.name], reduce,
                                          self.comm, None), "ncclAllReduce")
        self._check(lib.ncclGroupEnd(), "ncclGroupEnd")
        done = self.rt.cuda.Event()
        done.record()
        self._wait(done, what)

    def _wait(self, done, what: str) -> None:
        from theanine.distributed.failure import check_notices

        timeout = config.distributed.timeout
        start = time.monotonic()
        error = ctypes.c_int(0)
        while not done.query():
            self.lib.ncclCommGetAsyncError(self.comm, ctypes.byref(error))
            try:
                if error.value not in (0, IN_PROGRESS):
                    self._check(error.value, what)
                check_notices(self.world, what)
                if time.monotonic() - start > timeout:
                    raise DistributedError(
                        f"rank {self.world.rank}: {what} (NCCL) had no answer from every rank "
                        f"within {timeout:g} s (config.distributed.timeout): a rank died or is "
                        "stuck")
            except DistributedError as e:
                self.lib.ncclCommAbort(self.comm)
                self.world.broken = str(e)
                raise
            time.sleep(0.0001)


_communicators: dict[int, Nccl] = {}


def _nccl_allreduce(rt, node: Apply, prepared, *xs: DeviceArray) -> list[DeviceArray]:
    op = node.op
    w = init()
    names, what = op.describe(node)
    try:
        # a 16-byte MPI check on the host: ranks that disagree never reach NCCL
        shapes = [_Shape(x) for x in xs]
        check_agreement(w, f"{op.op}/nccl", shapes, names, what)
        comm = _communicators.get(id(rt))
        if comm is None:
            comm = _communicators[id(rt)] = Nccl(find_library(), w, rt)
        outs: list[DeviceArray] = [None] * len(xs)  # type: ignore[list-item]
        flats = []
        limit = int(config.distributed.bucket_mb * 2 ** 20)
        for members in buckets(shapes, limit):
            flat = rt.empty((sum(xs[i].size for i in members),), xs[members[0]].dtype)
            at = 0
            for i in members:
                outs[i] = flat.view(xs[i].shape, contiguous_strides(xs[i].shape), flat.offset + at)
                if xs[i].size:
                    rt.copy(xs[i], outs[i])
                at += xs[i].size
            if flat.size:
                flats.append(flat)
        comm.allreduce(flats, op.op, what)
        return outs
    except DistributedError as e:
        raise AllReduce.located_error(node, e) from None


class _Shape:
    """What the agreement check reads of a device array: its dtype, shape and byte size."""

    def __init__(self, x: DeviceArray):
        self.dtype, self.shape, self.nbytes = x.dtype, x.shape, x.size * x.dtype.itemsize


NCCL_PLAN = Plan(PlanKind.DEVICE, run=_nccl_allreduce, reads=places("d"))


def allreduce_entry(program, node: Apply, source) -> Plan:
    """NCCL on device buffers in a launched job with NCCL found; else MPI on host copies.

    NCCL's buckets are flat device buffers; its dtypes cover every theanine dtype but bool.
    A launched job of one rank uses NCCL too, so one GPU can check the NCCL path."""
    if init().comm is not None and find_library() is not None and \
            all(v.dtype in DTYPES for v in node.inputs):
        return NCCL_PLAN
    return HOST_PLAN


CUDABackend.impls.add(AllReduce, allreduce_entry)
