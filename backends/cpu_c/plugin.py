"""Registers the C backend through the same hook a third-party plugin uses."""

from theanine.backends.cpu_c.backend import CBackend
from theanine.plugins import hookimpl


@hookimpl
def theanine_register_backends(register):
    register(CBackend())
