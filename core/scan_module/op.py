"""The Scan op: a loop whose body is an inner graph, run once per step.

Outer inputs are `[n_steps, *sequences, *initial_states, *non_sequences]` and outer outputs
`[*state_traces, *nit_traces]` (see `Scan`). Its `perform` (the NumPy reference) walks the inner
graph node by node each step; the compiled backends lower the same inner graph into their own
programs. Its gradient is another Scan running backwards (scan_module/grad.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Constant, Op, Variable, graph_error
from theanine.graph.traversal import toposort
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.type import DISCRETE_DTYPES, TensorType


class Scan(Op):
    """A loop over an inner graph (`inner_inputs` -> `inner_outputs`).

    inner_inputs: the slice of each sequence at each of its offsets (`seq_offsets`, step t
    reads `seq[t + offset]`), each state at each of its negative taps (`state_taps`, step t
    reads `S[t + tap]`), then the non-sequences. inner_outputs: each state's new value, the
    `n_nit` outputs not fed back, then (when `until`) the scalar stop condition.
    `keep[i]`: None to return output i's whole trace, an int k for only its last k steps.
    """

    def __init__(self, inner_inputs: Sequence[Variable], inner_outputs: Sequence[Variable],
                 seq_offsets: Sequence[Sequence[int]], state_taps: Sequence[Sequence[int]],
                 n_nit: int, until: bool = False, truncate_gradient: int = -1,
                 name: str | None = None, keep: Sequence[int | None] | None = None):
        self.inner_inputs = list(inner_inputs)
        self.inner_outputs = list(inner_outputs)
        self.seq_offsets = tuple(tuple(int(o) for o in offs) for offs in seq_offsets)
        self.state_taps = tuple(tuple(int(t) for t in taps) for taps in state_taps)
        self.n_nit = int(n_nit)
        self.until = bool(until)
        self.truncate_gradient = int(truncate_gradient)
        self.name = name
        n_out = len(self.state_taps) + self.n_nit
        self.keep = tuple(keep) if keep is not None else (None,) * n_out
        self.n_nonseq = len(self.inner_inputs) - self.n_seq_slices - self.n_state_slices
        if self.n_nonseq < 0 or len(self.inner_outputs) != n_out + self.until:
            raise ValueError("Scan: inner inputs and outputs do not match the taps")
        self._nodes: list[Apply] | None = None
        self._lazy = None  # the inner graph with its ifelses made lazy (step_runner)

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __str__(self):
        return "Scan" if self.name is None else f"Scan{{{self.name}}}"

    def __getstate__(self):
        return {**self.__dict__, "_nodes": None, "_lazy": None}

    # -- the layout of the inner graph ----------------------------------------------------------
    @property
    def n_seqs(self) -> int:
        return len(self.seq_offsets)

    @property
    def n_states(self) -> int:
        return len(self.state_taps)

    @property
    def n_seq_slices(self) -> int:
        return sum(map(len, self.seq_offsets))

    @property
    def n_state_slices(self) -> int:
        return sum(map(len, self.state_taps))

    def depth(self, j: int) -> int:
        """How many past values state j reads: the leading length of its initial state."""
        return -min(self.state_taps[j])

    def inner_nodes(self) -> list[Apply]:
        """The inner graph's nodes in topological order."""
        if self._nodes is None:
            self._nodes = toposort(self.inner_outputs)
        return self._nodes

    def describe(self) -> str:
        """How errors name this loop: 'scan' or "scan 'name'"."""
        return "scan" if self.name is None else f"scan {self.name!r}"

    def with_keep(self, keep: Sequence[int | None]) -> Scan:
        """The same loop returning only the last `keep[i]` steps of output i (None: all)."""
        return Scan(self.inner_inputs, self.inner_outputs, self.seq_offsets, self.state_taps,
                    self.n_nit, self.until, self.truncate_gradient, self.name, keep)

    # -- the node -------------------------------------------------------------------------------
    def make_node(self, n_steps, *outer) -> Apply:
        n_steps = as_tensor_variable(n_steps)
        if n_steps.ndim != 0 or n_steps.dtype not in ("int8", "int16", "int32", "int64",
                                                       "uint8", "uint16", "uint32"):
            raise graph_error(f"{self.describe()}: n_steps must be an integer scalar, got "
                              f"{n_steps.type}")
        outer = [as_tensor_variable(v) for v in outer]
        expected = self.n_seqs + self.n_states + self.n_nonseq
        if len(outer) != expected:
            raise graph_error(f"{self.describe()}: expected {expected} outer inputs, got "
                              f"{len(outer)}")
        seqs = outer[:self.n_seqs]
        inits = outer[self.n_seqs:self.n_seqs + self.n_states]
        k = 0
        for i, s in enumerate(seqs):
            for _ in self.seq_offsets[i]:
                self._check_outer(self.inner_inputs[k], s, 1, f"sequence {i}")
                k += 1
        for j, s in enumerate(inits):
            for _ in self.state_taps[j]:
                self._check_outer(self.inner_inputs[k], s, 1, f"initial state {j}")
                k += 1
        for j, s in enumerate(outer[self.n_seqs + self.n_states:]):
            self._check_outer(self.inner_inputs[k], s, 0, f"non-sequence {j}")
            k += 1
        static_n = getattr(n_steps, "data", None)
        static_n = None if static_n is None or self.until else int(static_n)
        outs = []
        for i, v in enumerate(self.inner_outputs[:self.n_states + self.n_nit]):
            n = static_n if self.keep[i] is None or static_n is None else min(
                static_n, self.keep[i])
            outs.append(TensorType(v.dtype, (n,) + v.type.shape)())
        return Apply(self, [n_steps, *outer], outs)

    def _check_outer(self, inner: Variable, outer: Variable, lead: int, what: str) -> None:
        want = inner.type
        if outer.dtype != want.dtype or outer.ndim != want.ndim + lead:
            raise graph_error(f"{self.describe()}: {what} must be {want.dtype} with "
                              f"{want.ndim + lead} dims, got {outer.type}")

    # -- the reference --------------------------------------------------------------------------
    def perform(self, node: Apply, inputs) -> tuple:
        n_steps, *outer = inputs
        n_steps = int(n_steps)
        seqs = outer[:self.n_seqs]
        inits = outer[self.n_seqs:self.n_seqs + self.n_states]
        nonseqs = outer[self.n_seqs + self.n_states:]
        self.check_lengths(n_steps, [np.shape(s)[0] for s in seqs],
                           [np.shape(s)[0] for s in inits])
        traces = [None] * (self.n_states + self.n_nit)
        run = self.step_runner()
        done = n_steps
        for t in range(n_steps):
            args = [s[t + off] for s, offs in zip(seqs, self.seq_offsets) for off in offs]
            for j, taps in enumerate(self.state_taps):
                for tap in taps:
                    args.append(inits[j][self.depth(j) + t + tap] if t + tap < 0
                                else traces[j][t + tap])
            results = run(args + list(nonseqs))
            for i, r in enumerate(results[:len(traces)]):
                if traces[i] is None:
                    shape = np.shape(inits[i])[1:] if i < self.n_states else np.shape(r)
                    traces[i] = np.empty((n_steps,) + shape,
                                         dtype=node.outputs[i].type.numpy_dtype)
                self.check_step_value(i, r, traces[i], t)
                traces[i][t] = r
            if self.until and bool(results[-1]):
                done = t + 1
                break
        result = []
        probe = None
        for i, trace in enumerate(traces):
            if trace is None:  # no step ran: an empty trace of the initial state's shape
                if i >= self.n_states and None in node.outputs[i].type.shape[1:] and \
                        probe is None:
                    probe = self._probe_step(run, seqs, inits, nonseqs)
                shape = (np.shape(inits[i])[1:] if i < self.n_states
                         else self._empty_nit_shape(node, i, probe))
                trace = np.empty((0,) + tuple(shape), dtype=node.outputs[i].type.numpy_dtype)
            trace = trace[:done]
            if self.keep[i] is not None:
                trace = trace[max(done - self.keep[i], 0):]
            result.append(trace)
        return tuple(result)

    def _probe_step(self, run, seqs, inits, nonseqs) -> list | None:
        """The step's results on zero-filled inputs of the shapes a step would read, to learn
        the shapes of outputs not fed back when no step runs; None if the step fails on them."""
        args = [np.zeros(np.shape(s)[1:], np.asarray(s).dtype)
                for s, offs in zip(seqs, self.seq_offsets) for _ in offs]
        args += [np.zeros(np.shape(v)[1:], np.asarray(v).dtype)
                 for v, taps in zip(inits, self.state_taps) for _ in taps]
        try:
            with np.errstate(all="ignore"):
                return run(args + list(nonseqs))
        except Exception:  # the shapes stay unknown; _empty_nit_shape says so
            return None

    def _empty_nit_shape(self, node: Apply, i: int, probe: list | None = None) -> tuple:
        shape = node.outputs[i].type.shape[1:]
        if None in shape and probe is not None:
            return np.shape(probe[i])
        if None in shape:
            raise ValueError(f"{self.describe()}: output {i} has no step to take its shape "
                             f"from (n_steps is 0) and its shape {shape} is not static")
        return shape

    def check_lengths(self, n_steps: int, seq_lengths: Sequence[int],
                      init_lengths: Sequence[int]) -> None:
        """Raise naming the scan when n_steps is negative, a sequence is too short for it, or
        an initial state does not hold the past values its taps read (every backend checks
        a call through this before its first step)."""
        if n_steps < 0:
            raise ValueError(f"{self.describe()}: n_steps must be >= 0, got {n_steps} (with "
                             f"n_steps taken from the sequences: one is shorter than the span "
                             f"of its taps)")
        for i, (n, offs) in enumerate(zip(seq_lengths, self.seq_offsets)):
            need = n_steps + max(offs)
            if n < need:
                raise ValueError(f"{self.describe()}: sequence {i} has {n} entries but "
                                 f"{n_steps} steps with taps up to offset {max(offs)} need "
                                 f"{need}")
        for j, n in enumerate(init_lengths):
            if n < self.depth(j):
                raise ValueError(f"{self.describe()}: the initial state of output {j} has "
                                 f"{n} entries along its first axis but its taps "
                                 f"{list(self.state_taps[j])} need {self.depth(j)}")

    def check_step_value(self, i: int, value, trace: np.ndarray, t: int) -> None:
        """Raise naming the scan and the output when step t's value does not fit its trace (a
        state whose shape is not its initial state's, an output whose shape changes)."""
        if np.shape(value) != trace.shape[1:]:
            kind = "state" if i < self.n_states else "output"
            first = "its initial state's" if i < self.n_states else "step 0's"
            raise ValueError(f"{self.describe()}: {kind} {i} has shape {trace.shape[1:]} "
                             f"({first}) but the step function returned shape "
                             f"{np.shape(value)} at step {t}; a scan's outputs keep one shape")

    def step_runner(self):
        """A callable mapping the inner inputs' values to the inner outputs' values, walking the
        inner graph with each node's NumPy implementation."""
        from theanine.graph.fgraph import FunctionGraph
        from theanine.ifelse import capture_branches

        if self._lazy is None:  # an ifelse in the step runs only its chosen branch
            self._lazy = FunctionGraph(self.inner_inputs, self.inner_outputs)
            capture_branches(self._lazy)
        inner = self._lazy
        nodes = [(n, n.op.py_fn(n)) for n in inner.nodes]
        inner_inputs = inner.inputs
        outputs = inner.outputs

        def run(args):
            values = dict(zip(inner_inputs, args))
            for n, fn in nodes:
                ins = [v.data if isinstance(v, Constant) else values[v] for v in n.inputs]
                r = fn(*ins)
                if len(n.outputs) == 1:
                    values[n.outputs[0]] = r
                else:
                    values.update(zip(n.outputs, r))
            return [v.data if isinstance(v, Constant) else values[v] for v in outputs]

        return run

    # -- shapes and gradients -------------------------------------------------------------------
    def infer_shape(self, node: Apply, input_shapes) -> list:
        if self.until:
            raise NotImplementedError("a while loop's length is known only once it has run")
        n = node.inputs[0]
        inits = input_shapes[1 + self.n_seqs:1 + self.n_seqs + self.n_states]
        shapes = []
        for i, out in enumerate(node.outputs):
            if i < self.n_states:
                rest = tuple(inits[i][1:])
            elif None not in out.type.shape[1:]:
                rest = out.type.shape[1:]
            else:
                raise NotImplementedError("the shape of a scan output not fed back")
            lead = n if self.keep[i] is None else _min_entry(n, self.keep[i])
            shapes.append((lead,) + rest)
        return shapes

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        """n_steps is connected to nothing; every other input to every output (a sound
        over-approximation: grad() sums zeros where there is no dependence)."""
        n_out = len(node.outputs)
        return [[False] * n_out] + [[inp.dtype not in DISCRETE_DTYPES] * n_out
                                    for inp in node.inputs[1:]]

    def pullback(self, node, inputs, outputs, output_grads) -> list:
        from theanine.scan_module.grad import scan_pullback

        return scan_pullback(node, output_grads)


def _min_entry(n, k: int):
    from theanine.tensor.math import minimum

    return minimum(n, k)
