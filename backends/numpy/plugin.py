"""Registers the NumPy reference backend through the same hook a third-party plugin uses."""

from theanine.backends.numpy.backend import NumpyBackend
from theanine.plugins import hookimpl


@hookimpl
def theanine_register_backends(register):
    register(NumpyBackend())
