"""Theano's profiler: where a compiled function's time goes.

`function(..., profile=True)` (or a `ProfileStats`, or a name), or `config.profile`, gives the
function a `.profile`, a `ProfileStats` recording its calls and total time, the time of each
step its backend runs (a node, or a fused kernel computing several nodes) and its compile
time split into rewrite passes (and each rewrite), code generation, the compiler and loading.
`summary()` prints it in Theano's layout: the function, then classes, ops and apply nodes.

Compile time is recorded through a context variable that `Function` sets while it compiles
(`compiling`): the rewrite engine and the backends open `phase`s (their time excludes nested
phases, so nothing is counted twice) and ask `compiling_profile(fgraph)` whether the graph they
compile is profiled; only then do they build timed code, so an unprofiled function runs exactly
the code it ran before. A backend hands its step times over as a `StepTable` (arrays the
generated code adds into, read when the profile is printed), so a call costs no Python beyond
what the timing itself needs.

This module imports no device kit: GPU timers live in theanine.gpu.profiling.
"""

from __future__ import annotations

import atexit
import contextvars
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter

from theanine.graph.basic import Apply

# what each compile-time stage is called in the summary, in the order it is printed
STAGES = {"rewrite": "Rewrites", "codegen": "Code generation", "compiler": "Compiler",
          "load": "Loading"}


@dataclass(eq=False)
class FusedKernel:
    """A fused kernel as the profiler reports it: one timed step computing `nodes` (its
    elementwise nodes and at most one reduction) from `inputs`."""

    nodes: tuple[Apply, ...]
    inputs: tuple

    @property
    def op_name(self) -> str:
        names = [str(getattr(n.op, "scalar_op", None) or n.op) for n in self.nodes]
        return "FusedKernel{" + ",".join(dict.fromkeys(names)) + "}"

    def __str__(self) -> str:
        return f"{self.op_name}({', '.join(map(str, self.inputs))})"


def class_name(entry) -> str:
    """The class an entry is grouped under: its op's class, or FusedKernel."""
    return "FusedKernel" if isinstance(entry, FusedKernel) else type(entry.op).__name__


def op_name(entry) -> str:
    return entry.op_name if isinstance(entry, FusedKernel) else str(entry.op)


def step_entries(steps: Sequence) -> list:
    """The profiler's entry for each lowered step (theanine.codegen.fusion): a NodeStep's node,
    a KernelStep as a FusedKernel."""
    from theanine.codegen.fusion import KernelStep

    return [FusedKernel(tuple(s.nodes), tuple(s.inputs)) if isinstance(s, KernelStep)
            else s.node for s in steps]


@dataclass(eq=False)
class StepTable:
    """The steps one compiled program times, in the order they run: `times[k]` (seconds) and
    `counts[k]` (runs) accumulate for `entries[k]`, written by the generated code or its
    timer. `timer` says how the times were measured; `settle`, when set, brings measurements
    still pending (device events) into `times` before they are read."""

    backend: str
    entries: list
    times: Sequence[float]
    counts: Sequence[int]
    timer: str
    settle: Callable[[], None] | None = None

    def read(self) -> Iterator[tuple[int, object, float, int]]:
        """(step index, entry, total seconds, runs) for each step."""
        if self.settle is not None:
            self.settle()
        for k, e in enumerate(self.entries):
            yield k, e, float(self.times[k]), int(self.counts[k])


@dataclass
class RewriteStat:
    """One rewrite's time within its pass: seconds spent trying it, tries and replacements."""

    time: float = 0.0
    calls: int = 0
    applied: int = 0


_atexit_list: list[ProfileStats] = []


def _print_at_exit() -> None:
    """Print the profiles that ask for it to config.profiling.destination, with its
    n_ops and n_apply (Theano's flags)."""
    from theanine.config import config

    due = [p for p in _atexit_list if p.atexit_print and (p.fct_callcount or p.compile_time)]
    if not due:
        return
    where = config.profiling.destination
    file = {"stderr": sys.stderr, "stdout": sys.stdout}.get(where) or open(where, "w")
    try:
        for p in due:
            p.summary(file=file, n_ops_to_print=config.profiling.n_ops,
                      n_apply_to_print=config.profiling.n_apply)
    finally:
        if file not in (sys.stderr, sys.stdout):
            file.close()


