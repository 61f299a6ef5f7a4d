"""The C backend's entries for shapes, basic indexing, reshape, alloc and shape checks, done in
C through NumPy's C API (views.h) so that a loop body using them never calls Python. When the
C path fails (a bad index, a reshape that does not fit) the op's NumPy implementation runs
instead, so the error is the reference's word for word."""

from __future__ import annotations

from typing import TYPE_CHECKING

from theanine.backends.cpu_c.library import c_impl
from theanine.graph.basic import Apply
from theanine.tensor.allocation import Alloc
from theanine.tensor.shape_ops import MakeVector, Reshape, Shape, SpecifyShape
from theanine.tensor.subtensor import ELLIPSIS, SYM, IncSubtensor, Subtensor

if TYPE_CHECKING:
    from theanine.backends.cpu_c.program import Emitter

ENTRY = "TH_ENTRY"  # views.h: the length is the next entry input
ANY = "TH_ANY"  # views.h: any length


def _array(name: str, values: list) -> str:
    return f"static const long long {name}[] = {{{', '.join(map(str, values)) or '0'}}};"


def _index_spec(idx_list: tuple) -> list:
    """views.h's encoding of a basic index (see th_index_tuple)."""
    spec = []
    for e in idx_list:
        if isinstance(e, tuple):
            spec.append(2)
            for c in e:
                spec += [0, 0] if c is None else [2, 0] if c == SYM else [1, int(c)]
        elif e == SYM:
            spec.append(1)
        elif e is None:
            spec.append(3)
        elif e == ELLIPSIS:
            spec.append(4)
        else:
            spec += [0, int(e)]
    return spec


def _with_retry(em: Emitter, node: Apply, lines: list[str], c_expr: str) -> None:
    """The node's output is `c_expr` (a new reference, or NULL); on NULL the op's NumPy
    implementation gives the result or raises the reference's error."""
    call = em.add_host(node.op.py_fn(node))
    em.host_nodes[call] = node
    out = node.outputs[0]
    args = ", ".join(f"(PyObject *){em.ref(v)}" for v in node.inputs)
    s = em.new_slot(out)
    em.include("views.h")
    em.lines += ["    {", *lines, f"    v[{s}] = {c_expr};", f"    if (!v[{s}]) {{",
                 "        PyErr_Clear();",
                 f"        PyObject *r = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(fns, "
                 f"{call}), {args + ', ' if args else ''}NULL);",
                 f"        v[{s}] = th_host_value(r, {out.type.numpy_dtype.num}, {out.ndim}, "
                 f"{call}, 0, PyTuple_GET_ITEM(state, 4));",
                 "        Py_XDECREF(r);",
                 f"        if (!v[{s}]) goto fail;",
                 "    }", "    }"]


def _refs(em: Emitter, variables) -> str:
    return "{" + (", ".join(f"(PyObject *){em.ref(v)}" for v in variables) or "NULL") + "}"


@c_impl.register(Subtensor)
def subtensor(em: Emitter, k: int, node: Apply) -> None:
    """a view made by NumPy's C indexing (basic indices)"""
    if type(node.op) is not Subtensor:  # AdvancedSubtensor
        return em.host_call(k, node)
    idx = node.op.idx_list
    _with_retry(em, node, [f"    {_array('spec', _index_spec(idx))}",
                           f"    PyObject *args[] = {_refs(em, node.inputs[1:])};"],
                f"th_subtensor({em.ref(node.inputs[0])}, {len(idx)}, spec, args)")


@c_impl.register(IncSubtensor)
def inc_subtensor(em: Emitter, k: int, node: Apply) -> None:
    """a copy with x[index] set or incremented, by NumPy's C indexing (basic indices)"""
    if type(node.op) is not IncSubtensor:  # AdvancedIncSubtensor
        return em.host_call(k, node)
    op = node.op
    x, y = (em.ref(v) for v in node.inputs[:2])
    _with_retry(em, node, [f"    {_array('spec', _index_spec(op.idx_list))}",
                           f"    PyObject *args[] = {_refs(em, node.inputs[2:])};"],
                f"th_inc_subtensor({x}, (PyObject *){y}, {int(op.set_instead_of_inc)}, "
                f"{len(op.idx_list)}, spec, args)")


@c_impl.register(MakeVector)
def make_vector(em: Emitter, k: int, node: Apply) -> None:
    """a vector filled in C"""
    n = len(node.inputs)
    _with_retry(em, node, [f"    PyObject *xs[] = {_refs(em, node.inputs)};"],
                f"th_make_vector({n}, xs, {node.outputs[0].type.numpy_dtype.num})")


@c_impl.register(Shape)
def shape(em: Emitter, k: int, node: Apply) -> None:
    """the lengths, read in C"""
    em.include("views.h")
    em.c_call(node, f"th_shape({em.ref(node.inputs[0])})")


def _with_lengths(em: Emitter, node: Apply, fn: str, pattern: list, extra: str = "") -> None:
    """The output of C call `fn(x, n, pattern, entries{extra})`: x is input 0, `pattern` the
    lengths (views.h's TH_ENTRY/TH_ANY codes) and `entries` the other inputs, the symbolic
    lengths."""
    _with_retry(em, node, [f"    {_array('pattern', pattern)}",
                           f"    PyObject *entries[] = {_refs(em, node.inputs[1:])};"],
                f"{fn}({em.ref(node.inputs[0])}, {len(pattern)}, pattern, entries{extra})")


def _entries(pattern) -> list:
    return [ENTRY if p is None or p == "?" else p for p in pattern]


@c_impl.register(Reshape)
def reshape(em: Emitter, k: int, node: Apply) -> None:
    """NumPy's reshape from C (a view, of a reused copy when the input is not contiguous)"""
    slot = em.root.n_work  # the copy of a non-contiguous input, reused across calls
    em.root.n_work += 1
    _with_lengths(em, node, "th_reshape", _entries(node.op.pattern), f", work, {slot}")


@c_impl.register(Alloc)
def alloc(em: Emitter, k: int, node: Apply) -> None:
    """a new array filled with the value broadcast, in C"""
    _with_lengths(em, node, "th_alloc", _entries(node.op.pattern),
                  f", {node.outputs[0].type.numpy_dtype.num}")


@c_impl.register(SpecifyShape)
def specify_shape(em: Emitter, k: int, node: Apply) -> None:
    """the input itself once its lengths are checked in C"""
    _with_lengths(em, node, "th_specify_shape",
                  [ANY if p is None else ENTRY if p == "?" else p for p in node.op.pattern])
