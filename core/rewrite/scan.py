"""Loop rewrites, as Theano's scan optimizations did: work that does not depend on the step moves
out of the loop, work that maps over a sequence becomes one operation over the whole sequence
before the loop, a carried sum of matrix products becomes one matrix product after it, and a
loop whose outputs are read only at their last steps keeps only those steps.

They run in the `scan` pass (FAST_RUN), between stabilize and specialize, so the products they
move out of the loop become GEMMs there. Each edits a `ScanLayout` and builds a new Scan node.
"""

from __future__ import annotations

from theanine.graph.basic import Apply, Constant, Variable
from theanine.graph.traversal import ancestors, clone_graph, toposort
from theanine.ifelse import unconditional
from theanine.rewrite.db import node_rewriter, register_rewrite
from theanine.rewrite.scan_layout import NitPiece, ScanLayout, SeqPiece
from theanine.scan_module.op import Scan
from theanine.tensor.elemwise import DimShuffle, Elemwise
from theanine.tensor.linalg import Dot
from theanine.tensor.math import minimum
from theanine.tensor.subtensor import Subtensor


def _inner_clients(outputs: list[Variable]) -> dict[Variable, list[Apply]]:
    """Each inner variable's client nodes in the inner graph ending at `outputs`."""
    clients: dict[Variable, list[Apply]] = {}
    for n in toposort(outputs):
        for v in n.inputs:
            clients.setdefault(v, []).append(n)
    return clients


def _frontier(moved: list[Apply], outputs: list[Variable]) -> list[Variable]:
    """The outputs of the `moved` nodes that a node staying in the loop reads (values the inner
    graph returns directly stay computed inside, so no output becomes an input)."""
    gone = set(moved)
    returned = set(outputs)
    clients = _inner_clients(outputs)
    return [o for n in moved for o in n.outputs
            if o not in returned and any(c not in gone for c in clients.get(o, []))]


def _rebuilt(lay: ScanLayout) -> dict[Variable, Variable]:
    return lay.replacements(lay.build())


def _read_by_others(lay: ScanLayout, st) -> set[Variable]:
    """The inner variables that the loop's outputs other than state `st` read."""
    others = [p.new for p in lay.states if p is not st] + [p.value for p in lay.nits]
    return set(ancestors(others + ([] if lay.until is None else [lay.until])))


# -- loop-invariant work ---------------------------------------------------------------------------
@node_rewriter([Scan])
def scan_pushout_invariant(fgraph, node):
    """Inner nodes that read only non-sequences and constants run once, before the loop, and
    their results become non-sequences (not those only an ifelse branch needs)."""
    lay = ScanLayout.of(node)
    outer_of = {inner: outer for outer, inner in lay.nonseqs}
    invariant = set(outer_of)
    moved = []
    eager = unconditional(lay.inner_outputs())  # work an ifelse branch holds stays lazy
    for n in toposort(lay.inner_outputs()):
        if n in eager and n.inputs and \
                all(isinstance(v, Constant) or v in invariant for v in n.inputs) and \
                any(v in invariant for v in n.inputs):
            moved.append(n)
            invariant.update(n.outputs)
    push = _frontier(moved, lay.inner_outputs())
    if not push:
        return None
    _, outer, _ = clone_graph([], push, replace=dict(outer_of))
    holders = {v: v.type(v.name) for v in push}
    lay.nonseqs += [(o, holders[v]) for v, o in zip(push, outer)]
    lay.substitute(holders)
    return _rebuilt(lay)


# -- work mapped over sequences -----------------------------------------------------------------
def _mapped(n: Apply, ins: list[Variable], mapped: list[bool]) -> Variable | None:
    """`n` applied to every step at once, or None when it is not an op that maps over a
    leading axis this way. `ins[i]` is input i over all steps where `mapped[i]`, else its
    (invariant) outer value."""
    from theanine.tensor.shape_ops import reshape

    op = n.op
    if isinstance(op, Elemwise) and len(n.outputs) == 1:
        return op(*[v if m else v.dimshuffle("x", *range(v.ndim))
                    for v, m in zip(ins, mapped)])
    if isinstance(op, DimShuffle):
        return ins[0].dimshuffle(0, *["x" if d == "x" else d + 1 for d in op.new_order])
    if isinstance(op, Dot) and mapped == [True, False] and n.inputs[1].ndim == 2:
        a, w = ins
        if a.ndim == 2:
            return op(a, w)
        prod = op(reshape(a, (a.shape[0] * a.shape[1], a.shape[2])), w)
        return reshape(prod, (a.shape[0], a.shape[1], prod.shape[1]))
    return None


