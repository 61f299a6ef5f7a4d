"""The all-reduce of a list of host arrays: the ranks first agree on what they exchange, then
the arrays travel in a few fused buffers (buckets, as PyTorch's DDP groups gradients), all in
flight at once, so many small gradients cost about one message's latency."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from theanine.config import config
from theanine.distributed.world import DistributedError, World, allgather_object, init

_signatures: dict[tuple, int] = {}


def _signature(op: str, arrays: Sequence[np.ndarray]) -> int:
    """A 63-bit hash of the op, dtypes and shapes, the same in every process (Python's own
    hash of strings differs between processes); remembered, as a step repeats its shapes."""
    key = (op, *[(a.dtype.str, a.shape) for a in arrays])
    sig = _signatures.get(key)
    if sig is None:
        if len(_signatures) >= 4096:
            _signatures.clear()
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
        # 63 bits, so that -sig is an int64 too: MAX over [sig, -sig] finds any disagreement
        sig = _signatures[key] = int.from_bytes(digest, "little") >> 1
    return sig


def check_agreement(w: World, op: str, arrays: Sequence[np.ndarray], names: Sequence[str],
                    what: str) -> int:
    """Raise DistributedError on every rank unless every rank passes arrays of the same dtypes
    and shapes (one 16-byte all-reduce; the detailed message costs a gather only on failure).
    Returns the layout's signature."""
    sig = _signature(op, arrays)
    mine = np.array([sig, -sig], np.int64)
    seen = np.empty(2, np.int64)
    w.wait([w.comm.Iallreduce(mine, seen, op=w.MPI.MAX)], f"{what} (agreement check)")
    if seen[0] == sig and seen[1] == -sig:
        return sig
    described = [f"{n}: {a.dtype} {a.shape}" for n, a in zip(names, arrays)]
    every = allgather_object((op, described))
    lines = [f"rank {r} passes op={o!r}, " + ("; ".join(d) if d else "no arrays")
             for r, (o, d) in enumerate(every)]
    raise DistributedError(f"rank {w.rank}: {what}: the ranks do not pass the same dtypes and "
                           "shapes (their graphs or data differ):\n  " + "\n  ".join(lines))


def buckets(arrays: Sequence[np.ndarray], limit: int) -> list[list[int]]:
    """Indices of `arrays` grouped into buckets of one dtype and at most `limit` bytes (an array
    larger than that alone), in order."""
    out: list[list[int]] = []
    open_: dict[np.dtype, tuple[list[int], int]] = {}
    for i, a in enumerate(arrays):
        members, used = open_.get(a.dtype, ([], 0))
        if members and used + a.nbytes > limit:
            out.append(members)
            members, used = [], 0
        open_[a.dtype] = ([*members, i], used + a.nbytes)
    out += [m for m, _ in open_.values() if m]
    return sorted(out)


_buffers: dict[tuple, np.ndarray] = {}


def _bucket_buffer(key: tuple, n: int, dtype: np.dtype) -> np.ndarray:
    """A flat buffer kept for one bucket of one layout: MPI exchanges a buffer it has seen
    before several times faster (a fresh 1.6 MB buffer: 2.5 ms, a kept one 0.5 ms, MPICH on
    shared memory). At most 64 are kept."""
    buf = _buffers.get(key)
    if buf is None:
        if len(_buffers) >= 64:
            _buffers.clear()
        buf = _buffers[key] = np.empty(n, dtype)
    return buf


def allreduce_arrays(arrays: Sequence[np.ndarray], op: str, names: Sequence[str],
                     what: str = "allreduce") -> list[np.ndarray]:
    """The element-wise sum ('sum') or mean ('mean') of each array over every rank, as new
    arrays. Alone, the arrays themselves (copied). Not for two threads at once: MPI needs the
    ranks' collectives in one order, which threads would not keep."""
    w = init()
    arrays = [np.asarray(a) for a in arrays]
    if w.size == 1:
        return [np.array(a, copy=True) for a in arrays]
    sig = check_agreement(w, op, arrays, names, what)
    limit = int(config.distributed.bucket_mb * 2 ** 20)
    requests, packed = [], []
    for k, members in enumerate(buckets(arrays, limit)):
        total = sum(arrays[i].size for i in members)
        if not total:
            continue
        buf = _bucket_buffer((sig, k), total, arrays[members[0]].dtype)
        at = 0
        for i in members:
            n = arrays[i].size
            np.copyto(buf[at:at + n].reshape(arrays[i].shape), arrays[i])
            packed.append((i, buf[at:at + n]))
            at += n
        requests.append(w.comm.Iallreduce(w.MPI.IN_PLACE, buf, op=w.MPI.SUM))
    w.wait(requests, what)
    # each result is a new array (the buffers are reused by the next exchange)
    out = [np.empty(a.shape, a.dtype) for a in arrays]
    for i, part in packed:
        if op == "mean":
            np.divide(part, w.size, out=out[i].reshape(-1))
        else:
            out[i].reshape(-1)[...] = part
    return out
