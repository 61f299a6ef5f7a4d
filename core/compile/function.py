"""`function`: turn symbolic inputs and outputs (plus shared-variable updates) into a callable.

The graph is cloned into a FunctionGraph, rewritten according to the mode, and compiled by the
backend. The returned Function's per-call work is O(number of inputs): a generated wrapper checks
and converts arguments, calls the backend's executor, then stores updates after all outputs
are computed, as the backend's call boundary writes it (theanine.boundary); the run and the
updates hold the locks of the shared variables involved, so a call with its updates is atomic
with respect to other calls and to get_value/set_value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np

from theanine.backend import Backend, get_backend
from theanine.compile.errors import input_labels, located_error, unlocated_error
from theanine.compile.io import In, Out, as_in
from theanine.compile.mode import Mode, get_mode
from theanine.compile.profiling import ProfileStats, as_profile, compiling
from theanine.compile.shared import LockSet, SharedVariable
from theanine.config import config
from theanine.graph.basic import Constant, Variable, format_trace, is_located, located, user_trace
from theanine.graph.fgraph import FunctionGraph
from theanine.graph.traversal import buffer_root, clone_graph, graph_inputs
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.type import TensorType

MAX_WITH_LOCKS = 8  # more shared variables than this are locked through one LockSet


def _python_floats_to_floatx(filt, dtype: np.dtype):
    """`filt` with Theano's one exception to lossless conversion: where allow_downcast is left
    unset, a Python float for a floatX input is rounded to floatX (`In(lr, value=0.1)`,
    `f(lr=0.01)` with floatX=float32); one that overflows is still refused by `filt`."""

    def filt_floats(value):
        if value.__class__ is float:
            with np.errstate(over="ignore"):
                rounded = np.array(value, dtype=dtype)
            if np.isfinite(rounded) or not math.isfinite(value):
                value = rounded
        return filt(value)

    return filt_floats


class UnusedInputError(ValueError):
    """An input given to function() is not needed to compute any output or update."""


def _pairs(mapping, what: str) -> list[tuple]:
    if mapping is None:
        return []
    items = list(mapping.items()) if isinstance(mapping, dict) else list(mapping)
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"function(): {what} must be a dict or a list of (variable, value) "
                            f"pairs, got the item {item!r}")
    return [tuple(p) for p in items]


def _check_updates(updates) -> list[tuple[SharedVariable, Variable]]:
    checked, seen = [], set()
    for target, value in _pairs(updates, "updates"):
        if not isinstance(target, SharedVariable):
            raise TypeError(f"function(): updates must target shared variables; {target} "
                            f"({type(target).__name__}) is not one. Create it with "
                            "theanine.shared(value) or make it an input.")
        if target in seen:
            raise ValueError(f"function(): shared variable {target} is updated twice")
        seen.add(target)
        if not isinstance(value, Variable):  # (a sparse value is one already)
            value = as_tensor_variable(value)
        tt, vt = target.type, value.type
        if vt.dtype != tt.dtype or vt.ndim != tt.ndim or not tt.is_compatible(vt.clone(tt.dtype)):
            raise located(TypeError(
                f"function(): the update of shared variable {target} must have its type {tt}, "
                f"got {value} of type {vt}."
                + (f" Cast it with T.cast(value, '{tt.dtype}')." if vt.dtype != tt.dtype else "")
                + f"\nThe update value was built at:\n{format_trace(value.trace)}"
            ))
        checked.append((target, _keep_static_shape(target, value)))
    return checked


def default_updates(outputs: list, updates: list, givens, no_default_updates) -> list:
    """The (shared variable, default_update) pairs function() adds: for each shared variable
    the outputs and updates read (their default updates too, transitively; with `givens`
    substituted, as Theano does) that has a default update, is not updated explicitly or
    excluded."""
    if no_default_updates is True:
        return []
    excluded = set(no_default_updates or ())
    excluded |= {t for t, _ in updates}
    given = dict(_pairs(givens, "givens")) if givens else {}
    found: list = []
    reached: set = set()
    pending = list(outputs) + [v for _, v in updates]
    while pending:
        new, replacements = [], []
        for v in graph_inputs(pending, blockers=given):
            if v in given:
                if v not in reached:  # read through its replacement, not itself
                    reached.add(v)
                    replacements.append(given[v])
                continue
            up = getattr(v, "default_update", None)
            if isinstance(v, SharedVariable) and up is not None and v not in excluded:
                excluded.add(v)
                new.append((v, up))
        found += new
        pending = [up for _, up in new] + replacements  # they may read other random states
    return found


def _keep_static_shape(target: Variable, value: Variable) -> Variable:
    """`value`, checked at run time to have the static lengths `target` declares where its own
    type leaves them open, so an update or a given cannot break the target's static shape."""
    if any(t is not None and v is None for t, v in zip(target.type.shape, value.type.shape)):
        from theanine.tensor.shape_ops import specify_shape

        return specify_shape(value, target.type.shape)
    return value


