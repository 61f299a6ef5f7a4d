"""A Scan node taken apart into editable pieces and put back together: what the loop rewrites
(rewrite/scan.py) edit. Each piece pairs an outer variable with its inner placeholder(s), so a
rewrite can drop, add or replace pieces and `build` makes the new node."""

from __future__ import annotations

from dataclasses import dataclass, field

from theanine.graph.basic import Apply, Variable
from theanine.graph.traversal import clone_graph
from theanine.scan_module.op import Scan


@dataclass
class SeqPiece:
    """An outer sequence and its inner slices: step t reads `outer[t + offset]`."""

    outer: Variable
    slices: list[tuple[int, Variable]]


@dataclass
class StatePiece:
    """A fed-back output: its initial state, its taps' placeholders, its new value, and which
    outer output (None once nothing outside reads it) it was."""

    init: Variable
    taps: list[tuple[int, Variable]]
    new: Variable
    keep: int | None
    out: Variable | None


@dataclass
class NitPiece:
    """An output not fed back: its inner value and the outer trace it was (None if new)."""

    value: Variable
    keep: int | None
    out: Variable | None


@dataclass
class ScanLayout:
    """The pieces of one Scan node; `build()` makes the equivalent node from them."""

    node: Apply
    n_steps: Variable
    seqs: list[SeqPiece] = field(default_factory=list)
    states: list[StatePiece] = field(default_factory=list)
    nits: list[NitPiece] = field(default_factory=list)
    nonseqs: list[tuple[Variable, Variable]] = field(default_factory=list)
    until: Variable | None = None

    @classmethod
    def of(cls, node: Apply) -> ScanLayout:
        op: Scan = node.op
        n, *outer = node.inputs
        lay = cls(node, n)
        inner = iter(op.inner_inputs)
        for s, offs in zip(outer[:op.n_seqs], op.seq_offsets):
            lay.seqs.append(SeqPiece(s, [(o, next(inner)) for o in offs]))
        inits = outer[op.n_seqs:op.n_seqs + op.n_states]
        for j, (init, taps) in enumerate(zip(inits, op.state_taps)):
            lay.states.append(StatePiece(init, [(t, next(inner)) for t in taps],
                                         op.inner_outputs[j], op.keep[j], node.outputs[j]))
        for i in range(op.n_states, op.n_states + op.n_nit):
            lay.nits.append(NitPiece(op.inner_outputs[i], op.keep[i], node.outputs[i]))
        lay.nonseqs = list(zip(outer[op.n_seqs + op.n_states:], inner))
        lay.until = op.inner_outputs[-1] if op.until else None
        return lay

    @property
    def op(self) -> Scan:
        return self.node.op

    def inner_inputs(self) -> list[Variable]:
        return ([v for s in self.seqs for _, v in s.slices]
                + [v for s in self.states for _, v in s.taps] + [v for _, v in self.nonseqs])

    def inner_outputs(self) -> list[Variable]:
        tail = [] if self.until is None else [self.until]
        return [s.new for s in self.states] + [p.value for p in self.nits] + tail

    def substitute(self, replace: dict[Variable, Variable]) -> None:
        """Rebuild the inner graph with inner variables replaced (`replace`: old -> new)."""
        keep = {v: v for v in self.inner_inputs()}
        _, outs, _ = clone_graph([], self.inner_outputs(), replace={**keep, **replace})
        outs = iter(outs)
        for s in self.states:
            s.new = next(outs)
        for p in self.nits:
            p.value = next(outs)
        if self.until is not None:
            self.until = next(outs)

    def build(self) -> list[Variable]:
        """The new node's outputs, one per piece of `states + nits`, in that order."""
        op = self.op
        new = Scan(self.inner_inputs(), self.inner_outputs(),
                   [[o for o, _ in s.slices] for s in self.seqs],
                   [[t for t, _ in s.taps] for s in self.states], len(self.nits),
                   self.until is not None, op.truncate_gradient, op.name,
                   [s.keep for s in self.states] + [p.keep for p in self.nits])
        outs = new(self.n_steps, *[s.outer for s in self.seqs], *[s.init for s in self.states],
                   *[o for o, _ in self.nonseqs])
        return outs if isinstance(outs, list) else [outs]

    def replacements(self, outs: list[Variable]) -> dict[Variable, Variable]:
        """{old outer output: its new one} for the pieces that came from the old node (`outs`
        from `build`)."""
        return {p.out: new for p, new in zip(self.states + self.nits, outs) if p.out is not None}
