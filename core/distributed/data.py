"""Splitting a data set among the ranks."""

from __future__ import annotations

from theanine.distributed.world import init


def shard_slice(n: int, rank: int | None = None, size: int | None = None) -> slice:
    """The block of `n` items that rank `rank` of `size` takes: contiguous blocks in rank order
    whose lengths differ by at most one (the first n % size ranks take one more)."""
    if rank is None or size is None:
        w = init()
        rank = w.rank if rank is None else rank
        size = w.size if size is None else size
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"shard: rank must be in [0, size) with size >= 1, got rank {rank} of "
                         f"size {size}")
    if n < 0:
        raise ValueError(f"shard: the number of items must not be negative, got {n}")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard(*data, rank: int | None = None, size: int | None = None, even: bool = False):
    """This rank's share of each of `data` (arrays or anything sliceable, split along their
    first axis, which must have the same length in each): one value for one argument, else a
    tuple. even=True requires the length to divide evenly, so every rank's share weighs the
    same in a mean of the ranks' gradients."""
    if not data:
        raise TypeError("shard: expected at least one array")
    lengths = {len(d) for d in data}
    if len(lengths) != 1:
        raise ValueError(f"shard: the arrays must have the same first length, got "
                         f"{[len(d) for d in data]}")
    (n,) = lengths
    part = shard_slice(n, rank, size)
    if even:
        total = size if size is not None else init().size
        if n % total:
            raise ValueError(f"shard(even=True): {n} items do not split evenly among {total} "
                             f"ranks; drop {n % total} or pass even=False")
    parts = tuple(d[part] for d in data)
    return parts[0] if len(parts) == 1 else parts