def _check_givens(givens) -> dict:
    out = {}
    for old, new in _pairs(givens, "givens"):
        if not isinstance(old, Variable):
            raise TypeError(f"function(): givens keys must be symbolic variables, got {old!r}")
        new = as_tensor_variable(new)
        if not old.type.is_compatible(new.type):
            raise TypeError(f"function(): givens replaces {old} of type {old.type} with {new} of "
                            f"incompatible type {new.type}")
        out[old] = _keep_static_shape(old, new)
    return out


class Function:
    """A compiled function. Call it with positional or keyword arguments (names from the
    input variables or `In(name=...)`); inputs with defaults may be left out."""

    def __init__(self, ins: list[In], outputs: list[Variable], return_list: bool,
                 updates: list[tuple[SharedVariable, Variable]], givens: dict, mode: Mode,
                 backend: Backend, allow_input_downcast: bool | None, on_unused_input: str,
                 trust_input: bool, name: str | None, return_device: bool = False,
                 profile: ProfileStats | None = None):
        # what pickling keeps: the graph and options, never the compiled code (see __reduce__)
        self._pickled_args = dict(
            ins=ins, outputs=outputs, return_list=return_list, updates=updates, givens=givens,
            mode=mode, allow_input_downcast=allow_input_downcast,
            on_unused_input=on_unused_input, trust_input=trust_input, name=name,
            return_device=return_device)
        self.name = name
        self.inputs = ins
        self.mode = mode
        self.backend = backend
        self.trust_input = trust_input
        self._states, updates = _input_states(ins, updates)
        in_vars = [i.variable for i in ins]
        all_outs = list(outputs) + [v for _, v in updates]
        if givens:
            # every free variable not replaced (inputs, shared variables) stays itself
            keep = {v: v for v in graph_inputs(all_outs) if v not in givens}
            _, all_outs, _ = clone_graph(list(givens), all_outs, replace={**keep, **givens})
        used = graph_inputs(all_outs)
        self._check_unused(in_vars, used, on_unused_input)
        self.shared = [v for v in used if isinstance(v, SharedVariable) and v not in in_vars]
        fgraph = FunctionGraph(in_vars + self.shared, all_outs)
        self.original_fgraph = FunctionGraph(fgraph.inputs, fgraph.outputs) if mode.debug \
            else None
        from theanine.ifelse import capture_branches
        from theanine.rewrite import rewrite_graph

        self.profile = profile  # a ProfileStats when profiled (compiling() records into it)
        with compiling(profile, fgraph):
            rewrite_graph(fgraph, mode.query, backend)
            capture_branches(fgraph)
            if self.original_fgraph is not None:
                capture_branches(self.original_fgraph)
            run = mode.executor(fgraph) or backend.compile(fgraph)
        self.fgraph = fgraph
        self.maker = SimpleNamespace(fgraph=fgraph, mode=mode, backend=backend)
        if mode.debug:
            from theanine.compile.debugmode import debug_executor

            run = debug_executor(fgraph, self.original_fgraph, run)
        self._run = run
        self._n_out = len(outputs)
        self._return_list = return_list
        self._update_targets = [t for t, _ in updates]
        self._boundary = backend.boundary()
        self._return_device = return_device
        self._filters = [self._make_filter(k, i, allow_input_downcast)
                         for k, i in enumerate(ins)]
        self._defaults = [self._filter_default(k, i) for k, i in enumerate(ins)]
        self._fast = self._generate_call(fgraph)
        if profile is not None:
            self._fast = profile.timed_call(self._fast)

    @staticmethod
    def _check_unused(in_vars, used, on_unused_input: str) -> None:
        if on_unused_input not in ("raise", "warn", "ignore"):
            raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got "
                             f"{on_unused_input!r}")
        used_set = set(used)
        for k, v in enumerate(in_vars):
            if v in used_set or on_unused_input == "ignore":
                continue
            msg = (f"function(): input {k} ({v}) is not used to compute any output or update. "
                   "Pass on_unused_input='ignore' (or 'warn') if this is intended.")
            if on_unused_input == "raise":
                raise UnusedInputError(msg)
            import warnings

            warnings.warn(msg, stacklevel=4)

    def _make_filter(self, k: int, inp: In, allow_input_downcast: bool | None):
        """The conversion of input k's call-time values, as the backend's call boundary takes
        them (a device backend takes arrays already in its memory in place)."""
        label = f"input {k}" + (f" ({inp.name!r})" if inp.name else "")
        downcast = inp.allow_downcast if inp.allow_downcast is not None else \
            bool(allow_input_downcast)
        t = inp.variable.type
        filt = self._boundary.input_filter(t, label, downcast)
        if (inp.allow_downcast is None and allow_input_downcast is None
                and t.dtype == config.floatX != "float64"):
            return _python_floats_to_floatx(filt, t.numpy_dtype)
        return filt

    def _filter_default(self, k: int, inp: In):
        """The default value of input k converted to its type now, so that function() reports a
        default that does not fit the input."""
        if not inp.has_default:
            return In._NO_DEFAULT
        try:
            value = self._filters[k](inp.default)
        except (TypeError, ValueError) as e:
            raise type(e)(f"function(): the default value of {e}") from None
        return value

    def _generate_call(self, fgraph: FunctionGraph):
        """Generate the positional-call fast path: the input checks, the run and the stores of
        updates and outputs, the last written by the backend's call boundary. Only generated
        names appear in the source."""
        boundary = self._boundary
        env = {"run": self._run, "ndarray": np.ndarray, "locate": self._locate_error}
        boundary.bind(env)
        n_in = len(self.inputs)
        params = [f"a{k}" for k in range(n_in)]
        body = []
        for k, inp in enumerate(self.inputs):
            env[f"filt{k}"] = self._filters[k]
            t = inp.variable.type
            if self.trust_input:
                trusted = boundary.trusted_input(f"a{k}", f"filt{k}")
                if trusted is not None:
                    body.append(trusted)
                continue
            if isinstance(t, TensorType) and all(s is None for s in t.shape):
                env[f"dt{k}"] = t.numpy_dtype
                body.append(f"    if a{k}.__class__ is not ndarray or a{k}.dtype is not dt{k} "
                            f"or a{k}.ndim != {t.ndim}:\n        a{k} = filt{k}(a{k})")
            else:
                body.append(f"    a{k} = filt{k}(a{k})")
        args = params[:]
        for j, s in enumerate(self.shared):
            env[f"s{j}"] = s
            args.append(boundary.shared_value(f"s{j}"))
        # The run and the storing of updates hold the locks of every shared variable read or
        # updated, taken in creation order (one global order: functions never deadlock).
        locked = sorted({*self.shared, *self._update_targets}, key=lambda v: v.lock_order)
        ind = "        " if locked else "    "
        if len(locked) > MAX_WITH_LOCKS:  # Python nests at most 20 blocks in one function
            env["lkall"] = LockSet([v.lock for v in locked])
            body.append("    with lkall:")
        elif locked:
            env.update({f"lk{j}": v.lock for j, v in enumerate(locked)})
            body.append(f"    with {', '.join(f'lk{j}' for j in range(len(locked)))}:")
        body.append(f"{ind}try:\n{ind}    r = run({', '.join(args)})\n"
                    f"{ind}except Exception as e:\n"
                    f"{ind}    located = locate(e, ({', '.join(args)}{',' if args else ''}))\n"
                    f"{ind}    if located is None:\n{ind}        raise\n"
                    f"{ind}    raise located.with_traceback(e.__traceback__) from None")
        outs = fgraph.outputs
        # A returned or stored array must own its memory: copy when its buffer is an input's,
        # a constant's or a shared value's, or was already handed out by an earlier result.
        claimed: set = set()

        def fresh(v: Variable) -> bool:
            root = buffer_root(v)
            new = root.owner is not None and root not in claimed
            claimed.add(root)
            return new

        for j, target in enumerate(self._update_targets):
            env[f"u{j}"] = target
            k = self._n_out + j
            body.append(f"{ind}{boundary.store_update(f'u{j}', f'r[{k}]', fresh(outs[k]))}")
        rets = [boundary.output(f"r[{j}]", fresh(outs[j]), self._return_device)
                for j in range(self._n_out)]
        if self._return_list:
            body.append(f"    return [{', '.join(rets)}]")
        else:
            body.append(f"    return {rets[0]}" if rets else "    return None")
        src = f"def fast({', '.join(params)}):\n" + "\n".join(body) + "\n"
        exec(compile(src, "<theanine-function>", "exec"), env)
        return env["fast"]

    def _bind(self, args: tuple, kwargs: dict) -> list:
        """Match positional and keyword arguments to inputs, filling defaults."""
        n = len(self.inputs)
        if len(args) > n:
            raise TypeError(f"{self._label()} takes {n} inputs ({self._names()}), got "
                            f"{len(args)} positional arguments")
        values: list = list(args) + [In._NO_DEFAULT] * (n - len(args))
        by_name = {i.name: k for k, i in enumerate(self.inputs) if i.name}
        for key, val in kwargs.items():
            k = by_name.get(key)
            if k is None:
                raise TypeError(f"{self._label()} got an unknown keyword argument {key!r}; its "
                                f"inputs are {self._names()}")
            if k < len(args):
                raise TypeError(f"{self._label()} got input {key!r} both by position and by "
                                "keyword")
            values[k] = val
        for k, val in enumerate(values):
            if val is In._NO_DEFAULT and k in self._states:
                values[k] = self._states[k].get_value(borrow=True)
            elif val is In._NO_DEFAULT:
                inp = self.inputs[k]
                if not inp.has_default:
                    raise TypeError(f"{self._label()} is missing input {k}"
                                    + (f" ({inp.name!r})" if inp.name else "")
                                    + f"; its inputs are {self._names()}")
                values[k] = self._defaults[k]
        return values

    def _label(self) -> str:
        return f"function {self.name!r}" if self.name else "the compiled function"

    def _names(self) -> str:
        return "(" + ", ".join(i.name or f"<unnamed {k}>" for k, i in enumerate(self.inputs)) + ")"

    def _locate_error(self, exc: Exception, values: tuple) -> Exception | None:
        """The error the NumPy reference raises for these values, with the node that failed,
        the inputs involved and the user's line that built it, found by re-running the graph
        node by node; so every backend reports a bad call the same way. When the reference
        does not fail, the backend's own error with the call's input shapes. None when `exc`
        already says where it comes from (it is marked `located`)."""
        if is_located(exc):
            return None
        try:  # (values a trusting caller passed unconverted may be anything)
            values = [self._boundary.host_value(v) for v in values]
        except Exception:
            return None
        env = dict(zip(self.fgraph.inputs, values))
        labels = input_labels(self.fgraph.inputs, len(self.inputs),
                              [i.name for i in self.inputs])
        for node in self.fgraph.nodes:
            if getattr(node.op, "communicates", False):
                break  # re-running an exchange with other processes would desynchronize them
            args = [v.data if isinstance(v, Constant) else env[v] for v in node.inputs]
            try:
                outs = node.op.perform(node, args)
            except Exception as reference_error:
                return located_error(reference_error, node, args, labels, env) or \
                    unlocated_error(exc, labels, env)
            env.update(zip(node.outputs, outs))
        return unlocated_error(exc, labels, env)

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != len(self.inputs):
            args = self._bind(args, kwargs)
        return self._fast(*args)

    def __repr__(self) -> str:
        return f"<theanine Function {self._names()} on {self.backend.name}, {self.mode.name}>"

    def _input_index(self, key) -> int:
        """The position of the input `key` names: a position, a name or its Variable."""
        for k, inp in enumerate(self.inputs):
            if key is inp.variable or (isinstance(key, str) and key == inp.name):
                return k
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(self.inputs):
            return key
        raise KeyError(f"{self._label()} has no input {key!r}; its inputs are {self._names()}")

    def __getitem__(self, key):
        """The value input `key` takes when a call leaves it out: its state (an input with an
        update) or its default (Theano's fn[key])."""
        k = self._input_index(key)
        if k in self._states:
            return self._states[k].get_value(borrow=True)
        if self._defaults[k] is In._NO_DEFAULT:
            raise KeyError(f"{self._label()}: input {k} ({self.inputs[k].name!r}) has no value "
                           "between calls (no default and no update)")
        return self._defaults[k]

    def __setitem__(self, key, value) -> None:
        """Set input `key`'s state or default, converted to its type."""
        k = self._input_index(key)
        converted = self._filters[k](value)
        if k in self._states:
            self._states[k].set_value(converted, borrow=True)
        else:
            self._defaults[k] = converted

    @property
    def value(self) -> _Values:
        """Dictionary-like access to the inputs' values between calls (Theano's fn.value)."""
        return _Values(self)

    @property
    def container(self) -> _Containers:
        """Dictionary-like access to the inputs' containers, each with a `.value` (Theano's
        fn.container)."""
        return _Containers(self)

    def copy(self, share_memory: bool = False, swap: dict | None = None,
             delete_updates: bool = False, name: str | None = None,
             profile=None) -> Function:
        """A new function computing the same (Theano's Function.copy). `swap` maps shared
        variables to others of the same type used instead; the rest are shared with this
        function when `share_memory`, else copies holding their current values (updates then
        change only the copy's). `delete_updates` drops the updates; `profile` is function()'s.
        Like Theano's, the copy returns its outputs as a list, even a single one."""
        from theanine.compile.shared import shared as make_shared

        args = dict(self._pickled_args)
        swap = dict(swap or {})
        for old, new in swap.items():
            if not isinstance(old, SharedVariable) or not isinstance(new, SharedVariable) \
                    or old.type != new.type:
                raise TypeError(f"Function.copy: swap must map shared variables to shared "
                                f"variables of the same type, got {old} -> {new}")
        if not share_memory:
            for v in self.shared:
                if v not in swap:
                    swap[v] = make_shared(v.get_value(borrow=False), name=v.name)
        args["givens"] = {**args["givens"], **swap}
        args["updates"] = [] if delete_updates else \
            [(swap.get(t, t), v) for t, v in args["updates"]]
        if delete_updates:  # inputs only the updates read stay inputs, as in Theano
            args["on_unused_input"] = "ignore"
        args["name"] = name if name is not None else self.name
        args["return_list"] = True  # as Theano's copies, which return a list of outputs
        return Function(backend=self.backend, profile=as_profile(profile, args["name"]), **args)

    def __reduce__(self):
        """Pickle the graph, options and backend name; loading compiles again (or takes the
        compiled code from the cache), on the CPU if the backend is missing there."""
        from theanine.compile.pickling import reduce_function

        return reduce_function(self)


