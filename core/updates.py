"""`theanine.OrderedUpdates` (Theano's theano.updates.OrderedUpdates): the ordered dict of
{shared variable: new value} that Theano programs build and pass to function(updates=...)."""

from __future__ import annotations

from collections import OrderedDict

from theanine.graph.basic import SharedValue


class OrderedUpdates(OrderedDict):
    """An OrderedDict whose keys must be shared variables; `a + b` merges two of them, and a
    variable updated in both is an error (as in Theano) rather than a silent overwrite."""

    def __setitem__(self, key, value) -> None:
        if not isinstance(key, SharedValue):
            raise TypeError(f"OrderedUpdates: keys must be shared variables, got {key!r} "
                            f"({type(key).__name__})")
        super().__setitem__(key, value)

    def update(self, other=(), **kw) -> None:
        """Add `other`'s updates; a shared variable already updated to another value raises."""
        items = other.items() if hasattr(other, "items") else other
        for key, value in list(items) + list(kw.items()):
            if key in self and self[key] is not value:
                raise KeyError(f"OrderedUpdates: {key} is updated twice, to {self[key]} and "
                               f"{value}")
            self[key] = value

    def __add__(self, other) -> OrderedUpdates:
        merged = OrderedUpdates(self)
        merged.update(other)
        return merged

    def __radd__(self, other) -> OrderedUpdates:
        merged = OrderedUpdates(other)
        merged.update(self)
        return merged


__all__ = ["OrderedUpdates"]
