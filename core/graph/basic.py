"""Graph nodes: Variables, Constants, Apply nodes and the Op base class.

Every Variable and Apply remembers the user's source line that created it (`trace`) so that
errors raised long after graph construction (at compile or call time) can point at it.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

_CORE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# In a source checkout the backends and plugins folders sit beside core/; installed, inside it.
_SKIP_DIRS = tuple(
    os.path.join(d, "") for d in (
        _CORE_DIR,
        os.path.join(os.path.dirname(_CORE_DIR), "backends"),
        os.path.join(os.path.dirname(_CORE_DIR), "plugins"),
    )
)
_PYTHON_INTERNAL = ("<frozen", "<theanine")
# After the user's innermost frame, the trace stops at library code (pytest, runpy, ...).
_LIBRARY_DIRS = tuple({os.path.join(sysconfig.get_paths()[k], "")
                       for k in ("stdlib", "purelib", "platlib")})

# A rewrite or gradient pass sets this so new nodes inherit the trace of what they replace.
_trace_override: list[tuple] = []


def user_trace(limit: int = 3) -> tuple:
    """Return up to `limit` (filename, lineno, function, line) frames outside theanine, innermost
    first: the user's code that is building the graph."""
    if _trace_override:
        return _trace_override[-1]
    frames = []
    f = sys._getframe(1)
    while f is not None and len(frames) < limit:
        fn = f.f_code.co_filename
        if not fn.startswith(_SKIP_DIRS) and not fn.startswith(_PYTHON_INTERNAL):
            if frames and fn.startswith(_LIBRARY_DIRS):
                break
            frames.append((fn, f.f_lineno, f.f_code.co_name))
        f = f.f_back
    return tuple(frames)


def format_trace(trace: tuple) -> str:
    """Render a trace captured by `user_trace` as 'File "...", line N, in fn' lines."""
    if not trace:
        return "  (no user frame recorded)"
    import linecache

    out = []
    for fn, lineno, name in trace:
        out.append(f'  File "{fn}", line {lineno}, in {name}')
        src = linecache.getline(fn, lineno).strip()
        if src:
            out.append(f"    {src}")
    return "\n".join(out)


E = TypeVar("E", bound=BaseException)


def located(exc: E) -> E:
    """Mark `exc` as naming the user's line that built what failed, so a compiled function
    raises it as it is instead of locating it again (see `is_located`)."""
    exc.theanine_located = True
    return exc


def is_located(exc: BaseException) -> bool:
    """Whether `exc` was marked by `located`: its message already says where it comes from."""
    return getattr(exc, "theanine_located", False) is True


class TraceScope:
    """Context manager: nodes created inside inherit `trace` instead of walking the stack."""

    def __init__(self, trace: tuple):
        self.trace = trace

    def __enter__(self):
        _trace_override.append(self.trace)
        return self

    def __exit__(self, *exc):
        _trace_override.pop()
        return False


class GraphError(ValueError):
    """A graph could not be built: the message names the inputs and the user's line."""


class MissingInputError(GraphError):
    """A graph reads an input nobody provides: a function's input not in its inputs, or a
    shared variable a `strict=True` scan's step reads without it in non_sequences (Theano's
    name, so ported `except MissingInputError` clauses work)."""


def graph_error(message: str, trace: tuple | None = None,
                kind: type[GraphError] = GraphError) -> GraphError:
    """Build a GraphError (or the subclass `kind`) whose message ends with the user's line."""
    trace = trace if trace is not None else user_trace()
    return located(kind(f"{message}\nBuilt at:\n{format_trace(trace)}"))


