"""Theano's `theano.tensor.shared_randomstreams`, so that ported programs import it unchanged:
`RandomStreams` is theanine.random_streams.RandomStream with Theano's item access.

A compatibility alias module: the one module of theanine.tensor that imports from above the
graph layer (tests/test_layers.py lists it); graph-building code never imports it.
"""

from __future__ import annotations

import numpy as np

from theanine.random_streams import PhiloxState, RandomStateVariable, RandomStream

__all__ = ["RandomStateVariable", "RandomStreams"]


class RandomStreams(RandomStream):
    """Theano 1.0's RandomStreams(seed): uniform, normal, binomial, multinomial, choice,
    permutation and random_integers with Theano's signatures; each draw's state is a shared
    variable (`draw.rng`) with a default_update, reseeded all at once by `seed(s)`."""

    def __getitem__(self, item: RandomStateVariable) -> PhiloxState:
        """The state of draw state `item` (Theano: `srng[rv.rng]`), not a copy."""
        return item.get_value(borrow=True)

    def __setitem__(self, item: RandomStateVariable, value: np.ndarray) -> None:
        """Set the state of draw state `item`."""
        item.set_value(value, borrow=True)
