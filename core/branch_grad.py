"""Lazy gradients through ifelse: backprop keeps the work of differentiating a branch inside
that branch. The nodes only one branch of an IfElse needs (its region) are differentiated as
usual, but the gradients they send out of the region wait, and leave it all at once as one
`ifelse(cond, gradients, zeros)`, so a compiled gradient runs the backward work of the chosen
branch only (and never the forward work of the other just for its gradient)."""

from __future__ import annotations

from theanine.graph.basic import Apply, Variable


class Regions:
    """The branch regions of the IfElse nodes among `nodes` (topologically sorted), whose
    results only `seeds` (the gradient's starting points) and other nodes read."""

    def __init__(self, nodes: list[Apply], seeds, wrt):
        from theanine.ifelse import IfElse

        # the seeds and the variables asked for are read from outside
        clients: dict[Variable, list[tuple[Apply | None, int]]] = {
            v: [(None, 0)] for v in [*seeds, *wrt]}
        for n in nodes:
            for i, v in enumerate(n.inputs):
                clients.setdefault(v, []).append((n, i))
        self.owner_regions: dict[Apply, list[tuple[Apply, int]]] = {}
        self.members: dict[tuple[Apply, int], set[Apply]] = {}
        self.last: dict[int, list[tuple[Apply, int]]] = {}  # position -> regions ending there
        position = {n: k for k, n in enumerate(nodes)}
        for node in nodes:  # inner IfElses first: regions of a node come innermost first
            if not isinstance(node.op, IfElse):
                continue
            k = node.op.n_outs
            for side, span in ((0, slice(1, 1 + k)), (1, slice(1 + k, 1 + 2 * k))):
                region = _region(clients, node, span)
                if not region:
                    continue
                key = (node, side)
                self.members[key] = region
                for n in region:
                    self.owner_regions.setdefault(n, []).append(key)
                self.last.setdefault(min(position[n] for n in region), []).append(key)
        self.pending: dict[tuple[Apply, int], list[tuple[Variable, Variable]]] = {}

    def direct(self, node: Apply, in_grads: list, out_grads: list) -> list:
        """IfElse `node`'s input gradients, where a value its branch's region computes gets
        the output's gradient itself: the region's gradients leave it behind an ifelse of the
        condition anyway, and so it reads no other ifelse (both can become one)."""
        if (node, 0) not in self.members and (node, 1) not in self.members:
            return in_grads
        k = node.op.n_outs
        out = list(in_grads)
        for j in range(1, 1 + 2 * k):
            region = self.members.get((node, 0 if j <= k else 1), ())
            if node.inputs[j].owner in region and out[j] is not None:
                out[j] = out_grads[(j - 1) % k]
        return out

    def hold(self, node: Apply, inp: Variable, g: Variable) -> bool:
        """Keep gradient `g` of `inp` from region node `node` until its region ends, if it
        leaves one (True), else let backprop add it at once (False)."""
        for key in self.owner_regions.get(node, []):
            if inp.owner not in self.members[key]:
                self.pending.setdefault(key, []).append((inp, g))
                return True
        return False

    def release(self, position: int, zeros, add) -> list[tuple[Variable, Variable]]:
        """The gradients leaving the regions that end at `position`, each region's behind one
        ifelse of its condition, as (input, gradient) for backprop to add (or hold again)."""
        from theanine.ifelse import ifelse
        from theanine.tensor.math import cast

        out = []
        for key in self.last.get(position, []):
            held = self.pending.pop(key, [])
            if not held:
                continue
            sums: dict[Variable, Variable] = {}
            for inp, g in held:
                sums[inp] = add(sums[inp], g) if inp in sums else g
            node, side = key
            blank = [zeros(v) for v in sums]
            grads = [g if g.dtype == z.dtype else cast(g, z.dtype)
                     for g, z in zip(sums.values(), blank)]
            chosen = ifelse(node.inputs[0], *((grads, blank) if side == 0 else (blank, grads)))
            for inp, g in zip(sums, chosen):
                if not self.hold(node, inp, g):
                    out.append((inp, g))
        return out


def _region(clients, node: Apply, span: slice) -> set[Apply]:
    """The nodes whose results only the inputs `span` of IfElse `node` (and each other) read."""
    owned: set[Apply] = set()
    todo = [v.owner for v in node.inputs[span] if v.owner is not None]
    while todo:
        n = todo.pop()
        if n in owned:
            continue
        users = [c for o in n.outputs for c in clients.get(o, [])]
        if users and all(c in owned if c is not node else span.start <= i < span.stop
                         for c, i in users):
            owned.add(n)
            todo.extend(v.owner for v in n.inputs if v.owner is not None)
    return owned
