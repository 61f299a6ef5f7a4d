"""The rewrite engine: rewriters in named, ordered databases selected by tags, and the
standard passes (merge, constant folding, canonicalize, shape, stabilize, scan, specialize).

The compiler calls `rewrite_graph(fgraph, mode.query, backend)`: a mode is a RewriteQuery over
the databases' tags, as in Theano; plugins add rewrites with `register_rewrite` (the `register`
callback handed to the `theanine_register_rewrites` hook).
"""

from theanine.rewrite import (  # noqa: F401  (importing registers the rewrites)
    basic,
    canonicalize,
    conv,
    scan,
    shape,
    specialize,
    stabilize,
)
from theanine.rewrite.db import (
    GraphRewriter,
    NodeRewriter,
    format_rewrites,
    list_rewrites,
    node_rewriter,
    register_rewrite,
)
from theanine.rewrite.engine import RewriteWarning, rewrite_graph
from theanine.rewrite.query import RewriteQuery

__all__ = ["GraphRewriter", "NodeRewriter", "RewriteQuery", "RewriteWarning", "format_rewrites",
           "list_rewrites", "node_rewriter", "register_rewrite", "rewrite_graph"]