class Tag(dict):
    """A variable's or node's scratch space (Theano's `tag`): a dict whose entries are also
    attributes (`x.tag.test_value = ...`)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"tag has no {name!r}") from None

    def __setattr__(self, name: str, value) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"tag has no {name!r}") from None


class Variable:
    """A symbolic value: the output of an Apply node (`owner`), an input, or a Constant.

    It pickles without recursing along the graph (theanine.graph.pickling)."""

    def __init__(self, type, owner: Apply | None = None, index: int | None = None,
                 name: str | None = None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.trace = owner.trace if owner is not None else user_trace()
        self.tag = Tag()

    def __repr__(self) -> str:
        return self.__str__()

    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        if self.owner is not None:
            op = self.owner.op
            if len(self.owner.outputs) == 1:
                return f"{op}.0"
            return f"{op}.{self.index}"
        return f"<{self.type}>"

    def clone(self) -> Variable:
        """A new ownerless Variable of the same type and name."""
        v = type(self)(self.type, name=self.name)
        v.tag = Tag(self.tag)
        v.trace = self.trace
        return v

    def eval(self, inputs_to_values: dict | None = None) -> Any:
        """Compile (cached per set of inputs) and evaluate this variable on the given values."""
        from theanine.compile.function import function

        inputs_to_values = inputs_to_values or {}
        keys = tuple(inputs_to_values)
        cache = self.tag.setdefault("_eval_cache", {})
        fn = cache.get(keys)
        if fn is None:
            fn = cache[keys] = function(list(keys), self)
        return fn(*[inputs_to_values[k] for k in keys])

    def __getstate__(self) -> dict:
        from theanine.graph.pickling import variable_state

        return variable_state(self)

    def __setstate__(self, state: dict) -> None:
        from theanine.graph.pickling import restore_variable

        restore_variable(self, state)

    def __copy__(self) -> Variable:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new


@runtime_checkable
class SharedValue(Protocol):
    """A variable holding its own value (a shared variable): an implicit input of every graph
    that uses it, read with get_value. A protocol, so graph code knows one without importing
    the compiler that defines it (theanine.compile.shared)."""

    def get_value(self, borrow: bool = False, return_internal_type: bool = False) -> Any: ...

    def set_value(self, value: Any, borrow: bool = False) -> None: ...


class Constant(Variable):
    """A Variable with a fixed value known when the graph is built."""

    def __init__(self, type, data, name: str | None = None):
        super().__init__(type, name=name)
        self.data = data

    def signature(self) -> tuple:
        """A hashable key equal for Constants with the same type and value (used by merge)."""
        d = self.data
        if hasattr(d, "tobytes"):
            return (self.type, d.shape, d.tobytes())
        return (self.type, d)

    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        d = self.data
        if getattr(d, "size", 2) == 1:
            return repr(d.item()) if hasattr(d, "item") else repr(d)
        return f"Constant{{{d.shape}}}" if hasattr(d, "shape") else f"Constant{{{d!r}}}"

    def clone(self) -> Constant:
        c = type(self)(self.type, self.data, name=self.name)
        c.trace = self.trace
        return c


class Apply:
    """One application of an Op to input Variables, producing output Variables."""

    def __init__(self, op: Op, inputs: Sequence[Variable], outputs: Sequence[Variable]):
        self.op = op
        self.inputs = list(inputs)
        self.trace = user_trace()
        self.outputs = []
        for i, out in enumerate(outputs):
            out.owner, out.index, out.trace = self, i, self.trace
            self.outputs.append(out)
        self.tag = Tag()

    @property
    def out(self) -> Variable:
        assert len(self.outputs) == 1
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"{self.op}({', '.join(map(str, self.inputs))})"

    def __setstate__(self, state: dict) -> None:
        from theanine.graph.pickling import restore_apply

        restore_apply(self, state)

    def __copy__(self) -> Apply:
        new = object.__new__(Apply)
        new.__dict__.update(self.__dict__)
        return new


class Op:
    """An operation. Subclasses define meaning; backends define speed.

    - `make_node(*inputs) -> Apply`: check input types, build output types (static shapes).
    - `perform(node, inputs) -> tuple`: the NumPy reference implementation.
    - `pullback(node, inputs, outputs, output_grads) -> list`: symbolic input gradients
      (None where an input is disconnected or not differentiable).
    - `infer_shape(node, input_shapes) -> list`: symbolic output shapes from input shapes.

    - optional `connection_pattern(node) -> list`: per input, one bool per output saying
      whether gradients may flow from that output to that input (default: all connected); an
      input connected only through zero derivatives (floor, argmax) is still connected.

    `__props__` names the attributes that make two Ops equal (and lets merge find duplicates).
    `view_of` maps an output index to the input it may alias, so compile can copy where needed.
    """

    __props__: tuple[str, ...] = ()
    view_of: dict[int, int] = {}

    def _props(self) -> tuple:
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._props() == other._props()

    def __hash__(self) -> int:
        return hash((type(self), self._props()))

    def __str__(self) -> str:
        name = type(self).__name__
        if not self.__props__:
            return name
        return f"{name}{{{', '.join(f'{p}={getattr(self, p)!r}' for p in self.__props__)}}}"

    __repr__ = __str__

    def make_node(self, *inputs) -> Apply:
        raise NotImplementedError

    def __call__(self, *inputs, **kwargs):
        node = self.make_node(*inputs, **kwargs)
        from theanine.config import config

        if config.compute_test_value != "off":
            from theanine.graph.test_values import compute_test_values

            compute_test_values(node, config.compute_test_value)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def perform(self, node: Apply, inputs: Sequence[Any]) -> tuple:
        raise NotImplementedError(f"{self} has no perform")

    def py_fn(self, node: Apply):
        """A Python callable f(*input_arrays) returning the output (single output) or a tuple.

        The reference backend binds these into one generated function; ops override this with a
        direct NumPy callable to keep per-call overhead low.
        """
        perform = self.perform
        if len(node.outputs) == 1:
            return lambda *args: perform(node, args)[0]
        return lambda *args: perform(node, args)

    def pullback(self, node: Apply, inputs, outputs, output_grads) -> list:
        raise NotImplementedError(f"{self} has no gradient")

    def infer_shape(self, node: Apply, input_shapes) -> list:
        raise NotImplementedError(f"{self} has no infer_shape")