class ProfileStats:
    """What a profiled function (or several sharing this object) recorded: `fct_callcount`
    and `fct_call_time` (whole calls), `compile_time` and its `phases` ((stage, name) ->
    seconds), `rewrites` ((pass, rewrite) -> RewriteStat) and the backends' `tables` of step
    times. With `atexit_print` its summary is printed to stderr when the process exits (a
    profile with calls or compile time), as Theano does."""

    def __init__(self, atexit_print: bool = True, message: str | None = None,
                 name: str | None = None):
        self.message = message if message is not None else name
        self.atexit_print = atexit_print
        self.fct_callcount = 0
        self.fct_call_time = 0.0
        self.compile_time = 0.0
        self.phases: dict[tuple[str, str], float] = {}
        self.rewrites: dict[tuple[str, str], RewriteStat] = {}
        self.tables: list[StepTable] = []
        if atexit_print:
            if not _atexit_list:
                atexit.register(_print_at_exit)
            _atexit_list.append(self)

    # -- recording -----------------------------------------------------------------------------
    def add_table(self, table: StepTable) -> None:
        self.tables.append(table)

    def timed_call(self, call: Callable) -> Callable:
        """`call` counted and timed into fct_callcount and fct_call_time."""

        def timed(*args):
            t0 = perf_counter()
            try:
                return call(*args)
            finally:
                self.fct_call_time += perf_counter() - t0
                self.fct_callcount += 1

        return timed

    # -- reading -------------------------------------------------------------------------------
    def rows(self) -> list[tuple[int, object, float, int]]:
        """(step index, entry, seconds, runs) of every step of every table."""
        return [row for tb in self.tables for row in tb.read()]

    @property
    def apply_time(self) -> dict:
        """Seconds per step: keys are Apply nodes and FusedKernels (Theano's apply_time)."""
        out: dict = {}
        for _, e, t, _ in self.rows():
            out[e] = out.get(e, 0.0) + t
        return out

    @property
    def apply_callcount(self) -> dict:
        out: dict = {}
        for _, e, _, n in self.rows():
            out[e] = out.get(e, 0) + n
        return out

    def grouped(self, key: Callable) -> dict[str, list]:
        """[seconds, runs, steps] per key(entry)."""
        out: dict[str, list] = {}
        for _, e, t, n in self.rows():
            g = out.setdefault(key(e), [0.0, 0, 0])
            g[0] += t
            g[1] += n
            g[2] += 1
        return out

    @property
    def op_time(self) -> dict[str, float]:
        """Seconds per op name (equal ops merged; a fused kernel by the ops it computes)."""
        return {k: v[0] for k, v in self.grouped(op_name).items()}

    @property
    def class_time(self) -> dict[str, float]:
        return {k: v[0] for k, v in self.grouped(class_name).items()}

    # -- printing ------------------------------------------------------------------------------
    def summary(self, file=None, n_ops_to_print: int = 20, n_apply_to_print: int = 20) -> None:
        """Print the function section, then the classes, ops and apply nodes by time (the
        first `n_ops_to_print` classes and ops, `n_apply_to_print` nodes), to `file`
        (default stderr, as Theano)."""
        from theanine.compile.profile_summary import write_summary

        write_summary(self, sys.stderr if file is None else file, n_ops_to_print,
                      n_apply_to_print)


def as_profile(profile, name: str | None) -> ProfileStats | None:
    """function()'s `profile` argument as a ProfileStats, or None when not profiling: True
    (or config.profile) makes one named after the function, a string one with that message,
    and a ProfileStats is used as it is (several functions may share one)."""
    from theanine.config import config

    if profile is None or profile is False:
        return ProfileStats(message=name) if config.profile else None
    if profile is True:
        return ProfileStats(message=name)
    if isinstance(profile, str):
        return ProfileStats(message=profile)
    if isinstance(profile, ProfileStats):
        return profile
    raise TypeError(f"function(): profile must be a bool, a name or a ProfileStats, got "
                    f"{profile!r}")


# -- compile time ------------------------------------------------------------------------------
@dataclass
class _Compiling:
    profile: ProfileStats
    fgraph: object
    open: list[float] = field(default_factory=list)  # time of phases nested in each open one


_COMPILING: contextvars.ContextVar[_Compiling | None] = contextvars.ContextVar(
    "theanine_profile_compiling", default=None)


@contextmanager
def compiling(profile: ProfileStats | None, fgraph) -> Iterator[None]:
    """While `fgraph` is compiled for a profiled function: phases are recorded into
    `profile`, the backend times the steps of `fgraph` and the whole is its compile_time.
    Does nothing when `profile` is None."""
    if profile is None:
        yield
        return
    token = _COMPILING.set(_Compiling(profile, fgraph))
    t0 = perf_counter()
    try:
        yield
    finally:
        profile.compile_time += perf_counter() - t0
        _COMPILING.reset(token)


def compiling_profile(fgraph) -> ProfileStats | None:
    """The profile to time `fgraph`'s steps into, when `fgraph` is the graph of a profiled
    function being compiled (not an inner graph compiled along with it)."""
    c = _COMPILING.get()
    return c.profile if c is not None and c.fgraph is fgraph else None


@contextmanager
def phase(stage: str, name: str = "") -> Iterator[None]:
    """Time a compile stage (a key of STAGES; `name` the pass or tool) into the profile being
    compiled, excluding the phases nested in it. Does nothing when no profile is."""
    c = _COMPILING.get()
    if c is None:
        yield
        return
    c.open.append(0.0)
    t0 = perf_counter()
    try:
        yield
    finally:
        dt = perf_counter() - t0
        nested = c.open.pop()
        key = (stage, name)
        c.profile.phases[key] = c.profile.phases.get(key, 0.0) + dt - nested
        if c.open:
            c.open[-1] += dt


def rewrite_stats() -> dict[tuple[str, str], RewriteStat] | None:
    """Where the rewrite engine adds each rewrite's time, or None when nothing is profiled."""
    c = _COMPILING.get()
    return None if c is None else c.profile.rewrites
