"""`broadcast_shared`: every rank starts from the same parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.distributed.buckets import check_agreement
from theanine.distributed.world import init


def broadcast_shared(shared_vars: Sequence, root: int = 0) -> None:
    """Set each shared variable's value on every rank to its value on rank `root` (checking
    first that every rank holds the same dtypes and shapes). Alone, nothing changes."""
    w = init()
    shared_vars = list(shared_vars)
    if not 0 <= root < w.size:
        raise ValueError(f"broadcast_shared: root must be a rank in [0, {w.size}), got {root}")
    if w.size == 1:
        return
    values = [np.ascontiguousarray(v.get_value(borrow=False)) for v in shared_vars]
    names = [v.name or f"shared variable {k}" for k, v in enumerate(shared_vars)]
    check_agreement(w, "broadcast", values, names, f"broadcast_shared from rank {root}")
    w.wait([w.comm.Ibcast(a, root=root) for a in values if a.size],
           f"broadcast_shared from rank {root}")
    if w.rank != root:
        for v, a in zip(shared_vars, values):
            v.set_value(a, borrow=True)
