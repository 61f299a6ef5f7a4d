"""The entry point: theanine calls this hook to learn about the backend."""

from theanine.plugins import hookimpl
from theanine_clang.backend import ClangBackend


@hookimpl
def theanine_register_backends(register):
    register(ClangBackend())
