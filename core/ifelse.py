"""`ifelse(condition, then_branch, else_branch)`: Theano's lazy conditional.

Building the graph makes an `IfElse` node, whose inputs are the condition and both branches'
values. Laziness comes when a graph is compiled (`capture_branches`, which function() and the
loops run on every graph): the nodes only one branch needs move into that branch, and the node
becomes a `LazyIfElse` holding each branch as an inner graph over the values it reads from
outside. Its perform, the reference, evaluates the condition, then only the chosen branch;
the compiled backends compile each branch on its own and call the chosen one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from theanine.graph.basic import Apply, Constant, Op, Variable, graph_error
from theanine.graph.traversal import toposort
from theanine.tensor.basic import as_tensor_variable


class IfElse(Op):
    """cond ? then : else for n values at once: inputs [cond, *then, *else], n outputs."""

    __props__ = ("n_outs",)
    view_of: dict[int, int] = {}

    def __init__(self, n_outs: int, name: str | None = None):
        self.n_outs = int(n_outs)
        self.name = name

    def __str__(self):
        return "if{}" if self.name is None else f"if{{{self.name}}}"

    def make_node(self, cond, *branches) -> Apply:
        cond = as_tensor_variable(cond)
        if cond.ndim != 0:
            raise graph_error(f"ifelse: the condition must be a scalar, got {cond} of type "
                              f"{cond.type}")
        branches = [as_tensor_variable(v) for v in branches]
        then, other = branches[:self.n_outs], branches[self.n_outs:]
        outs = []
        for i, (a, b) in enumerate(zip(then, other, strict=True)):
            if a.dtype != b.dtype or a.ndim != b.ndim:
                raise graph_error(f"ifelse: branch value {i} is {a.type} in the then branch but "
                                  f"{b.type} in the else branch; both must have the same dtype "
                                  f"and number of dims")
            shape = tuple(x if x == y else None for x, y in zip(a.type.shape, b.type.shape))
            outs.append(a.type.clone(shape=shape)())
        return Apply(self, [cond, *branches], outs)

    def perform(self, node: Apply, inputs) -> tuple:
        chosen = inputs[1:1 + self.n_outs] if _truth(inputs[0]) else inputs[1 + self.n_outs:]
        return tuple(np.array(v, copy=True) for v in chosen)

    def infer_shape(self, node: Apply, input_shapes) -> list:
        raise NotImplementedError("which branch's shape is known only at run time")

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        n = self.n_outs
        return [[False] * n] + [[i % n == j for j in range(n)] for i in range(2 * n)]

    def pullback(self, node, inputs, outputs, output_grads) -> list:
        from theanine.tensor.allocation import zeros

        def zeros_like(v):  # zeros of v's shape: shape inference spares computing v
            return zeros(v.shape, dtype=v.dtype)

        cond = inputs[0]
        n = self.n_outs
        grads_then, grads_else = [], []
        for i, g in enumerate(output_grads):
            a, b = inputs[1 + i], inputs[1 + n + i]
            if g is None:
                grads_then.append(None)
                grads_else.append(None)
                continue
            grads_then.append(ifelse(cond, g, zeros_like(a)))
            grads_else.append(ifelse(cond, zeros_like(b), g))
        return [None, *grads_then, *grads_else]


def _truth(c) -> bool:
    return bool(np.asarray(c))


def ifelse(condition, then_branch, else_branch, name: str | None = None):
    """then_branch if `condition` (a scalar, true when nonzero) else else_branch, evaluating
    only the chosen branch once compiled. Branches are variables or equal-length lists of
    them, pairwise of the same dtype and rank."""
    single = not isinstance(then_branch, (list, tuple))
    then = [as_tensor_variable(v) for v in ([then_branch] if single else then_branch)]
    other = [as_tensor_variable(v) for v in
             ([else_branch] if not isinstance(else_branch, (list, tuple)) else else_branch)]
    if len(then) != len(other):
        raise graph_error(f"ifelse: the then branch has {len(then)} values but the else branch "
                          f"has {len(other)}")
    outs = IfElse(len(then), name)(condition, *then, *other)
    outs = outs if isinstance(outs, list) else [outs]
    return outs[0] if single else outs


class Branch:
    """One branch as an inner graph: `outputs` computed from `inputs`, placeholders of the
    outer values listed in the LazyIfElse node's inputs."""

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable]):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._nodes: list[Apply] | None = None
        self._steps: list | None = None  # (node, its NumPy callable), made on the first run

    def nodes(self) -> list[Apply]:
        if self._nodes is None:
            self._nodes = toposort(self.outputs)
        return self._nodes

    def __getstate__(self):
        return {**self.__dict__, "_nodes": None, "_steps": None}

    def run(self, values) -> list:
        """The outputs' values from the inputs' values, node by node (NumPy)."""
        if self._steps is None:
            self._steps = [(n, n.op.py_fn(n)) for n in self.nodes()]
        env = dict(zip(self.inputs, values))
        for node, fn in self._steps:
            r = fn(*[v.data if isinstance(v, Constant) else env[v] for v in node.inputs])
            env.update(zip(node.outputs, [r] if len(node.outputs) == 1 else r))
        return [v.data if isinstance(v, Constant) else env[v] for v in self.outputs]


