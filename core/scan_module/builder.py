"""`scan()`: Theano's loop constructor. It calls the user's step function once on placeholder
variables to build the inner graph, finds the variables the step reads from outside (shared
variables, outer symbols) and the shared variables it updates (random streams), and wraps it
all in one Scan node."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from theanine.graph.basic import Constant, MissingInputError, SharedValue, Variable, graph_error
from theanine.graph.traversal import clone_graph, graph_inputs
from theanine.scan_module.op import Scan
from theanine.tensor.basic import as_tensor_variable, constant
from theanine.tensor.math import neq


class until:  # noqa: N801 (Theano's name)
    """Returned by a step function (alone or with its outputs and updates) to stop the loop
    after the first step whose `condition` is true."""

    def __init__(self, condition):
        condition = as_tensor_variable(condition)
        if condition.ndim != 0:
            raise graph_error(f"until: the condition must be a scalar, got {condition.type}")
        self.condition = condition


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _slice_var(outer: Variable, label: str) -> Variable:
    """A placeholder for one entry of `outer` along its first axis."""
    return outer.type.clone(shape=outer.type.shape[1:])(label)


def _name(v, default: str) -> str:
    return v.name if getattr(v, "name", None) else default


class _Spec:
    """The user's arguments sorted into the loop's parts, with their placeholders."""

    def __init__(self, who: str):
        self.who = who
        self.seqs: list[Variable] = []  # outer sequences (reversed for go_backwards)
        self.seq_taps: list[list[int]] = []
        self.seq_slices: list[list[Variable]] = []  # per sequence, per tap (user's order)
        self.inits: list[Variable] = []  # outer initial states, [depth, ...]
        self.state_taps: list[list[int]] = []
        self.state_slices: list[list[Variable]] = []
        self.out_kinds: list = []  # per user output: ("state", j) or ("nit", None)
        self.nonseq_outer: list[Variable] = []

    def fn_args(self) -> list[Variable]:
        args = [v for slices in self.seq_slices for v in slices]
        args += [v for slices in self.state_slices for v in slices]
        return args + self.nonseq_outer


def _sequences(spec: _Spec, sequences, go_backwards: bool) -> None:
    for i, s in enumerate(_as_list(sequences)):
        taps = [0]
        if isinstance(s, dict):
            if "input" not in s:
                raise graph_error(f"{spec.who}: sequence {i} is a dict without 'input'")
            taps = _as_list(s.get("taps", [0])) or [0]
            s = s["input"]
        s = as_tensor_variable(s)
        if s.ndim == 0:
            raise graph_error(f"{spec.who}: sequence {i} must have at least one dimension to "
                              f"iterate over, got {s.type}")
        taps = [int(t) for t in taps]
        if go_backwards:
            s = s[::-1]
        spec.seqs.append(s)
        spec.seq_taps.append(taps)
        label = _name(s, f"sequence{i}")
        spec.seq_slices.append([_slice_var(s, f"{label}[t{t:+d}]" if t else f"{label}[t]")
                                for t in taps])


def _outputs_info(spec: _Spec, outputs_info) -> None:
    infos = outputs_info if isinstance(outputs_info, (list, tuple)) else [outputs_info]
    for i, info in enumerate(infos):
        taps = [-1]
        if isinstance(info, dict):
            taps = [int(t) for t in _as_list(info.get("taps", [-1]))]
            if info.get("initial") is not None and (not taps or any(t >= 0 for t in taps)):
                raise graph_error(f"{spec.who}: output {i}'s taps must be negative, got {taps}")
            info = info.get("initial")
        if info is None:
            spec.out_kinds.append(("nit", None))
            continue
        init = as_tensor_variable(info)
        depth = -min(taps)
        if taps == [-1]:  # the initial state itself, S[-1] (also dict(initial=h), as Theano)
            outer = init.dimshuffle("x", *range(init.ndim))
            slice_type = init.type
        else:
            if init.ndim == 0:
                raise graph_error(f"{spec.who}: output {i}'s initial state for taps {taps} "
                                  f"must have a leading axis of length {depth}, got a scalar")
            outer = init[:depth]
            slice_type = init.type.clone(shape=init.type.shape[1:])
        label = _name(init, f"output{i}")
        spec.out_kinds.append(("state", len(spec.inits)))
        spec.inits.append(outer)
        spec.state_taps.append(taps)
        spec.state_slices.append([slice_type(f"{label}[t{t:+d}]") for t in taps])


def _non_sequences(spec: _Spec, non_sequences) -> None:
    # fn receives the outer variables themselves, as in Theano (so T.grad(y[i], x) inside fn
    # sees y's graph); the inner graph reads them through placeholders (_inner_graph)
    spec.nonseq_outer = [v if isinstance(v, Variable) else as_tensor_variable(v)
                         for v in _as_list(non_sequences)]


def _parse_result(result, who: str) -> tuple[list, list, Variable | None]:
    """Theano's step-function returns: outputs, updates, an `until`, in any tuple order."""
    outputs, updates, cond = [], [], None
    parts = list(result) if isinstance(result, tuple) else [result]
    if (isinstance(result, tuple) and result and not any(
            isinstance(p, (dict, until, list, tuple)) for p in result)):
        parts = [list(result)]  # a tuple of outputs
    for part in parts:
        if isinstance(part, until):
            cond = part.condition
        elif isinstance(part, dict):
            updates += list(part.items())
        elif (isinstance(part, (list, tuple)) and part and all(
                isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], SharedValue)
                for p in part)):
            updates += list(part)
        elif isinstance(part, (list, tuple)):
            outputs += list(part)
        elif part is not None:
            outputs.append(part)
    for k, o in enumerate(outputs):
        if isinstance(o, until):
            raise graph_error(f"{who}: until must not be among the outputs")
        try:
            outputs[k] = as_tensor_variable(o)
        except (TypeError, ValueError) as e:
            raise graph_error(f"{who}: the step function's output {k} is not a tensor: "
                              f"{type(o).__name__} {o!r}") from e
    return outputs, updates, cond


