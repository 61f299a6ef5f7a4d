"""The registry of conformance cases: for every op of the library, how to build a graph that
uses it, which inputs (static shapes, dtypes, value domains) to feed it, which dtypes to test
and whether to check its gradient.

A case is built once per dtype with inputs of mostly unknown static shape, so one compiled graph
serves many drawn shapes, layouts and values. Cases of the built-in library live in
`elemwise_cases`, `tensor_cases`, `shape_cases`, `kernel_cases`, `random_cases`,
`loop_cases`, `scan_cases` and `conv_cases`; a plugin
adding ops registers its own with `register`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from theanine.plugins.manager import PluginCollected
from theanine.testing.strategies import (
    DEFAULT_DTYPES,
    EXTENDED_DTYPES,
    REAL,
    Domain,
    arrays,
    lengths,
)
from theanine.testing.strategies import broadcast_shapes as _broadcast_shapes

Shape = tuple[int, ...]
DomainSpec = Domain | Callable[[list[Shape]], Domain]


@dataclass(frozen=True)
class Arg:
    """One symbolic input of a case: its static shape (an int where fixed, None where free), its
    dtype (None: the dtype under test) and its value domain, or a function of the drawn
    run-time shapes of all inputs returning one (for indices into another input)."""

    shape: tuple[int | None, ...]
    dtype: str | None = None
    domain: DomainSpec = REAL
    name: str = ""


def free(ndim: int, dtype: str | None = None, domain: DomainSpec = REAL, name: str = "") -> Arg:
    """An Arg of `ndim` axes of unknown static length."""
    return Arg((None,) * ndim, dtype, domain, name)


@dataclass(frozen=True)
class Case:
    """A conformance case.

    build: symbolic inputs (one per arg, in order) -> an output variable or a list of them.
    dtypes: the dtypes under test; `extended` adds float16/complex ones where the graph builds.
    functions: the public theanine.tensor / theanine.gradient functions it exercises (the
      meta-test checks every public function appears in some case).
    shapes: a strategy of run-time shapes (one per arg); default: broadcastable shapes.
    min_side: smallest axis length drawn (1 for ops undefined on empty axes).
    grad: check gradients of float inputs. accumulates: outputs sum over many elements, so the
      absolute tolerance scales with the largest expected value.
    """

    name: str
    build: Callable
    args: tuple[Arg, ...]
    dtypes: tuple[str, ...]
    functions: tuple[str, ...] = ()
    shapes: Callable[[], st.SearchStrategy] | None = None
    min_side: int = 0
    grad: bool = True
    accumulates: bool = False
    extended: bool = True
    label: str = ""
    notes: str = field(default="", compare=False)

    @property
    def row(self) -> str:
        """The row of the coverage matrix this case reports to."""
        return self.label or self.name

    def symbolic_inputs(self, dtype: str) -> list:
        """Fresh symbolic inputs for `dtype`, named after the args."""
        from theanine.tensor.type import TensorType

        return [TensorType(a.dtype or dtype, a.shape)(a.name or f"x{k}")
                for k, a in enumerate(self.args)]

    def graph(self, dtype: str) -> tuple[list, list]:
        """(inputs, outputs) of this case for `dtype`."""
        inputs = self.symbolic_inputs(dtype)
        out = self.build(*inputs)
        return inputs, list(out) if isinstance(out, (list, tuple)) else [out]

    def shape_strategy(self) -> st.SearchStrategy:
        if self.shapes is not None:
            return self.shapes()
        return _broadcast_shapes([a.shape for a in self.args], min_side=self.min_side)

    def draw_values(self, data, dtype: str) -> list[np.ndarray]:
        """Input values for one check, drawn from hypothesis `data` (st.data())."""
        shapes = data.draw(self.shape_strategy(), label="shapes")
        values = []
        for k, (a, shp) in enumerate(zip(self.args, shapes)):
            domain = a.domain(shapes) if callable(a.domain) else a.domain
            values.append(data.draw(arrays(a.dtype or dtype, shp, domain),
                                    label=a.name or f"x{k}"))
        return values


def sized(n: int, make: Callable, min_side: int = 0) -> Callable[[], st.SearchStrategy]:
    """A `Case.shapes` for inputs whose shapes are tied by hand: `n` lengths (strategies.lengths)
    turned into one shape per arg by `make`."""
    return lambda: lengths(n, min_side).map(lambda d: make(*d))


_REGISTRY: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add a case to the registry (its name must be new)."""
    if case.name in _REGISTRY:
        raise ValueError(f"conformance case {case.name!r} is registered twice")
    _REGISTRY[case.name] = case
    return case


