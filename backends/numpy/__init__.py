"""The NumPy reference backend."""

from theanine.backends.numpy.backend import NumpyBackend

__all__ = ["NumpyBackend"]
