"""Walking graphs: ancestors, topological order, buffer roots, cloning."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from theanine.graph.basic import Apply, Constant, Variable


def ancestors(outputs: Iterable[Variable], blockers: Iterable[Variable] = ()) -> list[Variable]:
    """All variables that `outputs` depend on (outputs included), stopping at `blockers`."""
    blocked = set(map(id, blockers))
    seen: set[int] = set()
    order: list[Variable] = []
    stack = list(outputs)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        order.append(v)
        if v.owner is not None and id(v) not in blocked:
            stack.extend(v.owner.inputs)
    return order


def buffer_root(v: Variable) -> Variable:
    """The variable whose node allocated the memory `v` may share: follow `op.view_of` from
    output to viewed input until a fresh output or a graph input (itself if `v` is fresh)."""
    while v.owner is not None and v.index in v.owner.op.view_of:
        v = v.owner.inputs[v.owner.op.view_of[v.index]]
    return v


def graph_inputs(outputs: Iterable[Variable], blockers: Iterable[Variable] = ()) -> list[Variable]:
    """The ownerless (or blocked) variables that `outputs` depend on, in discovery order."""
    blocked = set(map(id, blockers))
    return [v for v in ancestors(outputs, blockers) if v.owner is None or id(v) in blocked]


def toposort(outputs: Sequence[Variable], blockers: Iterable[Variable] = ()) -> list[Apply]:
    """Apply nodes needed for `outputs`, each after the nodes producing its inputs."""
    blocked = set(map(id, blockers))
    order: list[Apply] = []
    done: set[int] = set()
    for out in outputs:
        stack = [(out, False)]
        while stack:
            v, expanded = stack.pop()
            node = v.owner
            if node is None or id(v) in blocked or id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((v, True))
            for inp in reversed(node.inputs):
                if inp.owner is not None and id(inp.owner) not in done:
                    stack.append((inp, False))
    return order


def clone_graph(inputs: Sequence[Variable], outputs: Sequence[Variable],
                replace: dict | None = None) -> tuple[list[Variable], list[Variable], dict]:
    """Copy the graph between `inputs` and `outputs`; `replace` maps old variables to new ones.

    Returns (new_inputs, new_outputs, memo) where memo maps every old variable to its copy.
    Constants are shared (they are immutable); inputs become fresh clones unless replaced.
    """
    memo: dict[Variable, Variable] = dict(replace or {})
    for v in inputs:
        if v not in memo:
            memo[v] = v.clone()
    for node in toposort(outputs, blockers=list(memo)):
        for v in node.inputs:
            if v not in memo:
                memo[v] = v if isinstance(v, Constant) else v.clone()
        new_inputs = [memo[v] for v in node.inputs]
        new_node = Apply(node.op, new_inputs, [o.clone() for o in node.outputs])
        new_node.trace = node.trace
        for o_old, o_new in zip(node.outputs, new_node.outputs):
            o_new.trace = node.trace
            memo[o_old] = o_new
    for v in outputs:
        if v not in memo:
            memo[v] = v if isinstance(v, Constant) else v.clone()
    return [memo[v] for v in inputs], [memo[v] for v in outputs], memo