def _collect_plugin_cases() -> list[str]:
    """Register every plugin's cases (`theanine_register_cases`); the names they added."""
    from theanine.plugins.manager import call_hook

    added: list[str] = []

    def register_case(case: Case) -> Case:
        if not isinstance(case, Case):
            raise TypeError(f"theanine_register_cases: register() expects a "
                            f"theanine.testing.cases.Case, got {case!r}")
        register(case)
        added.append(case.name)
        return case

    call_hook("theanine_register_cases", register_case)
    return added


def _forget_plugin_cases(names: list[str]) -> None:
    """Remove the cases plugins added, so `reset_plugins()` leaves the built-in ones."""
    for name in names:
        _REGISTRY.pop(name, None)


_PLUGIN_CASES: PluginCollected[list[str]] = PluginCollected(_collect_plugin_cases,
                                                            _forget_plugin_cases)


def all_cases() -> list[Case]:
    """Every registered case, the built-in library's first, then those of plugins
    (`theanine_register_cases`), in registration order."""
    from theanine.testing import (  # noqa: F401 (they register)
        conv_cases,
        elemwise_cases,
        kernel_cases,
        loop_cases,
        random_cases,
        scan_cases,
        shape_cases,
        tensor_cases,
    )

    _PLUGIN_CASES.get()
    return list(_REGISTRY.values())


def case_dtypes(case: Case, extended: bool = False) -> list[str]:
    """The dtypes to test `case` with: its own, plus (when `extended`) the float16/complex dtypes
    its graph builds for."""
    out = list(case.dtypes)
    if extended and case.extended:
        for dt in EXTENDED_DTYPES:
            if dt not in out and builds(case, dt):
                out.append(dt)
    return out


def builds(case: Case, dtype: str) -> bool:
    """True if the case's graph can be built for `dtype` and its domains hold values of it."""
    try:
        case.graph(dtype)
        for a in case.args:
            if not callable(a.domain):
                a.domain.elements(a.dtype or dtype)
    except (TypeError, ValueError, NotImplementedError):
        return False
    return True


def graph_op_keys(outputs: Sequence) -> set[str]:
    """The op keys used by a graph: Op class names, and scalar op names for Elemwise nodes."""
    from theanine.graph.traversal import toposort

    keys = set()
    for node in toposort(list(outputs)):
        keys.add(type(node.op).__name__)
        scalar = getattr(node.op, "scalar_op", None)
        if scalar is not None:
            keys.add(scalar.name)
    return keys


def covered_op_keys(case: Case, dtype: str | None = None) -> set[str]:
    """Op keys exercised by `case` (forward graph, and gradient graph when checked)."""
    from theanine.gradient import grad
    from theanine.tensor.reduction import sum as sum_

    dtype = dtype or case.dtypes[0]
    inputs, outputs = case.graph(dtype)
    keys = graph_op_keys(outputs)
    wrt = [i for i in inputs if np.dtype(i.dtype).kind == "f"]
    floats = [o for o in outputs if np.dtype(o.dtype).kind == "f"]
    if case.grad and wrt and floats:
        cost = sum_(floats[0])
        for o in floats[1:]:
            cost = cost + sum_(o)
        keys |= graph_op_keys(grad(cost, wrt, disconnected_inputs="ignore"))
    return keys


ALL = DEFAULT_DTYPES
NUMERIC = tuple(d for d in DEFAULT_DTYPES if d != "bool")
FLOAT = ("float32", "float64")

__all__ = ["Arg", "Case", "free", "sized", "register", "all_cases", "case_dtypes", "builds",
           "graph_op_keys", "covered_op_keys", "ALL", "NUMERIC", "FLOAT"]
