"""Inner graphs (a loop's body, a conditional's branch) prepared for a backend to compile as
part of the graph that holds them: cloned, rewritten in the default mode, with their own
ifelses made lazy, as function() prepares a whole graph."""

from __future__ import annotations

from collections.abc import Sequence

from theanine.graph.basic import Variable
from theanine.graph.fgraph import FunctionGraph


def inner_fgraph(inputs: Sequence[Variable], outputs: Sequence[Variable],
                 backend) -> FunctionGraph:
    """The graph from `inputs` to `outputs`, ready for `backend` to lower."""
    from theanine.compile.mode import get_mode
    from theanine.ifelse import capture_branches
    from theanine.rewrite import rewrite_graph

    fgraph = FunctionGraph(inputs, outputs)
    rewrite_graph(fgraph, get_mode(None).query, backend)
    capture_branches(fgraph)
    return fgraph