@node_rewriter([Scan])
def scan_pushout_seq(fgraph, node):
    """Elementwise ops, transposes and products with a non-sequence matrix (x_t @ W) that read
    only sequence slices, non-sequences and constants run over the whole sequence before the
    loop, and their results become sequences (not those only an ifelse branch needs)."""
    lay = ScanLayout.of(node)
    if lay.until is not None:  # a while loop may stop early: leave its steps' work in it
        return None
    n = lay.n_steps
    outer_of = {inner: outer for outer, inner in lay.nonseqs}
    over_steps: dict[Variable, Variable] = {}
    for s in lay.seqs:
        for off, v in s.slices:
            over_steps[v] = s.outer[off:n + off]
    moved = []
    eager = unconditional(lay.inner_outputs())  # work an ifelse branch holds stays lazy
    for a in toposort(lay.inner_outputs()):
        ins = a.inputs
        if a not in eager or not any(v in over_steps for v in ins) or not all(
                v in over_steps or v in outer_of or isinstance(v, Constant) for v in ins):
            continue
        out = _mapped(a, [over_steps.get(v, outer_of.get(v, v)) for v in ins],
                      [v in over_steps for v in ins])
        if out is None:
            continue
        over_steps[a.outputs[0]] = out
        moved.append(a)
    push = _frontier(moved, lay.inner_outputs())
    while any(v.owner.op.view_of for v in push):  # a view alone saves nothing: keep it inside
        moved = [a for a in moved if a.outputs[0] not in push or not a.op.view_of]
        push = _frontier(moved, lay.inner_outputs())
    if not push:
        return None
    holders = {v: v.type(v.name) for v in push}
    lay.seqs += [SeqPiece(over_steps[v], [(0, holders[v])]) for v in push]
    lay.substitute(holders)
    return _rebuilt(lay)


# -- carried sums of products ----------------------------------------------------------------
LAST, LAST_SLICE = (-1,), ((-1, None, None),)


def _last_step_clients(fgraph, v: Variable) -> list[Apply] | None:
    """The nodes reading `v` (an outer trace), if every one of them reads only its last entry
    (`v[-1]` or `v[-1:]`), else None."""
    users = []
    for client, _ in fgraph.clients.get(v, []):
        if client == "output" or type(client.op) is not Subtensor or \
                client.op.idx_list not in (LAST, LAST_SLICE):
            return None
        users.append(client)
    return users


@node_rewriter([Scan])
def scan_pushout_dot_sum(fgraph, node):
    """A state that only sums `dot(a_t.T, b_t)` over the steps (a gradient's weight sum in
    backpropagation through time) and is read only at its last step becomes one matrix product
    of the stacked a's and b's after the loop."""
    from theanine.tensor.shape_ops import reshape

    lay = ScanLayout.of(node)
    if lay.until is not None:
        return None
    clients = _inner_clients(lay.inner_outputs())
    over_steps = {v: (s.outer, off) for s in lay.seqs for off, v in s.slices}
    for j, st in enumerate(lay.states):
        if len(st.taps) != 1 or st.taps[0][0] != -1 or st.out is None:
            continue
        slot = st.taps[0][1]
        new = st.new
        if new.owner is None or not isinstance(new.owner.op, Elemwise) or \
                new.owner.op.scalar_op.name != "add" or len(new.owner.inputs) != 2 or \
                slot not in new.owner.inputs or clients.get(slot) != [new.owner]:
            continue
        f = new.owner.inputs[1 - new.owner.inputs.index(slot)]
        if f.type.dtype != slot.type.dtype or f.ndim != 2 or f.owner is None or \
                not isinstance(f.owner.op, Dot):
            continue
        at, b = f.owner.inputs
        if at.owner is None or not isinstance(at.owner.op, DimShuffle) or \
                at.owner.op.new_order != (1, 0) or b.ndim != 2:
            continue
        a = at.owner.inputs[0]
        users = _last_step_clients(fgraph, st.out)
        if users is None or a in (slot,) or b in (slot,):
            continue
        if slot in _read_by_others(lay, st):
            continue
        return _replace_dot_sum(node, lay, j, a, b, users, over_steps, reshape)
    return None


