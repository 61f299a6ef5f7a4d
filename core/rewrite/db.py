"""Rewriters and the databases that hold them.

A *node rewriter* looks at one Apply node and proposes replacements for its outputs; it tracks
the ops it applies to so the engine only calls it where it can fire. A *graph rewriter* edits a
whole FunctionGraph at once (merge is one). Rewriters live in named, ordered databases and are
selected by tags: the top-level sequence holds the passes (merge, canonicalize, shape, stabilize,
scan, specialize, merge), and each node-rewriter pass holds its own database of node rewriters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from theanine.graph.basic import Op
from theanine.rewrite.query import MODE_TAGS, RewriteQuery


class NodeRewriter:
    """A local rewrite: `fn(fgraph, node)` returns a list of replacements (one per output, None
    to keep an output), a dict {old variable: new variable}, or None when it does not apply.

    `tracks` lists what the rewrite applies to: Op classes, Op instances, ScalarOps, or strings
    naming one of theanine's own scalar ops ("log", "mul": not another op of the same name);
    None means every node.
    """

    def __init__(self, fn: Callable, tracks: Iterable | None = None, name: str | None = None):
        self.fn = fn
        self.tracks = None if tracks is None else tuple(tracks)
        self.name = name or fn.__name__
        self.__doc__ = fn.__doc__

    def applies_to(self, op: Op) -> bool:
        """True if `op` is one of the tracked ops (always True when nothing is tracked)."""
        if self.tracks is None:
            return True
        from theanine.tensor.elemwise import ScalarOp
        from theanine.tensor.scalar_ops import is_builtin

        scalar = getattr(op, "scalar_op", None)
        for t in self.tracks:
            if isinstance(t, str | ScalarOp):
                if scalar is not None and (is_builtin(scalar, t) if isinstance(t, str)
                                           else scalar == t):
                    return True
            elif isinstance(t, type):
                if isinstance(op, t):
                    return True
            elif t == op:
                return True
        return False

    def transform(self, fgraph, node):
        """Run the rewrite on one node (see the class docstring for the result)."""
        return self.fn(fgraph, node)

    def __repr__(self) -> str:
        return f"NodeRewriter({self.name})"


def node_rewriter(tracks: Iterable | None, name: str | None = None):
    """Decorator turning `fn(fgraph, node)` into a NodeRewriter tracking `tracks`."""

    def wrap(fn: Callable) -> NodeRewriter:
        return NodeRewriter(fn, tracks, name)

    return wrap


class GraphRewriter:
    """A rewrite of a whole FunctionGraph; `apply` edits it in place and says if it changed."""

    name = "graph_rewriter"

    def apply(self, fgraph, budget: float) -> bool:
        """Edit `fgraph` in place within `budget` seconds; return True if anything changed."""
        raise NotImplementedError


class Entry:
    """One registered rewriter: its name, tags (the name is always one) and position."""

    __slots__ = ("name", "rewriter", "tags", "position", "order")

    def __init__(self, name: str, rewriter, tags: Iterable[str], position: float, order: int):
        self.name = name
        self.rewriter = rewriter
        self.tags = frozenset(tags) | {name}
        self.position = position
        self.order = order


_counter = itertools.count()


class RewriteDB:
    """Named rewriters in order (by position, then registration order), selected by tags."""

    def __init__(self, name: str):
        self.name = name
        self.entries: dict[str, Entry] = {}

    def register(self, name: str, rewriter, *tags: str, position: float | None = None) -> None:
        """Add `rewriter` under `name` (names are unique) with `tags`, at `position`."""
        if name in self.entries:
            raise ValueError(f"a rewrite named {name!r} is already registered in {self.name!r}")
        if position is None:
            position = max((e.position for e in self.entries.values()), default=0.0)
        self.entries[name] = Entry(name, rewriter, tags, float(position), next(_counter))

    def query(self, query: RewriteQuery) -> list[Entry]:
        """The entries `query` selects, in order."""
        return [e for e in self.ordered() if query.selects(e.tags)]

    def ordered(self) -> list[Entry]:
        """Every entry, in order."""
        return sorted(self.entries.values(), key=lambda e: (e.position, e.order))

    def __contains__(self, name: str) -> bool:
        return name in self.entries


class NodePass:
    """A pass that applies the node rewriters of its own database to a fixed point."""

    def __init__(self, name: str, default_tags: tuple[str, ...]):
        self.name = name
        self.default_tags = default_tags
        self.db = RewriteDB(name)

    def apply(self, fgraph, budget: float, query: RewriteQuery) -> bool:
        """Run the node rewriters `query` selects over `fgraph` until none fires (or time is
        up)."""
        from theanine.rewrite.engine import apply_node_rewriters

        rewriters = [e.rewriter for e in self.db.query(query)]
        return bool(rewriters) and apply_node_rewriters(fgraph, rewriters, budget, self.name)


# The passes, in the order they run. Positions leave room for plugins to slot passes between.
PASSES = RewriteDB("passes")
NODE_PASSES: dict[str, NodePass] = {}


def _add_pass(name: str, position: float, *tags: str) -> None:
    p = NODE_PASSES[name] = NodePass(name, tags)
    PASSES.register(name, p, *tags, position=position)


_add_pass("canonicalize", 1, "fast_run", "fast_compile")
_add_pass("shape", 2, "fast_run")
_add_pass("stabilize", 3, "fast_run")
_add_pass("scan", 3.5, "fast_run")
_add_pass("specialize", 4, "fast_run")


def all_dbs() -> list[RewriteDB]:
    """The pass sequence and every node pass's database."""
    return [PASSES, *(p.db for p in NODE_PASSES.values())]


