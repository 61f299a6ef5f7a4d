"""Symbolic graph structures (Variable, Apply, Op), traversal and FunctionGraph."""

from theanine.graph.basic import (
    Apply,
    Constant,
    GraphError,
    MissingInputError,
    Op,
    TraceScope,
    Variable,
    format_trace,
    graph_error,
    is_located,
    located,
    user_trace,
)
from theanine.graph.fgraph import FunctionGraph
from theanine.graph.traversal import ancestors, clone_graph, graph_inputs, toposort

__all__ = [
    "Apply", "Constant", "FunctionGraph", "GraphError", "MissingInputError", "Op", "TraceScope",
    "Variable",
    "ancestors", "clone_graph", "format_trace", "graph_error", "graph_inputs", "is_located",
    "located", "toposort", "user_trace",
]