class LazyIfElse(Op):
    """A compiled IfElse: inputs [cond, *then's outer values, *else's outer values]; only the
    chosen branch's inner graph runs."""

    view_of: dict[int, int] = {}

    def __init__(self, then: Branch, other: Branch, name: str | None = None):
        self.then = then
        self.other = other
        self.name = name

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def __str__(self):
        return "lazy_if{}" if self.name is None else f"lazy_if{{{self.name}}}"

    @property
    def inner_outputs(self) -> list[Variable]:
        """Both branches' outputs (for printing the inner graphs)."""
        return self.then.outputs + self.other.outputs

    def make_node(self, cond, *outer) -> Apply:
        outs = [a.type.clone(shape=tuple(x if x == y else None
                                         for x, y in zip(a.type.shape, b.type.shape)))()
                for a, b in zip(self.then.outputs, self.other.outputs)]
        return Apply(self, [cond, *outer], outs)

    def split(self, values: Sequence) -> tuple[list, list]:
        """The outer values (all inputs but the condition) as (then's, else's)."""
        n = len(self.then.inputs)
        return list(values[:n]), list(values[n:])

    def perform(self, node: Apply, inputs) -> tuple:
        then_vals, else_vals = self.split(inputs[1:])
        results = self.then.run(then_vals) if _truth(inputs[0]) else self.other.run(else_vals)
        return tuple(np.array(r, copy=True) for r in results)


def unconditional(outputs: Sequence[Variable]) -> set[Apply]:
    """The nodes computing `outputs` runs whichever way its ifelses go (reached without passing
    through a branch): rewrites that move work (out of a loop) leave the others in place."""
    seen: set[Apply] = set()
    stack = list(outputs)
    while stack:
        node = stack.pop().owner
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(node.inputs[:1] if isinstance(node.op, (IfElse, LazyIfElse))
                     else node.inputs)
    return seen


def shared_outputs(fgraph) -> list[int]:
    """The indices of a branch's outputs whose memory may be an input's, a constant's or an
    earlier output's: a compiled branch copies them, as the reference's results are new."""
    from theanine.graph.traversal import buffer_root

    seen = set(fgraph.inputs)
    shared = []
    for j, v in enumerate(fgraph.outputs):
        root = buffer_root(v)
        if root in seen or isinstance(root, Constant):
            shared.append(j)
        seen.add(root)
    return shared


def _exclusive(fgraph, node: Apply, branch: slice) -> list[Apply]:
    """The nodes whose results only the inputs `branch` of IfElse `node` need, walking up from
    the branch's values (a node is rechecked when one of its clients joins)."""
    owned: dict[Apply, None] = {}
    todo = [v.owner for v in node.inputs[branch] if v.owner is not None]
    while todo:
        n = todo.pop()
        if n in owned:
            continue
        clients = [c for o in n.outputs for c in fgraph.clients.get(o, [])]
        if clients and all(c in owned if c is not node else branch.start <= i < branch.stop
                           for c, i in clients):
            owned[n] = None
            todo.extend(v.owner for v in n.inputs if v.owner is not None)
    return list(owned)