def register_rewrite(rewrite, *tags: str, name: str | None = None,
                     position: float | None = None):
    """Add a rewrite to the databases (the `register` callback plugins receive); returns it.

    A NodeRewriter (or a plain `fn(fgraph, node)`, which then applies to every node) goes into
    the node passes named among `tags` ("canonicalize", "shape", "stabilize", "scan", "specialize"),
    tagged with that pass's name; it runs in the modes of that pass unless `tags` names modes
    itself ("fast_run", "fast_compile"). A tag a backend declares in `rewrite_tags` ("gemm")
    makes it run only for the backends declaring it. A GraphRewriter becomes a pass of its
    own, run at `position` (merge runs at 0 and 10, canonicalize 1, shape 2, stabilize 3,
    scan 3.5, specialize 4; default 5) in the modes named by `tags` (default: FAST_RUN only).
    """
    if isinstance(rewrite, GraphRewriter):
        name = name or getattr(rewrite, "name", None) or type(rewrite).__name__
        mode_tags = tuple(tags) or ("fast_run",)
        PASSES.register(name, rewrite, *mode_tags, position=5 if position is None else position)
        return rewrite
    if not isinstance(rewrite, NodeRewriter):
        if not callable(rewrite):
            raise TypeError(f"register_rewrite: expected a NodeRewriter, a GraphRewriter or a "
                            f"function (fgraph, node) -> replacements, got {rewrite!r}")
        rewrite = NodeRewriter(rewrite, None, name)
    passes = [t for t in tags if t in NODE_PASSES]
    if not passes:
        raise ValueError(f"register_rewrite: say which pass {rewrite.name!r} belongs to: one of "
                         f"{', '.join(NODE_PASSES)} among the tags (got {tags})")
    extra = [t for t in tags if t not in NODE_PASSES]
    mode_given = any(t in MODE_TAGS for t in extra)
    for p in passes:
        node_pass = NODE_PASSES[p]
        entry_tags = [p, *extra] if mode_given else [p, *extra, *node_pass.default_tags]
        node_pass.db.register(name or rewrite.name, rewrite, *entry_tags, position=position)
    return rewrite


def list_rewrites() -> list[tuple[str, str, tuple[str, ...]]]:
    """(pass, rewrite name, tags) for every registered rewrite, in the order they run."""
    rows = []
    for entry in PASSES.ordered():
        if isinstance(entry.rewriter, NodePass):
            for sub in entry.rewriter.db.ordered():
                rows.append((entry.name, sub.name,
                             tuple(sorted(sub.tags - {sub.name, entry.name}))))
        else:
            rows.append((entry.name, entry.name, tuple(sorted(entry.tags - {entry.name}))))
    return rows


def format_rewrites() -> str:
    """A table of the registered rewrites (for `theanine info`)."""
    lines = []
    current = None
    for pass_name, name, tags in list_rewrites():
        if pass_name != current:
            lines.append(f"{pass_name}:")
            current = pass_name
        lines.append(f"  {name:<28} {', '.join(tags)}")
    return "\n".join(lines)
