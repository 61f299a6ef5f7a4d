"""The C backend's lazy conditional: each branch of a LazyIfElse is lowered and rendered by a
child emitter as a function of the same C program, and the program calls only the one the
condition chooses. A branch value that is (a view of) a value from outside, a constant or an
earlier value of the branch is copied, as the reference's results are new arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from theanine.backends.cpu_c.library import c_impl
from theanine.graph.basic import Apply
from theanine.graph.fgraph import FunctionGraph
from theanine.ifelse import Branch, LazyIfElse, shared_outputs

if TYPE_CHECKING:
    from theanine.backends.cpu_c.program import Emitter


def _render(em: Emitter, branch: Branch, name: str) -> list[int]:
    """Render `branch` as function `name`; the indices of its outputs to copy: those sharing
    memory with an input, a constant or an earlier output (the reference's are all new)."""
    from theanine.backends.cpu_c.backend import lower_for_c
    from theanine.backends.cpu_c.limits import check_ranks
    from theanine.backends.cpu_c.program import Emitter

    fgraph = FunctionGraph(branch.inputs, branch.outputs)
    check_ranks(fgraph)
    child = Emitter(fgraph, lower_for_c(em.backend, fgraph), em.blas, em.vector_math,
                    em.backend, parent=em, prefix=name + "_")
    child.emit_function(f"th_{name}")
    return shared_outputs(fgraph)


@c_impl.register(LazyIfElse)
def lazy_ifelse(em: Emitter, k: int, node: Apply) -> None:
    """each branch a C function of the same program; only the chosen one is called"""
    op: LazyIfElse = node.op
    prefix = f"{em.prefix}if{k}"
    copies = [_render(em, op.then, f"{prefix}_then"), _render(em, op.other, f"{prefix}_else")]
    then_vals, else_vals = op.split(node.inputs[1:])

    def refs(values) -> str:
        return "{" + (", ".join(f"(PyObject *){em.ref(v)}" for v in values) or "NULL") + "}"

    cond = em.ref(node.inputs[0])
    slots = [em.new_slot(o) for o in node.outputs]
    lines = [f"    {{ /* step {k}: ifelse */",
             f"    int c = PyObject_IsTrue((PyObject *){cond}); if (c < 0) goto fail;",
             f"    PyObject *tin[] = {refs(then_vals)}, *ein[] = {refs(else_vals)};",
             f"    PyObject *out[{len(slots)}];",
             f"    if ((c ? th_{prefix}_then(state, tin, out, NULL) : th_{prefix}_else(state, ein, "
             f"out, NULL)) < 0) goto fail;"]
    for j, s in enumerate(slots):
        lines.append(f"    v[{s}] = out[{j}];")
        aliased = [str(int(j in c)) for c in copies]
        if any(a == "1" for a in aliased):  # shares memory: copy it, as perform does
            lines += [f"    if (c ? {aliased[0]} : {aliased[1]}) {{",
                      f"        v[{s}] = PyArray_NewCopy((PyArrayObject *)out[{j}], "
                      "NPY_CORDER);",
                      f"        Py_DECREF(out[{j}]); if (!v[{s}]) goto fail; }}"]
    em.lines += lines + ["    }"]
