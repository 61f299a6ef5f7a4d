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
from theanine.graph.traversal import ancestors, clone_graph, toposort
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
    outputs = node.outputs
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

    # the gradient graph reads the step's own results (tanh's derivative reads its output):
    # those are recorded in the forward traces, so read them there instead of recomputing
    inner_out = new_pending + new_acc + [g for _, _, g in seq_grads]
    used = set(ancestors(inner_out))
    recorded = {i: out.type(f"output{i}[t]") for i, out in enumerate(step_out[:len(outputs)])
                if out in used and out.owner is not None}
    keep = {v: v for v in fresh + [g for _, g in g_slots] + pending_slots
            + [s for _, s in acc_slots] + list(recorded.values())}
    if recorded:
        _, inner_out, _ = clone_graph([], inner_out, replace={
            **keep, **{step_out[i]: v for i, v in recorded.items()}})
    inner_out = _shapes_without_recomputing(inner_out, set(keep))

    # outer inputs: reversed sequences, reversed state trajectories, reversed output gradients
    n_back = n if op.truncate_gradient < 0 else minimum(n, op.truncate_gradient)
    back_seqs, back_offsets, back_slices = [], [], []
    for i, (s, offs) in enumerate(zip(seqs, op.seq_offsets)):
        top = max(offs)
        back_seqs.append(s[:n + top][::-1])
        back_offsets.append([top - off for off in offs])
        back_slices += seq_slots[i]
    for j, (init, taps) in enumerate(zip(inits, op.state_taps)):
        # reversed, the trajectory's entry u + m is S[t - m] for backward step u = n - 1 - t
        full = concatenate([init[:op.depth(j)], outputs[j]])
        back_seqs.append(full[::-1])
        back_offsets.append([-t for t in taps] + ([0] if j in recorded else []))
        back_slices += state_slots[j] + ([recorded[j]] if j in recorded else [])
    for i in range(op.n_states, len(outputs)):
        if i in recorded:
            back_seqs.append(outputs[i][::-1])
            back_offsets.append([0])
            back_slices.append(recorded[i])
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
        finals = [_last(traces[k + m], back_inits[k + m]) for m in range(depth)]
        g_init = stack(finals[::-1]) if depth > 1 else finals[0].dimshuffle(
            "x", *range(finals[0].ndim))
        if cut is not None:  # truncated: nothing reaches the initial state
            g_init = switch(cut, zeros_like(g_init), g_init)
        result[1 + op.n_seqs + j] = g_init
        k += depth
    for c, _ in acc_slots:
        result[1 + op.n_seqs + op.n_states + c] = _last(traces[k], back_inits[k])
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


def _last(trace, init):
    """The backward loop's last carried value: trace[-1], or the initial value when no step
    ran (`init` has one entry; concatenating it with at most one entry keeps this cheap)."""
    from theanine.tensor.join import concatenate

    return concatenate([init, trace[-1:]])[-1]


def _shapes_without_recomputing(outputs: list, given: set) -> list:
    """The gradient graph `outputs` rebuilt so that each SumToShapeOf(g, x) whose x is a value
    of the forward step needed only for its shape gets that shape inferred from the step's
    inputs instead, and x is not recomputed. The forward step ran without error on these very
    inputs, so its shapes can be inferred without the checks its ops would make."""
    from theanine.tensor.elemwise import SumToShapeOf
    from theanine.tensor.join import _int_vector
    from theanine.tensor.shape_ops import shape_tuple

    memo: dict = {}

    def shape_of(v):
        if v not in memo:
            node = v.owner
            if node is None or v in given:
                memo[v] = shape_tuple(v)
            else:
                ins = [shape_of(i) for i in node.inputs]
                try:
                    shapes = None if None in ins else node.op.infer_shape(node, ins)
                except NotImplementedError:
                    shapes = None
                memo[v] = None if shapes is None else tuple(
                    s if s is not None else e
                    for s, e in zip(v.type.shape, shapes[v.index]))
        return memo[v]

    def shape_only(node, i) -> bool:
        if type(node.op) is not SumToShapeOf or node.op.from_shape or i != 1:
            return False
        x = node.inputs[1]
        return x.owner is not None and x not in given and shape_of(x) is not None

    nodes = toposort(outputs, blockers=list(given))
    needed = set(outputs)
    for node in reversed(nodes):  # what is computed for its value, not only its shape
        if any(o in needed for o in node.outputs):
            needed.update(v for i, v in enumerate(node.inputs) if not shape_only(node, i))
    new = {v: v for v in given}
    for node in nodes:
        if not any(o in needed for o in node.outputs):
            continue
        ins = [new.get(v, v) for v in node.inputs]
        if shape_only(node, 1) and node.inputs[1] not in needed:
            new[node.outputs[0]] = SumToShapeOf(from_shape=True)(
                ins[0], _int_vector(shape_of(node.inputs[1])))
            continue
        if all(a is b for a, b in zip(ins, node.inputs)):
            continue  # unchanged: keep the node
        rebuilt = Apply(node.op, ins, [o.type() for o in node.outputs])
        rebuilt.trace = node.trace
        new.update(zip(node.outputs, rebuilt.outputs))
    return [new.get(v, v) for v in outputs]
