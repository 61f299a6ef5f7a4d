"""Shared variables: symbolic variables with a value that persists across function calls."""

from __future__ import annotations

import copy
import itertools
import threading

import numpy as np

from theanine.boundary import ValueStore
from theanine.graph.basic import graph_error
from theanine.graph.pickling import picklable_tag
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorVariable

_creation = itertools.count()  # the order functions take shared variables' locks in


class SharedVariable(TensorVariable):
    """A tensor with a stored value, an implicit input of every function that uses it.

    `get_value`/`set_value` copy unless `borrow=True`; functions may replace (never mutate) the
    stored array, so a borrowed array stays valid but may stop being the current value.

    A function on a device backend (OpenCL, CUDA) keeps the value in that device's memory, a
    `ValueStore` its call boundary supplies (theanine.boundary): `device_value(store)` uploads
    it once, updates stay there (`set_device_value`), and the host copy is made only when
    `get_value` asks for it.

    Its `lock` serializes whatever reads or replaces the value: a function call with its
    updates, `get_value` and `set_value` (see README, "Thread safety").
    """

    def __init__(self, type: TensorType, value: np.ndarray, name: str | None = None,
                 strict: bool = False, allow_downcast: bool | None = None):
        super().__init__(type, name=name)
        self.strict = strict
        self.allow_downcast = bool(allow_downcast)
        self._host = value
        self._device = None  # (store, value) when a device's memory holds the current value
        self._store: ValueStore | None = None  # the memory a function last kept this value in
        self.lock = threading.RLock()
        self.lock_order = next(_creation)
        # the update every function() reading this variable applies unless it updates it
        # itself or says no_default_updates (Theano's default_update: random states use it)
        self.default_update: TensorVariable | None = None

    @property
    def container_value(self) -> np.ndarray:
        """The current value as a host array (copied from the device when it lives there)."""
        if self._host is None:
            store, value = self._device
            self._host = store.download(value)
        return self._host

    @container_value.setter
    def container_value(self, value: np.ndarray) -> None:
        self._host = value
        self._device = None

    def device_value(self, store: ValueStore):
        """The value in `store`'s memory, uploaded if it does not hold it yet."""
        d = self._device
        if d is None or d[0] is not store:
            d = self._device = (store, store.upload(self.container_value))
            self._store = store
        return d[1]

    def set_device_value(self, store: ValueStore, value) -> None:
        """Store a function's update: a value in `store`'s memory stays there."""
        if isinstance(value, np.ndarray):
            self.container_value = np.array(value)
        else:
            self._host = None
            self._device = (store, value)
            self._store = store

    def get_value(self, borrow: bool = False, return_internal_type: bool = False):
        """The current value (a copy unless borrow=True). With `return_internal_type`, a value
        held in device memory comes back as the backend's device array, not copied down."""
        with self.lock:
            if return_internal_type and self._device is not None:
                store, d = self._device
                return store.export(d, borrow)
            v = self.container_value
            return v if borrow else v.copy()

    def set_value(self, value, borrow: bool = False) -> None:
        """Replace the value; it must convert to this variable's type without loss. An array in
        the memory of the device a function keeps the value on is taken there, not copied down."""
        with self.lock:
            self._set_value(value, borrow)

    def _set_value(self, value, borrow: bool) -> None:
        store = self._store
        if store is not None and not isinstance(value, np.ndarray):
            d = store.take(value, self, borrow)
            if d is not None:
                self._host = None
                self._device = (store, d)
                return
        label = self.label
        if self.strict:
            if not (isinstance(value, np.ndarray) and value.dtype == self.type.numpy_dtype):
                raise TypeError(f"{label} is strict: expected an ndarray of {self.type.dtype}, "
                                f"got {type(value).__name__} of dtype "
                                f"{getattr(value, 'dtype', type(value).__name__)}")
        arr = self.type.filter(value, name=f"{label}.set_value",
                               allow_downcast=self.allow_downcast)
        if not borrow and arr is value:
            arr = arr.copy()
        self.container_value = arr

    @property
    def label(self) -> str:
        """How error messages name this variable."""
        return f"shared variable {self.name!r}" if self.name else "shared variable"

    @property
    def value(self) -> np.ndarray:
        return self.get_value()

    def clone(self):
        """Cloning inside a compiled graph keeps the link to this variable's storage."""
        v = TensorVariable(self.type, name=self.name)
        v.tag["shared"] = self
        return v

    def __reduce__(self):
        """Pickle the current value as a host array (copied down from a device), rebuilt
        through the constructor, with its default_update (a random state's advance); no
        device state is pickled."""
        state = {"trace": self.trace, "tag": picklable_tag(self.tag),
                 "default_update": self.default_update}
        return (_load_shared, (type(self), self.type, self.get_value(borrow=True), self.name,
                               self.strict, self.allow_downcast), state)

    def __deepcopy__(self, memo):
        new = SharedVariable(self.type, copy.deepcopy(self.container_value, memo), self.name,
                             self.strict, self.allow_downcast)
        return new

    def __str__(self) -> str:
        return self.name if self.name is not None else f"<{self.type}>"