def _replace_dot_sum(node, lay: ScanLayout, j: int, a, b, users, over_steps, reshape):
    n = lay.n_steps
    exported = []
    wholes = []
    for v in (a, b):
        if v in over_steps:
            seq, off = over_steps[v]
            wholes.append(seq[off:n + off])
        else:
            exported.append(len(lay.nits))
            lay.nits.append(NitPiece(v, None, None))
            wholes.append(None)
    st = lay.states.pop(j)
    outs = lay.build()
    pairs = lay.replacements(outs)
    extra = iter(outs[len(outs) - len(exported):])
    wholes = [w if w is not None else next(extra) for w in wholes]
    aw, bw = wholes
    a2 = reshape(aw, (aw.shape[0] * aw.shape[1], aw.shape[2]))
    b2 = reshape(bw, (bw.shape[0] * bw.shape[1], bw.shape[2]))
    total = st.init[-1] + Dot()(a2.T, b2)
    for u in users:
        if u.op.idx_list == LAST:
            pairs[u.outputs[0]] = total
        else:  # v[-1:]: one entry, none when no step ran
            pairs[u.outputs[0]] = total.dimshuffle("x", *range(total.ndim))[:minimum(n, 1)]
    return pairs


# -- keeping only the last steps -------------------------------------------------------------
def _steps_read(fgraph, v: Variable) -> int | None:
    """How many of its last entries the readers of trace `v` need, if each reads `v[-k]` or
    `v[-k:]` with a constant k, else None."""
    need = 0
    for client, i in fgraph.clients.get(v, []):
        if client == "output" or type(client.op) is not Subtensor or i != 0:
            return None
        first = client.op.idx_list[0]
        if isinstance(first, int) and not isinstance(first, bool) and first < 0:
            need = max(need, -first)
        elif isinstance(first, tuple) and isinstance(first[0], int) and first[0] < 0 and \
                first[1] is None and first[2] in (None, 1):
            need = max(need, -first[0])
        else:
            return None
    return need or None


@node_rewriter([Scan])
def scan_save_mem(fgraph, node):
    """Outputs read only at their last k steps (h[-1], h[-k:]) keep only those k steps, in a
    buffer of k entries instead of one per step (Theano's scan_save_mem)."""
    lay = ScanLayout.of(node)
    kept = {}
    for p in lay.states + lay.nits:
        if p.keep is None and p.out is not None:
            need = _steps_read(fgraph, p.out)
            if need is not None:
                p.keep = need
                kept[p.out] = p
    if not kept:
        return None
    outs = lay.build()
    pairs = {}
    for p, new in zip(lay.states + lay.nits, outs):
        if p.out in kept:
            for client, _ in fgraph.clients.get(p.out, []):
                pairs[client.outputs[0]] = client.op(new, *client.inputs[1:])
        elif p.out is not None:
            pairs[p.out] = new
    return pairs


# -- dead outputs and inputs -----------------------------------------------------------------
@node_rewriter([Scan])
def scan_remove_dead(fgraph, node):
    """Outputs nothing reads (and no other output needs) and inner inputs the step no longer
    reads are removed from the loop."""
    lay = ScanLayout.of(node)
    changed = False
    read = {p.out for p in lay.states + lay.nits
            if p.out is not None and fgraph.clients.get(p.out)}
    for p in list(lay.nits):
        if p.out not in read:
            lay.nits.remove(p)
            changed = True
    for st in list(lay.states):
        if st.out in read:
            continue
        if not any(v in _read_by_others(lay, st) for _, v in st.taps):
            lay.states.remove(st)
            changed = True
    used = set(ancestors(lay.inner_outputs()))
    before = len(lay.nonseqs) + sum(len(s.slices) for s in lay.seqs)
    lay.nonseqs = [(o, v) for o, v in lay.nonseqs if v in used]
    for s in lay.seqs:
        s.slices = [(off, v) for off, v in s.slices if v in used]
    lay.seqs = [s for s in lay.seqs if s.slices]
    changed |= before != len(lay.nonseqs) + sum(len(s.slices) for s in lay.seqs)
    if not changed:
        return None
    return _rebuilt(lay)


for _rewrite in (scan_remove_dead, scan_pushout_invariant, scan_pushout_dot_sum,
                 scan_pushout_seq, scan_save_mem):
    register_rewrite(_rewrite, "scan")
