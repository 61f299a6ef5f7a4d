"""The all-reduce of a list of host arrays: the ranks first agree on what they exchange, then
the arrays travel in a few fused buffers (buckets, as PyTorch's DDP groups gradients), all in
flight at once, so many small gradients cost about one message's latency."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from theanine.config import config
from theanine.distributed.world import DistributedError, World, allgather_object, init


def _signature(op: str, arrays: Sequence[np.ndarray]) -> np.int64:
    text = repr((op, [(a.dtype.str, a.shape) for a in arrays])).encode()
    return np.frombuffer(hashlib.blake2b(text, digest_size=8).digest(), np.int64)[0]


def check_agreement(w: World, op: str, arrays: Sequence[np.ndarray], names: Sequence[str],
                    what: str) -> None:
    """Raise DistributedError on every rank unless every rank passes arrays of the same dtypes
    and shapes (one 16-byte all-reduce; the detailed message costs a gather only on failure)."""
    sig = _signature(op, arrays)
    mine = np.array([sig, -sig], np.int64)
    seen = np.empty(2, np.int64)
    w.wait([w.comm.Iallreduce(mine, seen, op=w.MPI.MAX)], f"{what} (agreement check)")
    if seen[0] == sig and seen[1] == -sig:
        return
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


def allreduce_arrays(arrays: Sequence[np.ndarray], op: str, names: Sequence[str],
                     what: str = "allreduce") -> list[np.ndarray]:
    """The element-wise sum ('sum') or mean ('mean') of each array over every rank, as new
    arrays. Alone, the arrays themselves (copied)."""
    w = init()
    arrays = [np.asarray(a) for a in arrays]
    if w.size == 1:
        return [np.array(a, copy=True) for a in arrays]
    check_agreement(w, op, arrays, names, what)
    limit = int(config.distributed.bucket_mb * 2 ** 20)
    out: list[np.ndarray] = [None] * len(arrays)  # type: ignore[list-item]
    requests = []
    for members in buckets(arrays, limit):
        total = sum(arrays[i].size for i in members)
        buf = np.empty(total, arrays[members[0]].dtype)
        at = 0
        for i in members:
            n = arrays[i].size
            buf[at:at + n] = arrays[i].reshape(-1)
            out[i] = buf[at:at + n].reshape(arrays[i].shape)
            at += n
        if total:
            requests.append((w.comm.Iallreduce(w.MPI.IN_PLACE, buf, op=w.MPI.SUM), buf))
    w.wait([r for r, _ in requests], what)
    if op == "mean":
        for _, buf in requests:
            buf /= w.size
    return out
