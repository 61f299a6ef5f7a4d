"""A backend's call boundary: how its compiled functions take call values in, hand results
out and keep shared variables' values between calls. `Backend.boundary()` returns one; the
default here keeps everything in host memory as NumPy arrays (the CPU backends), and device
backends supply their own (theanine.gpu.boundary), so core/compile never names a device."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from theanine.compile.shared import SharedVariable
    from theanine.tensor.type import TensorType


class CallBoundary:
    """Host arrays in, host arrays out, shared values held as NumPy arrays.

    A Function's generated call is assembled from the source fragments below. Each names only
    the generated names it is given (`a0`, `s1`, `r[2]`) and those `bind` puts in the call's
    namespace, never a user's string; so a host call stays a few inlined expressions."""

    def bind(self, env: dict[str, Any]) -> None:
        """Add the names this boundary's fragments use to the generated call's namespace."""
        env.update(ndarray=np.ndarray, asarray=_asarray, copy=_copy)

    def input_filter(self, t: TensorType, label: str,
                     allow_downcast: bool) -> Callable[[Any], Any]:
        """The conversion of a call value for an input of type `t` (named `label` in errors)."""

        def filt(value):
            return t.filter(value, name=label, allow_downcast=allow_downcast)

        return filt

    def trusted_input(self, arg: str, filt: str) -> str | None:
        """Statements (indented one level) that still convert `arg` with `filt` under
        `trust_input=True`; None to pass the value as it is."""
        return None

    def shared_value(self, var: str) -> str:
        """The expression reading shared variable `var`'s value for the run."""
        return f"{var}.container_value"

    def store_update(self, var: str, value: str, fresh: bool) -> str:
        """The statement storing `value` as shared variable `var`'s new value; not `fresh`:
        the value may share memory with an input, a constant or another result, so copy it."""
        return f"{var}.container_value = {_own(value, fresh)}"

    def output(self, value: str, fresh: bool, return_device: bool) -> str:
        """The expression handing out result `value` (copied unless `fresh`, as in
        `store_update`); `return_device` asks for device arrays, which host memory has not."""
        return _own(value, fresh)

    def host_value(self, value: Any) -> np.ndarray:
        """The host array a call value holds, for re-running a failed call on the NumPy
        reference; raises TypeError for anything else (a trusting caller's list)."""
        if isinstance(value, np.ndarray):
            return value
        raise TypeError(f"not an array: {type(value).__name__}")


def _asarray(value: Any) -> Any:
    """np.asarray, except that a scipy.sparse matrix (theanine.sparse) passes as it is."""
    if value.__class__ is np.ndarray or not hasattr(value, "tocsr"):
        return np.asarray(value)
    return value


def _copy(value: Any) -> Any:
    """np.array (a copy), except that a scipy.sparse matrix is copied as a sparse one."""
    if value.__class__ is np.ndarray or not hasattr(value, "tocsr"):
        return np.array(value)
    return value.copy()


def _own(value: str, fresh: bool) -> str:
    return f"asarray({value})" if fresh else f"copy({value})"


HOST_BOUNDARY = CallBoundary()


class ValueStore(Protocol):
    """Memory outside the host where a boundary keeps shared values between calls (a device's
    memory). A SharedVariable holds `(store, value)` and moves the value only through these."""

    def upload(self, host: np.ndarray) -> Any:
        """A copy of `host` in this memory."""

    def download(self, value: Any) -> np.ndarray:
        """A new host array with `value`'s contents."""

    def export(self, value: Any, borrow: bool) -> Any:
        """`value` as the backend's native array for `get_value(return_internal_type=True)`:
        a copy unless `borrow`."""

    def take(self, value: Any, var: SharedVariable, borrow: bool) -> Any | None:
        """`value` (given to `var.set_value`) checked against `var`'s type and kept in this
        memory (copied unless `borrow`); None when it is not an array in this memory."""