class _Values:
    """fn.value: fn[key] as a mapping."""

    def __init__(self, fn: Function):
        self._fn = fn

    def __getitem__(self, key):
        return self._fn[key]

    def __setitem__(self, key, value) -> None:
        self._fn[key] = value


class _Container:
    """One input's storage between calls: `.value` reads and writes it."""

    def __init__(self, fn: Function, key):
        self._fn, self._key = fn, key

    @property
    def value(self):
        return self._fn[self._key]

    @value.setter
    def value(self, v) -> None:
        self._fn[self._key] = v


class _Containers:
    """fn.container: each input's _Container."""

    def __init__(self, fn: Function):
        self._fn = fn

    def __getitem__(self, key) -> _Container:
        self._fn._input_index(key)
        return _Container(self._fn, key)


def _input_states(ins: list[In], updates: list) -> tuple[dict, list]:
    """For each input with an update, a shared variable holding its state (starting at its
    value), and the updates with those states' updates added."""
    from theanine.compile.shared import shared as make_shared

    states, added = {}, []
    for k, inp in enumerate(ins):
        if inp.update is not None:
            v = inp.variable
            start = np.asarray(inp.default, dtype=v.type.numpy_dtype)
            states[k] = make_shared(start, name=inp.name)
            added.append((states[k], inp.update))
    return states, updates + _check_updates(added) if added else updates


