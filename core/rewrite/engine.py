"""Running rewrites: the node-rewriter walk (fixed point, time budget, trace inheritance,
type checks on replacements) and `rewrite_graph`, the entry point the compiler calls."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import replace
from time import perf_counter

from theanine.backend import Backend
from theanine.config import config
from theanine.graph.basic import Apply, TraceScope, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.plugins.manager import PluginCollected
from theanine.rewrite.db import (
    PASSES,
    NodePass,
    NodeRewriter,
    RewriteDB,
    all_dbs,
    register_rewrite,
)
from theanine.rewrite.query import RewriteQuery, as_query, backend_tags
from theanine.tensor.type import TensorType

# The whole pass sequence repeats while something changes (a later pass can expose work for an
# earlier one, e.g. stabilize leaving `--x` for canonicalize), at most this many times.
MAX_ROUNDS = 4


class RewriteWarning(UserWarning):
    """A rewrite was skipped (it failed or proposed a bad replacement) or a pass ran out of time."""


def rewrite_graph(fgraph: FunctionGraph, query: RewriteQuery | str = "FAST_RUN",
                  backend: Backend | None = None, include: Iterable[str] = (),
                  exclude: Iterable[str] = ()) -> None:
    """Rewrite `fgraph` in place with the rewrites `query` selects (a RewriteQuery, a mode's
    `query`, or "FAST_RUN", "FAST_COMPILE", "NONE") for `backend`.

    `include` and `exclude` add tags to the query (e.g. exclude=["stabilize"]). A tag some
    backend declares in `rewrite_tags` ("gemm") is left out unless `backend` declares it or the
    query includes it. The query's excluded tags are kept on `fgraph.excluded_tags` for
    lowering ('fusion'). Each pass runs to a fixed point within `config.rewrite_time_budget`
    seconds; on time-out it stops with a RewriteWarning and the graph stays valid (every
    replacement is complete when it is made).
    """
    query = as_query(query).including(*include).excluding(*exclude)
    fgraph.excluded_tags = query.exclude
    if not query.include:
        return
    load_plugin_rewrites()
    own = set(backend.rewrite_tags) if backend is not None else set()
    others = set(backend_tags()) - own - query.include
    query = replace(query, exclude=query.exclude | others)
    from theanine.compile.profiling import phase

    budget = config.rewrite_time_budget
    start = perf_counter()
    for _ in range(MAX_ROUNDS):
        changed = False
        for entry in PASSES.ordered():
            rewriter = entry.rewriter
            if isinstance(rewriter, NodePass):
                with phase("rewrite", entry.name):
                    changed |= rewriter.apply(fgraph, budget, query)
            elif query.selects(entry.tags):
                with phase("rewrite", entry.name):
                    changed |= bool(rewriter.apply(fgraph, budget))
        if not changed or perf_counter() - start > budget:
            return


def _collect_plugin_rewrites() -> list[tuple[RewriteDB, str]]:
    """Hand `register_rewrite` to every plugin's `theanine_register_rewrites` hook; the
    (database, name) of each rewrite they added."""
    from theanine.plugins.manager import call_hook

    before = {db.name: set(db.entries) for db in all_dbs()}
    call_hook("theanine_register_rewrites", register_rewrite)
    return [(db, name) for db in all_dbs() for name in db.entries
            if name not in before.get(db.name, ())]


def _forget_plugin_rewrites(added: list[tuple[RewriteDB, str]]) -> None:
    """Remove the rewrites plugins added, so `reset_plugins()` leaves the built-in ones."""
    for db, name in added:
        db.entries.pop(name, None)


_PLUGIN_REWRITES: PluginCollected[list[tuple[RewriteDB, str]]] = PluginCollected(
    _collect_plugin_rewrites, _forget_plugin_rewrites)


def load_plugin_rewrites() -> None:
    """Register the plugins' rewrites (once, until `reset_plugins()`)."""
    _PLUGIN_REWRITES.get()


def apply_node_rewriters(fgraph: FunctionGraph, rewriters: Sequence[NodeRewriter],
                         budget: float, pass_name: str) -> bool:
    """Walk the nodes in topological order, applying the first rewriter that fires on each,
    until a whole sweep changes nothing or `budget` seconds pass. Returns True if it changed
    the graph.

    Replacements take effect at once (later nodes see them) and the nodes a rewrite creates
    are visited right after it, so chains (shape of shape of ...) resolve in one sweep; the
    node order is rebuilt once per sweep, not per replacement.
    """
    from theanine.compile.profiling import rewrite_stats

    start = perf_counter()
    by_op: dict = {}
    changed_any = False
    stats = rewrite_stats()  # each rewrite's time, when a profiled function compiles
    try:
        while True:
            changed = False
            todo = deque(fgraph.nodes)
            while todo:
                node = todo.popleft()
                if not any(fgraph.clients.get(o) for o in node.outputs):
                    continue  # no longer used: an earlier replacement made it dead
                candidates = by_op.get(node.op)
                if candidates is None:
                    candidates = by_op[node.op] = [r for r in rewriters
                                                   if r.applies_to(node.op)]
                for rewriter in candidates:
                    if perf_counter() - start > budget:
                        warnings.warn(
                            f"rewrite pass {pass_name!r} stopped after {budget:g} s "
                            "(config.rewrite_time_budget); the graph is valid but not fully "
                            "rewritten", RewriteWarning, stacklevel=3)
                        return changed_any
                    if stats is None:
                        pairs = _run_rewriter(fgraph, node, rewriter)
                    else:
                        pairs = _timed_rewriter(fgraph, node, rewriter, stats, pass_name)
                    if pairs:
                        new_nodes: list[Apply] = []
                        for old, new in pairs:
                            _replace(fgraph, old, new, new_nodes)
                        todo.extendleft(reversed(new_nodes))
                        changed = changed_any = True
                        break
            if not changed:
                return changed_any
            fgraph.rebuild_clients()
    finally:
        fgraph.rebuild_clients()


