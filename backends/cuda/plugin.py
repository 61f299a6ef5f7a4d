"""Registers the CUDA backend through the same hook a third-party plugin uses."""

from theanine.backends.cuda import nccl as _nccl  # noqa: F401 (AllReduce through NCCL)
from theanine.backends.cuda.backend import CUDABackend
from theanine.plugins import hookimpl


@hookimpl
def theanine_register_backends(register):
    register(CUDABackend())