def _branch(fgraph, node: Apply, branch: slice) -> tuple[Branch, list[Variable], list[Apply]]:
    """The branch's inner graph, the outer values it reads and the nodes that moved into it."""
    from theanine.graph.traversal import clone_graph

    owned = _exclusive(fgraph, node, branch)
    inside = {o for n in owned for o in n.outputs}
    outputs = node.inputs[branch]
    read = [v for n in owned for v in n.inputs] + list(outputs)
    free = list(dict.fromkeys(v for v in read if not isinstance(v, Constant)
                              and v not in inside))
    holders = {v: v.type(v.name) for v in free}
    _, inner, _ = clone_graph([], outputs, replace=holders)
    return Branch([holders[v] for v in free], inner), free, owned


def _unlink(fgraph, gone: Apply) -> None:
    """Drop node `gone` from `fgraph`'s client map (it moved into a branch or was replaced)."""
    for i, v in enumerate(gone.inputs):
        fgraph.clients[v] = [(c, j) for c, j in fgraph.clients.get(v, [])
                             if not (c is gone and j == i)]
    for o in gone.outputs:
        fgraph.clients.pop(o, None)


def _merge_same_condition(fgraph) -> None:
    """Make IfElses on the same condition where neither reads the other one node, so work
    their branches share (a value and its gradient) moves into that branch, not outside."""
    groups: dict[Variable, list[Apply]] = {}
    for node in fgraph.nodes:
        if isinstance(node.op, IfElse):
            groups.setdefault(node.inputs[0], []).append(node)
    # one pass in node order gives each node the merge candidates above it, as bits
    candidates = [n for g in groups.values() if len(g) > 1 for n in g]
    bit = {n: 1 << i for i, n in enumerate(candidates)}
    above: dict[Apply, int] = {}
    for node in fgraph.nodes:
        reach = 0
        for v in node.inputs:
            if v.owner is not None:
                reach |= above.get(v.owner, 0) | bit.get(v.owner, 0)
        above[node] = reach
    merged: list[list[Apply]] = []
    for group in groups.values():
        sets: list[tuple[list[Apply], int]] = []
        for node in group if len(group) > 1 else []:  # in order: none reads a later one
            home = next((k for k, (_, m) in enumerate(sets) if not above[node] & m), None)
            if home is None:
                sets.append(([node], bit[node]))
            else:
                members, m = sets[home]
                sets[home] = ([*members, node], m | bit[node])
        merged += [m for m, _ in sets if len(m) > 1]
    for nodes in merged:
        thens = [v for n in nodes for v in n.inputs[1:1 + n.op.n_outs]]
        elses = [v for n in nodes for v in n.inputs[1 + n.op.n_outs:]]
        new = IfElse(len(thens), nodes[0].op.name).make_node(nodes[0].inputs[0], *thens,
                                                             *elses)
        new.trace = nodes[0].trace
        for old, out in zip([o for n in nodes for o in n.outputs], new.outputs):
            fgraph.redirect(old, out)
    if merged:
        fgraph.rebuild_clients()


def capture_branches(fgraph) -> None:
    """Make every IfElse of `fgraph` lazy (in place): each becomes a LazyIfElse whose branches
    hold the nodes only they need. The client map is kept up to date node by node and the
    node order rebuilt once, so many ifelses (a gradient's) compile in linear time."""
    _merge_same_condition(fgraph)
    # innermost first: an IfElse inside another's branch is lazy before it moves there
    found = [n for n in fgraph.nodes if isinstance(n.op, IfElse)]
    for node in found:
        n = node.op.n_outs
        then, then_free, then_owned = _branch(fgraph, node, slice(1, 1 + n))
        other, else_free, else_owned = _branch(fgraph, node, slice(1 + n, 1 + 2 * n))
        lazy = LazyIfElse(then, other, node.op.name)
        new = lazy.make_node(node.inputs[0], *then_free, *else_free)
        new.trace = node.trace
        for gone in [*then_owned, *else_owned]:
            _unlink(fgraph, gone)
        for old, out in zip(node.outputs, new.outputs):
            fgraph.redirect(old, out)
            fgraph.clients[out] = fgraph.clients.get(old, [])
        _unlink(fgraph, node)
        for i, v in enumerate(new.inputs):
            fgraph.clients.setdefault(v, []).append((new, i))
    if found:
        fgraph.rebuild_clients()
