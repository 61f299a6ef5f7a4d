"""Registers the OpenCL backend through the same hook a third-party plugin uses."""

from theanine.backends.opencl.backend import OpenCLBackend
from theanine.plugins import hookimpl


@hookimpl
def theanine_register_backends(register):
    register(OpenCLBackend())
