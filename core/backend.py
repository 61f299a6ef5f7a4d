"""The Backend interface and the registry that plugins fill through
`theanine_register_backends(register)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from theanine.boundary import HOST_BOUNDARY, CallBoundary
from theanine.config import config
from theanine.graph.fgraph import FunctionGraph
from theanine.op_table import OpTable
from theanine.plugins.manager import PluginCollected


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


class Backend:
    """A place graphs run. Subclasses set `name`, `devices` (device names that select it, e.g.
    'cpu', 'clang'; a backend with numbered devices overrides `accepts` and `device_names`)
    and `priority` (higher wins when several serve one device), and implement `available()`
    and `compile()`."""

    name: str = ""
    devices: tuple[str, ...] = ()
    priority: int = 0
    # how this backend runs each op class (theanine.op_table); None: the backend compiles
    # whole graphs its own way and reads no table
    impls: OpTable | None = None
    # rewrite tags made for this backend ("gemm"): a rewrite carrying a tag some backend
    # declares runs only for the backends declaring it (or when the mode includes the tag)
    rewrite_tags: tuple[str, ...] = ()
    # compiled graphs land in an on-disk cache by content, so compiling them in other processes
    # first (the conformance kit's prewarm) saves this process the work
    caches_builds_on_disk: bool = True

    def available(self) -> tuple[bool, str]:
        """(True, "") if this backend can run here, else (False, reason)."""
        return True, ""

    def describe(self) -> list[str]:
        """Facts for `theanine info`: compilers, libraries and devices this backend found."""
        return []

    def accepts(self, device: str) -> bool:
        """Whether `device` (config.device, `backend=`) selects this backend: its name or one
        of `devices`. The only judge of device names: config and `get_backend` ask it."""
        return device == self.name or device in self.devices

    def device_names(self) -> tuple[str, ...]:
        """The names `accepts` takes, as shown to users (a family as 'cuda:N')."""
        return tuple(dict.fromkeys((*self.devices, self.name)))

    def owns_array(self, value: Any) -> bool:
        """Whether `value` is an array of this backend's device library (on any of its
        devices), which NumPy cannot read. Arrays that speak DLPack or the CUDA array interface
        are known by those protocols; a library with neither says so here."""
        return False

    def for_device(self, device: str) -> Backend:
        """The backend serving `device` (e.g. 'opencl:0:1'); backends with one device return
        themselves."""
        return self

    def compile(self, fgraph: FunctionGraph) -> Callable[..., Sequence]:
        """Return a callable taking the fgraph's input values in order and returning its output
        values in order."""
        raise NotImplementedError

    def boundary(self) -> CallBoundary:
        """How compiled functions take inputs, hand out outputs and keep shared values
        (theanine.boundary): host NumPy arrays unless the backend says otherwise."""
        return HOST_BOUNDARY

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"


def _collect() -> dict[str, Backend]:
    from theanine.plugins.manager import call_hook

    found: dict[str, Backend] = {}

    def register(backend: Backend) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"register() expects a theanine Backend, got {backend!r}")
        if not backend.name:
            raise ValueError(f"backend {backend!r} has no name")
        found[backend.name] = backend

    call_hook("theanine_register_backends", register)
    return found


_REGISTRY: PluginCollected[dict[str, Backend]] = PluginCollected(_collect)


def backends() -> dict[str, Backend]:
    """All registered backends by name (available or not)."""
    return _REGISTRY.get()


def device_listing(regs: dict[str, Backend]) -> str:
    """Each registered backend with the device names it accepts, for error messages."""
    return "; ".join(f"{n} (devices: {', '.join(b.device_names())})" for n, b in regs.items())


def check_device(device: str) -> str:
    """`device` if some registered backend accepts it (config.device's check), else a
    ValueError listing what the registered backends accept."""
    regs = backends()
    if any(b.accepts(device) for b in regs.values()):
        return device
    known = device_listing(regs) or "none (no theanine backends are registered)"
    raise ValueError(f"config.device must be a device or backend name some registered backend "
                     f"accepts, got {device!r}; registered: {known}")


def get_backend(name_or_device: str | Backend | None = None) -> Backend:
    """The backend for a backend name ('numpy', 'c', ...) or a device ('cpu', 'cuda:0',
    'opencl:0:1'); None means config.device, and a Backend is itself. Raises
    BackendUnavailable with the reason."""
    if isinstance(name_or_device, Backend):
        return name_or_device
    target = name_or_device or config.device
    regs = backends()
    if not regs:
        raise BackendUnavailable(
            "No theanine backends are registered. theanine finds its backends through the "
            "'theanine' entry-point group: install the package (pip install -e .) and check "
            "THEANINE_PLUGINS does not exclude them (`theanine info` lists plugins)."
        )
    if target in regs:
        b = regs[target]
        ok, why = b.available()
        if not ok:
            raise BackendUnavailable(f"backend {target!r} is not available: {why}")
        return b
    candidates = sorted((b for b in regs.values() if b.accepts(target)),
                        key=lambda b: -b.priority)
    if not candidates:
        raise BackendUnavailable(f"no backend serves device {target!r}; registered: "
                                 f"{device_listing(regs)}")
    reasons = []
    for b in candidates:
        ok, why = b.available()
        if ok:
            return b.for_device(target)
        reasons.append(f"{b.name}: {why}")
    raise BackendUnavailable(f"no available backend for device {target!r}: {'; '.join(reasons)}")
