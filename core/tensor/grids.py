"""Theano's `mgrid` and `ogrid`: `T.mgrid[0:5, 0:3]` gives one int64 tensor per slice, dense
(every one of the grid's full shape) or open (length-1 axes elsewhere), as NumPy's do. The
slice bounds may be symbolic integer scalars."""

from __future__ import annotations

from theanine.graph.basic import graph_error
from theanine.tensor.allocation import arange, broadcast_to
from theanine.tensor.variable import TensorVariable


class _Grid:
    """`grid[slice, ...]`: the aranges of the slices laid out along their own axes."""

    def __init__(self, dense: bool, name: str):
        self.dense, self.name = dense, name

    def __repr__(self):
        return f"theanine.tensor.{self.name}"

    def __getitem__(self, index) -> list[TensorVariable]:
        slices = index if isinstance(index, tuple) else (index,)
        ranges = []
        for k, s in enumerate(slices):
            if not isinstance(s, slice) or s.stop is None or isinstance(s.step, complex):
                raise graph_error(f"{self.name}[...]: entry {k} must be a slice start:stop"
                                  f"[:step] with integer bounds, got {s!r}")
            ranges.append(arange(0 if s.start is None else s.start, s.stop,
                                 1 if s.step is None else s.step))
        nd = len(ranges)
        opened = [r.dimshuffle(*["x" if j != k else 0 for j in range(nd)])
                  for k, r in enumerate(ranges)]
        if not self.dense:
            return opened
        shape = [r.shape[0] for r in ranges]
        return [broadcast_to(o, shape) for o in opened]


mgrid = _Grid(dense=True, name="mgrid")
ogrid = _Grid(dense=False, name="ogrid")

__all__ = ["mgrid", "ogrid"]
