"""The C backend's entries for theanine.sparse: library calls of each op's scipy
implementation from the compiled program.

A slot holding a sparse value holds the scipy matrix itself (only sparse ops' host calls read
it), so the program's input check passes sparse inputs through (function()'s filter has
checked them: `limits.input_checks`) and a sparse result is stored as it is; a dense result is
checked as every host call's is."""

from __future__ import annotations

from theanine.backends.cpu_c.library import c_impl
from theanine.backends.cpu_c.program import NPY_TYPES, Emitter
from theanine.graph.basic import Apply, Constant
from theanine.sparse import OPS, SparseType


def _bound(fn, node: Apply):
    """`fn` taking only the node's non-constant inputs (constants, sparse ones included, are
    bound here rather than placed in the program's array constants)."""
    inputs = node.inputs
    if not any(isinstance(v, Constant) for v in inputs):
        return fn

    def call(*args):
        it = iter(args)
        return fn(*[v.data if isinstance(v, Constant) else next(it) for v in inputs])

    return call


@c_impl.register(*OPS)
def sparse_call(em: Emitter, k: int, node: Apply) -> None:
    """scipy.sparse, called from the compiled program"""
    call = em.add_host(_bound(node.op.py_fn(node), node))
    em.host_nodes[call] = node
    if em.root is not em:
        em.loop_host_nodes.append(node)
    args = "".join(f"(PyObject *){em.ref(v)}, " for v in node.inputs
                   if not isinstance(v, Constant))
    L = em.lines
    L.append(f"    {{ /* step {k} */")
    L.append(f"    PyObject *r = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, {call}), "
             f"{args}NULL);")
    L.append("    if (!r) goto fail;")
    for j, o in enumerate(node.outputs):
        item = "r; Py_INCREF(r)" if len(node.outputs) == 1 else f"PySequence_GetItem(r, {j})"
        s = em.new_slot(o)
        if isinstance(o.type, SparseType):
            L.append(f"    v[{s}] = {item}; if (!v[{s}]) {{ Py_DECREF(r); goto fail; }}")
        else:
            L.append(f"    {{ PyObject *item = {item}; v[{s}] = th_host_value(item, "
                     f"{NPY_TYPES[o.dtype]}, {o.ndim}, {call}, {j}, PyTuple_GET_ITEM(state, 4)); "
                     f"Py_XDECREF(item); if (!v[{s}]) {{ Py_DECREF(r); goto fail; }} }}")
    L.append("    Py_DECREF(r);")
    L.append("    }")