def _replace(fgraph: FunctionGraph, old: Variable, new: Variable,
             new_nodes: list[Apply]) -> None:
    """Point every user of `old` at `new`, updating the client map instead of re-sorting the
    whole graph (re-sorting per replacement would make a pass quadratic). Nodes behind
    `new` that the graph did not have are appended to `new_nodes`, inputs first."""
    clients = fgraph.clients
    users = clients.get(old, [])
    clients[old] = []
    _import(clients, new, new_nodes)  # new nodes that use `old` itself become its clients
    for client, i in users:
        if client == "output":
            fgraph.outputs[i] = new
        else:
            client.inputs[i] = new
        clients[new].append((client, i))


def _import(clients: dict, var: Variable, new_nodes: list[Apply]) -> None:
    """Add the nodes behind `var` that the client map does not know yet, depth-first with an
    explicit stack (a frame is a node and the next input to visit): no recursion limit."""
    if var in clients:
        return
    clients[var] = []
    if var.owner is None:
        return
    frames = [_enter(clients, var.owner)]
    while frames:
        node, i = frames[-1]
        if i == len(node.inputs):
            frames.pop()
            new_nodes.append(node)
            continue
        inp = node.inputs[i]
        if inp not in clients:
            clients[inp] = []
            if inp.owner is not None:
                frames.append(_enter(clients, inp.owner))
                continue
        clients[inp].append((node, i))
        frames[-1] = (node, i + 1)


def _enter(clients: dict, node: Apply) -> tuple[Apply, int]:
    """Start importing `node`: its outputs get (empty) client lists; visit input 0 next."""
    for o in node.outputs:
        clients.setdefault(o, [])
    return (node, 0)


def _timed_rewriter(fgraph: FunctionGraph, node: Apply, rewriter: NodeRewriter, stats: dict,
                    pass_name: str) -> list[tuple[Variable, Variable]]:
    """`_run_rewriter`, its time, try and replacement added to the profile's `stats`."""
    from theanine.compile.profiling import RewriteStat

    t0 = perf_counter()
    pairs = _run_rewriter(fgraph, node, rewriter)
    s = stats.get((pass_name, rewriter.name))
    if s is None:
        s = stats[(pass_name, rewriter.name)] = RewriteStat()
    s.time += perf_counter() - t0
    s.calls += 1
    s.applied += bool(pairs)
    return pairs


def _run_rewriter(fgraph: FunctionGraph, node: Apply,
                  rewriter: NodeRewriter) -> list[tuple[Variable, Variable]]:
    """Call one rewriter on `node` (new nodes inherit node's trace) and check its result."""
    with TraceScope(node.trace):
        try:
            result = rewriter.transform(fgraph, node)
        except Exception as e:  # a broken rewrite must not break compilation
            warnings.warn(f"rewrite {rewriter.name!r} failed on {node} and was skipped: "
                          f"{type(e).__name__}: {e}", RewriteWarning, stacklevel=4)
            return []
        if result is None or result is False:
            return []
        if isinstance(result, dict):
            items = list(result.items())
        elif isinstance(result, (list, tuple)) and len(result) == len(node.outputs):
            items = [(o, n) for o, n in zip(node.outputs, result) if n is not None]
        else:
            raise TypeError(f"rewrite {rewriter.name!r} must return None, a dict or a list of "
                            f"{len(node.outputs)} replacement(s) for {node}, got {result!r}")
        pairs = []
        for old, new in items:
            if new is old:
                continue
            new = conform_replacement(old, new, rewriter.name)
            if new is None:
                return []
            pairs.append((old, new))
        return pairs


def conform_replacement(old: Variable, new: Variable, who: str) -> Variable | None:
    """`new` checked to stand in for `old`: cast to old's dtype if needed; None (with a
    RewriteWarning) if its rank differs or its static shape is less specific or conflicting."""
    if not isinstance(new, Variable):
        raise TypeError(f"rewrite {who!r} proposed {new!r}, which is not a Variable, for {old}")
    if new.type == old.type:
        return new
    if not (isinstance(old.type, TensorType) and isinstance(new.type, TensorType)):
        return new if old.type.is_compatible(new.type) else _refuse(old, new, who)
    if new.ndim != old.ndim:
        return _refuse(old, new, who)
    if new.dtype != old.dtype:
        from theanine.tensor.math import cast

        new = cast(new, old.dtype)
    less_specific = any(o is not None and n is None
                        for o, n in zip(old.type.shape, new.type.shape))
    if less_specific or not old.type.is_compatible(new.type):
        return _refuse(old, new, who)
    return new


def _refuse(old: Variable, new: Variable, who: str) -> None:
    warnings.warn(f"rewrite {who!r} proposed {new} of type {new.type} to replace {old} of type "
                  f"{old.type}; the types are not interchangeable, so it was skipped",
                  RewriteWarning, stacklevel=5)
    return None
