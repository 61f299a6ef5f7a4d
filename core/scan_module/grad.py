"""The gradient of a Scan: backpropagation through time as another Scan running backwards.

Step t of the forward loop maps (sequence slices, past states, non-sequences) to (new states,
outputs). The backward loop visits t = n-1 .. 0 (truncate_gradient: only the last steps) and
recomputes step t from the recorded states, then takes its vector-Jacobian product. It carries,
per float state j of depth k, k "pending" gradients: pending[m] is what later steps have sent so
far to S_j[t - m]; at step t the state's cotangent is its outer gradient plus pending[0], and
its taps' gradients are added to the shifted window. Non-sequence gradients accumulate in
carried sums; sequence gradients are emitted per step and placed back outside the loop.
"""

from __future__ import annotations

from theanine.graph.basic import Apply, Constant, graph_error
from theanine.graph.traversal import clone_graph
from theanine.tensor.type import DISCRETE_DTYPES


def _float(v) -> bool:
    return v.dtype not in DISCRETE_DTYPES


def scan_pullback(node: Apply, output_grads: list) -> list:
    """Gradients of the Scan `node`'s inputs given its outputs' gradients (one per output)."""
    from theanine.gradient import grad
    from theanine.scan_module.op import Scan
    from theanine.tensor.join import concatenate, stack
    from theanine.tensor.math import add, lt, minimum, switch, zeros_like
    from theanine.tensor.subtensor import inc_subtensor

    op: Scan = node.op
    if op.until:
        raise graph_error(f"{op.describe()}: the gradient of a loop that stops on until() is "
                          f"not supported")
    if any(k is not None for k in op.keep):
        raise graph_error(f"{op.describe()}: the gradient of a loop that keeps only its last "
                          f"steps cannot be taken (take it before compiling)")
    n, *outer = node.inputs
    seqs = outer[:op.n_seqs]
    inits = outer[op.n_seqs:op.n_seqs + op.n_states]
    nonseqs = outer[op.n_seqs + op.n_states:]

    # the forward step again, on fresh placeholders
    fresh = [v.type(v.name) for v in op.inner_inputs]
    _, step_out, _ = clone_graph(op.inner_inputs, op.inner_outputs,
                                 replace=dict(zip(op.inner_inputs, fresh)))
    k = 0
    seq_slots = []
    for offs in op.seq_offsets:
        seq_slots.append(fresh[k:k + len(offs)])
        k += len(offs)
    state_slots = []
    for taps in op.state_taps:
        state_slots.append(fresh[k:k + len(taps)])
        k += len(taps)
    nonseq_slots = fresh[k:]

    # the outer gradient of each output at step t, and the carried gradients
    g_slots, known = [], {}
    pending = {}  # state j -> its k placeholders
    for i, out in enumerate(step_out[:op.n_states + op.n_nit]):
        if not _float(out):
            continue
        g = out.type(f"g{i}[t]")
        g_slots.append((i, g))
        cot = g
        if i < op.n_states:
            pending[i] = [out.type(f"pending{i}[{m}]") for m in range(op.depth(i))]
            cot = add(g, pending[i][0])
        if not isinstance(out, Constant):
            known[out] = add(known[out], cot) if out in known else cot
    acc_slots = [(c, v.type(f"sum_grad{c}")) for c, v in enumerate(nonseq_slots) if _float(v)]
    wrt = [v for v in fresh if _float(v)]
    grads = dict(zip(wrt, grad(None, wrt, known_grads=known, disconnected_inputs="ignore",
                               return_disconnected="zero") if known else
                     [zeros_like(v) for v in wrt]))

    # the backward loop's inner graph
    new_pending, pending_slots = [], []
    for j, slots in pending.items():
        taps = op.state_taps[j]
        depth = op.depth(j)
        for m in range(depth):
            parts = []
            if m + 1 < depth:
                parts.append(slots[m + 1])
            if -(m + 1) in taps:
                parts.append(grads[state_slots[j][taps.index(-(m + 1))]])
            value = parts[0] if parts else zeros_like(slots[m])
            for p in parts[1:]:
                value = add(value, p)
            new_pending.append(value)
            pending_slots.append(slots[m])
    new_acc = [add(slot, grads[nonseq_slots[c]]) for c, slot in acc_slots]
    seq_grads = [(i, q, grads[v]) for i, vs in enumerate(seq_slots) for q, v in enumerate(vs)
                 if _float(v)]

    # outer inputs: reversed sequences, reversed state trajectories, reversed output gradients
    n_back = n if op.truncate_gradient < 0 else minimum(n, op.truncate_gradient)
    back_seqs, back_offsets, back_slices = [], [], []
    for i, (s, offs) in enumerate(zip(seqs, op.seq_offsets)):
        top = max(offs)
        back_seqs.append(s[:n + top][::-1])
        back_offsets.append([top - off for off in offs])
        back_slices += seq_slots[i]
    for j, (init, taps) in enumerate(zip(inits, op.state_taps)):
        full = concatenate([init[:op.depth(j)], node.outputs[j]])
        back_seqs.append(full[::-1])
        back_offsets.append([-t for t in taps])
        back_slices += state_slots[j]
    for i, g in g_slots:
        back_seqs.append(output_grads[i][::-1])
        back_offsets.append([0])
        back_slices.append(g)
    back_inits = []
    for j in pending:
        state = inits[j]
        back_inits += [zeros_like(state[:1])] * op.depth(j)
    back_inits += [zeros_like(nonseqs[c]).dimshuffle("x", *range(nonseqs[c].ndim))
                   for c, _ in acc_slots]
    inner_in = back_slices + pending_slots + [s for _, s in acc_slots] + nonseq_slots
    inner_out = new_pending + new_acc + [g for _, _, g in seq_grads]
    back = Scan(inner_in, inner_out, back_offsets,
                [(-1,)] * (len(pending_slots) + len(acc_slots)), len(seq_grads),
                name=None if op.name is None else f"grad of {op.name}")
    traces = back(n_back, *back_seqs, *back_inits, *nonseqs)
    traces = traces if isinstance(traces, list) else [traces]

    # the inputs' gradients
    result = [None] * (1 + len(outer))
    cut = lt(n_back, n) if op.truncate_gradient >= 0 else None
    k = 0
    for j in pending:
        depth = op.depth(j)
        finals = [traces[k + m][-1] for m in range(depth)]
        g_init = stack(finals[::-1]) if depth > 1 else finals[0].dimshuffle(
            "x", *range(finals[0].ndim))
        if cut is not None:  # truncated: nothing reaches the initial state
            g_init = switch(cut, zeros_like(g_init), g_init)
        result[1 + op.n_seqs + j] = g_init
        k += depth
    for c, _ in acc_slots:
        result[1 + op.n_seqs + op.n_states + c] = traces[k][-1]
        k += 1
    by_seq: dict[int, object] = {}
    for i, q, _ in seq_grads:
        g_rev = traces[k]
        k += 1
        off = op.seq_offsets[i][q]
        total = by_seq.get(i, zeros_like(seqs[i]))
        start = n - n_back + off
        by_seq[i] = inc_subtensor(total[start:n + off], g_rev[::-1])
    for i, g in by_seq.items():
        result[1 + i] = g
    return result
