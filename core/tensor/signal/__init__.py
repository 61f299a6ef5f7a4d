"""Signal processing (Theano's `theano.tensor.signal`): pooling in `pool`."""

from theanine.tensor.signal import pool as pool

__all__ = ["pool"]
