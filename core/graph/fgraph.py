"""FunctionGraph: a self-contained graph of inputs and outputs that rewrites edit in place."""

from __future__ import annotations

from collections.abc import Sequence

from theanine.graph.basic import (
    Apply,
    Constant,
    GraphError,
    MissingInputError,
    Variable,
    format_trace,
    located,
)
from theanine.graph.traversal import clone_graph, toposort


class FunctionGraph:
    """Outputs computed from inputs, with a client map (`clients`: variable -> [(node or
    "output", input index)]) so rewrites can point every user of a variable elsewhere.

    The graph is cloned on construction (unless `clone=False`) so rewrites never touch the
    user's variables.
    """

    def __init__(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
                 clone: bool = True):
        if clone:
            inputs, outputs, self.memo = clone_graph(inputs, outputs)
        else:
            self.memo = {}
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        # the tags the compile mode's rewrite query excluded (set by rewrite_graph); lowering
        # honours those that name its own steps ('fusion')
        self.excluded_tags: frozenset[str] = frozenset()
        self._check_inputs()
        self.rebuild_clients()

    def _check_inputs(self) -> None:
        given = set(self.inputs)
        for node in toposort(self.outputs):
            for v in node.inputs:
                if v.owner is None and not isinstance(v, Constant) and v not in given:
                    raise located(MissingInputError(
                        f"Input {v} (type {v.type}) is needed to compute the outputs but was not "
                        f"given to the function.\nIt was created at:\n{format_trace(v.trace)}"
                    ))
        for v in self.outputs:
            if v.owner is None and not isinstance(v, Constant) and v not in given:
                raise GraphError(f"Output {v} is an input that was not given to the function.")

    def toposort(self) -> list[Apply]:
        """The graph's nodes, each after the nodes computing its inputs (Theano's
        FunctionGraph.toposort)."""
        return toposort(self.outputs)

    def redirect(self, old: Variable, new: Variable) -> None:
        """Point every user of `old` (nodes and outputs) at `new`; call rebuild_clients after a
        batch of these."""
        for client, i in self.clients.get(old, []):
            if client == "output":
                self.outputs[i] = new
            else:
                client.inputs[i] = new

    def rebuild_clients(self) -> None:
        """Recompute node order and the map from each variable to the nodes that use it."""
        self.nodes = toposort(self.outputs)
        self.clients: dict[Variable, list[tuple[Apply | str, int]]] = {}
        for v in self.inputs:
            self.clients.setdefault(v, [])
        for node in self.nodes:
            for i, v in enumerate(node.inputs):
                self.clients.setdefault(v, []).append((node, i))
            for o in node.outputs:
                self.clients.setdefault(o, [])
        for i, v in enumerate(self.outputs):
            self.clients.setdefault(v, []).append(("output", i))

    def __str__(self) -> str:
        return f"FunctionGraph({', '.join(map(str, self.outputs))})"
