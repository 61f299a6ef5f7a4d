"""The Backend interface and the registry that plugins fill through
`theanine_register_backends(register)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from theanine.boundary import HOST_BOUNDARY, CallBoundary
from theanine.config import config
from theanine.graph.fgraph import FunctionGraph
from theanine.op_table import OpTable
from theanine.plugins.manager import PluginCollected


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says why."""


class Backend:
    """A place graphs run. Subclasses set `name`, `devices` (device names that select it, e.g.
    'cpu', 'cuda') and `priority` (higher wins when several serve one device), and implement
    `available()` and `compile()`."""

    name: str = ""
    devices: tuple[str, ...] = ()
    priority: int = 0
    # how this backend runs each op class (theanine.op_table); None: the backend compiles
    # whole graphs its own way and reads no table
    impls: OpTable | None = None
    # compiled graphs land in an on-disk cache by content, so compiling them in other processes
    # first (the conformance kit's prewarm) saves this process the work
    caches_builds_on_disk: bool = True

    def available(self) -> tuple[bool, str]:
        """(True, "") if this backend can run here, else (False, reason)."""
        return True, ""

    def describe(self) -> list[str]:
        """Facts for `theanine info`: compilers, libraries and devices this backend found."""
        return []

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


def _device_kind(device: str) -> str:
    for kind in ("cuda", "opencl"):
        if device.startswith(kind):
            return kind
    if device.startswith("gpu"):
        return "cuda"
    return device


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
    kind = _device_kind(target)
    candidates = sorted((b for b in regs.values() if kind in b.devices),
                        key=lambda b: -b.priority)
    if not candidates:
        listing = "; ".join(f"{n} (devices: {', '.join(b.devices)})" for n, b in regs.items())
        raise BackendUnavailable(f"no backend serves device {target!r}; registered: {listing}")
    reasons = []
    for b in candidates:
        ok, why = b.available()
        if ok:
            return b.for_device(target)
        reasons.append(f"{b.name}: {why}")
    raise BackendUnavailable(f"no available backend for device {target!r}: {'; '.join(reasons)}")