def _load_shared(cls, type: TensorType, value: np.ndarray, name, strict, allow_downcast):
    return cls(type, value, name=name, strict=strict, allow_downcast=allow_downcast)


class LockSet:
    """Several locks as one context manager: taken in the given order, released in reverse."""

    __slots__ = ("locks",)

    def __init__(self, locks: list):
        self.locks = tuple(locks)

    def __enter__(self) -> None:
        taken = []
        try:
            for lock in self.locks:
                lock.acquire()
                taken.append(lock)
        except BaseException:  # interrupted while waiting: give back what was taken
            for lock in reversed(taken):
                lock.release()
            raise

    def __exit__(self, *exc) -> None:
        for lock in reversed(self.locks):
            lock.release()


def shared(value, name: str | None = None, strict: bool = False,
           allow_downcast: bool | None = None, borrow: bool = False,
           broadcastable=None, shape=None) -> SharedVariable:
    """A shared variable holding `value` (copied unless borrow=True).

    Its type takes the value's dtype; every axis has unknown static length unless
    `broadcastable` (Theano) or `shape` says otherwise, so the value may later change shape.
    """
    if isinstance(value, TensorVariable):
        raise TypeError("shared() takes a value (NumPy array or scalar), not a symbolic variable "
                        f"({value})")
    if type(value).__module__.startswith("scipy.sparse"):  # (no scipy import for dense ones)
        from theanine.sparse.shared import sparse_shared

        return sparse_shared(value, name, strict, allow_downcast, borrow)
    arr = value if borrow and isinstance(value, np.ndarray) else np.array(value)
    if arr.dtype == object:
        raise TypeError(f"shared(): cannot hold {type(value).__name__} values as a tensor")
    if isinstance(value, float) and not isinstance(value, np.floating):
        from theanine.config import config

        arr = arr.astype(config.floatX)
    if broadcastable is not None and shape is not None:
        raise TypeError("shared(): give broadcastable= or shape=, not both")
    if broadcastable is not None:
        if len(broadcastable) != arr.ndim:
            raise graph_error(f"shared(): broadcastable={tuple(broadcastable)} has "
                              f"{len(broadcastable)} entries for a {arr.ndim}-d value")
        static = tuple(1 if b else None for b in broadcastable)
    elif shape is not None:
        static = tuple(shape)
    else:
        static = (None,) * arr.ndim
    ttype = TensorType(arr.dtype, static)
    if not ttype.shape_matches(arr.shape):
        raise graph_error(f"shared(): value of shape {arr.shape} does not match the declared "
                          f"static shape {static}")
    return SharedVariable(ttype, arr, name=name, strict=strict, allow_downcast=allow_downcast)
