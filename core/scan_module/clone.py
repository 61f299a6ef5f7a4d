"""`theanine.clone` (Theano's theano.clone): a copy of a graph with some variables replaced,
the usual way to reuse an expression with other inputs (e.g. a cost on a second dataset)."""

from __future__ import annotations

from theanine.graph.basic import Variable, graph_error
from theanine.graph.traversal import ancestors, clone_graph
from theanine.tensor.basic import as_tensor_variable


def clone(output, replace=None, strict: bool = True, share_inputs: bool = True):
    """`output` (a variable or a list) rebuilt with each key of `replace` (a dict or pairs)
    replaced by its value. The leaves not replaced are the same variables when share_inputs
    (so the copy still reads the same inputs and shared variables), copies otherwise. With
    strict, a replacement must have the type of what it replaces."""
    outs = list(output) if isinstance(output, (list, tuple)) else [output]
    pairs = list(replace.items()) if isinstance(replace, dict) else list(replace or [])
    memo = {}
    for old, new in pairs:
        if not isinstance(old, Variable):
            raise TypeError(f"clone: replace keys must be symbolic variables, got {old!r}")
        new = as_tensor_variable(new)
        if strict and new.type != old.type:
            raise graph_error(f"clone: {new} (type {new.type}) cannot replace {old} (type "
                              f"{old.type}) with strict=True; cast it, or pass strict=False")
        memo[old] = new
    if share_inputs:
        for v in ancestors(outs, blockers=list(memo)):
            if v.owner is None and v not in memo:
                memo[v] = v
    _, new_outs, _ = clone_graph([], outs, replace=memo)
    return new_outs if isinstance(output, (list, tuple)) else new_outs[0]


__all__ = ["clone"]