def _check_state(who: str, k: int, out: Variable, slot: Variable) -> None:
    want = slot.type
    if out.dtype != want.dtype:
        raise graph_error(f"{who}: output {k} is {out.dtype} but its initial state "
                          f"(outputs_info[{k}]) is {want.dtype}; the step function must return "
                          f"the initial state's dtype (cast one of them)")
    if out.ndim != want.ndim:
        raise graph_error(f"{who}: output {k} has {out.ndim} dims but its initial state "
                          f"(outputs_info[{k}]) has {want.ndim}")
    for axis, (a, b) in enumerate(zip(want.shape, out.type.shape)):
        if a == 1 and b != 1:
            raise graph_error(f"{who}: output {k} may have any length along axis {axis} but "
                              f"its initial state has length 1 there (broadcastable); give "
                              f"the initial state an axis of unknown length")


def scan(fn: Callable, sequences=None, outputs_info=None, non_sequences=None, n_steps=None,
         truncate_gradient: int = -1, go_backwards: bool = False, mode=None,
         name: str | None = None, profile=False, allow_gc=None, strict: bool = False,
         return_list: bool = False):
    """Loop `fn` over `sequences` with recurrent `outputs_info`; returns (outputs, updates).

    Theano's semantics: fn receives each sequence's slices (per tap), each recurrent output's
    past values (per tap), then the non_sequences; it returns its outputs, optionally with an
    updates dict and an `until`. `updates` (an OrderedDict) holds the last value of every
    shared variable the step updates; pass it to function(updates=...).
    """
    return build_scan(fn, sequences, outputs_info, non_sequences, n_steps, truncate_gradient,
                      go_backwards, name, strict, return_list)


def build_scan(fn: Callable, sequences, outputs_info, non_sequences, n_steps,
               truncate_gradient: int, go_backwards: bool, name: str | None, strict: bool,
               return_list: bool, default_updates: bool = True):
    """scan(); `default_updates=False` leaves the default updates of the shared variables the
    step reads (random states) out of the loop, so every step reads their values as they are
    before the call: the rows of a Jacobian all see the outer graph's draws."""
    who = "scan" if name is None else f"scan {name!r}"
    spec = _Spec(who)
    _sequences(spec, sequences, go_backwards)
    _outputs_info(spec, outputs_info if outputs_info is not None else [])
    _non_sequences(spec, non_sequences)
    result = fn(*spec.fn_args())
    outputs, updates, cond = _parse_result(result, who)
    if outputs_info is None:
        spec.out_kinds = [("nit", None)] * len(outputs)
    if len(outputs) != len(spec.out_kinds):
        raise graph_error(f"{who}: the step function returned {len(outputs)} outputs but "
                          f"outputs_info describes {len(spec.out_kinds)}")
    states = [None] * len(spec.inits)
    nits = []
    for k, (out, (kind, j)) in enumerate(zip(outputs, spec.out_kinds)):
        if kind == "state":
            _check_state(who, k, out, spec.state_slices[j][0])
            states[j] = out
        else:
            nits.append(out)
    n_user_states = len(spec.inits)
    shared_updates = _collect_updates(updates, outputs, cond) if default_updates else updates
    for var, up in shared_updates:  # each updated shared variable is a state of the loop
        up = as_tensor_variable(up)
        if up.dtype != var.dtype or up.ndim != var.ndim:
            raise graph_error(f"{who}: the update of {var} must be {var.type}, got {up.type}")
        spec.inits.append(var.dimshuffle("x", *range(var.ndim)))
        spec.state_taps.append([-1])
        spec.state_slices.append([var.type.clone()(f"{_name(var, 'shared')}[t-1]")])
        states.append(up)
    inner_in, inner_out, outer_nonseq = _inner_graph(spec, states + nits, cond, shared_updates,
                                                    strict)
    n = _n_steps(spec, n_steps)
    seq_offsets = [[t - min(taps) for t in taps] for taps in spec.seq_taps]
    op = Scan(inner_in, inner_out, seq_offsets, spec.state_taps, len(nits), cond is not None,
              truncate_gradient, name)
    traces = op(n, *spec.seqs, *spec.inits, *outer_nonseq)
    traces = traces if isinstance(traces, list) else [traces]
    n_states = len(spec.inits)
    user = []
    nit_k = 0
    for kind, j in spec.out_kinds:
        if kind == "state":
            user.append(traces[j])
        else:
            user.append(traces[n_states + nit_k])
            nit_k += 1
    new_updates = OrderedDict((var, traces[n_user_states + k][-1])
                              for k, (var, _) in enumerate(shared_updates))
    if len(user) == 1 and not return_list:
        return user[0], new_updates
    return user, new_updates


