"""Pickling compiled functions: a Function pickles what `function()` was given (inputs,
outputs, updates, givens, mode, options) and the name of its backend, never compiled code;
loading compiles the graph again, which takes the compiled code from the cache when it is
there. A backend missing where the pickle is loaded gives way to the CPU, with a warning.
"""

from __future__ import annotations

import warnings

from theanine.backend import Backend, BackendUnavailable, get_backend


class DeviceFallbackWarning(UserWarning):
    """A pickled function's backend is not available here; it was compiled for the CPU."""


def backend_target(backend: Backend) -> str:
    """The name `get_backend` finds `backend` by: its device spec ('opencl:0:1') where it has
    one, else its name."""
    return getattr(backend, "spec", None) or backend.name


def load_backend(target: str) -> Backend:
    """The backend `target` names, or the CPU's with a DeviceFallbackWarning when it cannot
    run in this process (like Theano's GPU arrays loaded on a machine without a GPU); a device
    index this machine lacks is a ValueError of the backend's `for_device`."""
    try:
        return get_backend(target)
    except (BackendUnavailable, ValueError) as e:
        cpu = get_backend("cpu")
        warnings.warn(f"a pickled theanine function ran on backend {target!r}, which is not "
                      f"available here ({e}); it is compiled for the CPU backend "
                      f"{cpu.name!r} instead", DeviceFallbackWarning, stacklevel=3)
        return cpu


def reduce_function(fn) -> tuple:
    """`Function.__reduce__`: rebuild through `_load_function`."""
    return _load_function, (fn._pickled_args, backend_target(fn.backend))


def _load_function(args: dict, target: str):
    from theanine.compile.function import Function

    return Function(backend=load_backend(target), **args)