def function(inputs: Sequence, outputs=None, mode=None, updates=None, givens=None,
             no_default_updates: bool = False, name: str | None = None,
             allow_input_downcast: bool | None = None, on_unused_input: str | None = None,
             backend: str | None = None, trust_input: bool = False,
             return_device: bool = False, profile=None) -> Function:
    """Compile a callable computing `outputs` from `inputs`.

    inputs: variables or In(...) (shared variables are implicit inputs, never listed).
    outputs: a variable (the call returns one array) or a list (the call returns a list).
    updates: {shared: new_value} or [(shared, new_value)], stored after all outputs are computed.
    givens: {variable: replacement} substituted before compiling.
    mode: 'FAST_RUN', 'FAST_COMPILE', 'DebugMode' or a Mode; backend: a backend name or device
    (default config.device). Shared variables the graph reads that have a `default_update`
    (random states) get it as an update unless `updates` has one for them;
    `no_default_updates=True` (or a list of shared variables) turns that off (for them).
    On a device backend (opencl, cuda) inputs may be arrays already in that device's memory
    (pyopencl Arrays; pycuda GPUArrays, CuPy or PyTorch arrays through the CUDA array interface
    or DLPack), read in place; `return_device=True` returns outputs as the backend's device
    arrays (pyopencl Array, pycuda GPUArray) instead of copying them to the host. Host
    backends return NumPy arrays either way.
    profile: True, a name or a theanine.compile.ProfileStats (default config.profile) gives the
    function a `.profile` recording its calls, compile time and each step's time
    (f.profile.summary() prints it; theanine.compile.profiling).
    on_unused_input: 'raise', 'warn' or 'ignore' for an input no output uses (default
    config.on_unused_input, 'raise').
    trust_input=True passes call-time values to the backend as they are, skipping their
    conversion and checks (lists to arrays, dtype conversion and the downcast check, rank and
    static shape): a speed option for callers that already pass NumPy arrays of each input's
    exact dtype and rank. Other values may give wrong answers or errors from inside the
    backend, never a crash: the C backend still checks each value's type, dtype and rank and
    raises a TypeError naming the input.
    """
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"function(): inputs must be a list of variables, got "
                        f"{type(inputs).__name__}")
    ins = []
    for k, i in enumerate(inputs):
        inp = as_in(i, k)
        v = inp.variable
        if isinstance(v, SharedVariable):
            raise TypeError(f"function(): input {k} ({v}) is a shared variable; shared "
                            "variables are implicit inputs. Use givens= to substitute a value.")
        if isinstance(v, Constant) or v.owner is not None:
            raise TypeError(f"function(): input {k} ({v}) is computed from other variables or "
                            "is a constant; inputs must be free variables (use givens= to "
                            "replace an intermediate)")
        if any(v is other.variable for other in ins):
            raise ValueError(f"function(): input {k} ({v}) is given twice")
        for j, other in enumerate(ins):
            if inp.name is not None and other.name == inp.name:
                raise ValueError(f"function(): inputs {j} and {k} are both named {inp.name!r}; "
                                 "keyword arguments could not tell them apart. Give them "
                                 "different names (In(variable, name=...)).")
        ins.append(inp)
    return_list = isinstance(outputs, (list, tuple))
    outs = [] if outputs is None else list(outputs) if return_list else [outputs]
    outs = [o.variable if isinstance(o, Out) else o for o in outs]  # (sparse ones pass as they are)
    outs = [o if isinstance(o, Variable) else as_tensor_variable(o) for o in outs]
    trace = user_trace()
    try:
        updates = _check_updates(updates)
        updates += _check_updates(default_updates(outs, updates, givens, no_default_updates))
        mode = get_mode(mode)
        if type(mode).executor is not Mode.executor:  # monitoring: the reference, on the host
            backend = "numpy"
        return Function(ins, outs, return_list or outputs is None, updates,
                        _check_givens(givens), mode, get_backend(backend),
                        allow_input_downcast,
                        config.on_unused_input if on_unused_input is None else on_unused_input,
                        trust_input, name, return_device, as_profile(profile, name))
    except (TypeError, ValueError) as e:
        if not is_located(e):
            e.args = (f"{e}\nfunction() was called at:\n{format_trace(trace)}",)
            located(e)
        raise