def _collect_updates(updates: list, outputs: list, cond) -> list:
    """The step's explicit shared-variable updates, then the default updates (random
    streams' states) of the shared variables it reads, transitively."""
    found = list(updates)
    seen = {var for var, _ in found}
    pending = list(outputs) + [up for _, up in found] + ([cond] if cond is not None else [])
    while pending:
        new = []
        for v in graph_inputs([as_tensor_variable(p) for p in pending]):
            up = getattr(v, "default_update", None)
            if isinstance(v, SharedValue) and up is not None and v not in seen:
                seen.add(v)
                new.append((v, up))
        found += new
        pending = [up for _, up in new]
    return found


def _inner_graph(spec: _Spec, outs: list, cond, shared_updates: list, strict: bool):
    """The inner graph's placeholders and outputs, every variable read from outside replaced by
    a placeholder of its own; returns (inner inputs, inner outputs, outer non-sequences)."""
    slots = [v for slices in spec.seq_slices for v in slices]
    for j, slices in enumerate(spec.state_slices):
        order = sorted(range(len(slices)), key=lambda q: spec.state_taps[j][q])
        slots += [slices[q] for q in order]
        spec.state_taps[j] = [spec.state_taps[j][q] for q in order]
    replace = {}
    for var, _ in shared_updates:
        j = len(spec.inits) - len(shared_updates) + [v for v, _ in shared_updates].index(var)
        replace[var] = spec.state_slices[j][0]
    outer_nonseq, nonseq_slots = [], []
    for outer in spec.nonseq_outer:
        if isinstance(outer, Constant) or outer in replace:
            continue  # a constant is read as it is; an updated shared variable is a state
        inner = outer.type.clone()(_name(outer, "non_sequence"))
        replace[outer] = inner
        outer_nonseq.append(outer)
        nonseq_slots.append(inner)
    targets = list(outs) + ([cond] if cond is not None else [])
    known = set(slots) | set(nonseq_slots) | set(replace)
    free = [v for v in graph_inputs(targets, blockers=known)
            if v not in known and not isinstance(v, Constant)]
    for v in free:
        if strict and isinstance(v, SharedValue):
            raise graph_error(f"{spec.who}: strict=True but the step function reads the shared "
                              f"variable {v} without it being in non_sequences",
                              kind=MissingInputError)
        inner = v.type.clone()(_name(v, "free"))
        replace[v] = inner
        outer_nonseq.append(v)
        nonseq_slots.append(inner)
    inputs = slots + nonseq_slots
    _, new_outs, _ = clone_graph(inputs, targets, replace={**replace,
                                                            **{v: v for v in inputs}})
    if cond is not None and new_outs[-1].dtype != "bool":
        new_outs[-1] = neq(new_outs[-1], 0)
    return inputs, new_outs, outer_nonseq


def _n_steps(spec: _Spec, n_steps) -> Variable:
    """The number of steps: the user's n_steps, else the shortest sequence's usable length."""
    from theanine.tensor.math import cast, minimum

    if n_steps is not None:
        n = as_tensor_variable(n_steps)
        if n.ndim != 0 or n.dtype not in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                          "uint32"):
            raise graph_error(f"{spec.who}: n_steps must be an integer scalar, got {n.type}")
        return cast(n, "int64")
    if not spec.seqs:
        raise graph_error(f"{spec.who}: no sequences and no n_steps: give n_steps to say how "
                          f"many steps to run")
    n = None
    for s, taps in zip(spec.seqs, spec.seq_taps):
        span = max(taps) - min(taps)
        static = s.type.shape[0]
        length = (constant(static - span, dtype="int64") if static is not None
                  else cast(s.shape[0] - span, "int64"))
        n = length if n is None else minimum(n, length)
    return n


__all__ = ["scan", "until"]
