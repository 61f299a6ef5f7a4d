"""The C backend's loops: a Scan node's inner graph, rewritten and lowered like any graph, is
rendered by a child emitter as a function of the same C program (fused kernels, BLAS calls,
the op table's entries), and `th_scan` (scan.h) runs it once per step in C. Python is called
once per loop call for what the reference checks before the first step (and for a loop of no
step, whose empty traces the reference shapes), never per step.

The scan's name reaches the program only through the Python callables it is handed (data),
never in the generated source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from theanine.backends.cpu_c.library import c_impl
from theanine.compile.inner import inner_fgraph
from theanine.graph.basic import Apply
from theanine.graph.fgraph import FunctionGraph
from theanine.scan_module.op import Scan
from theanine.tensor.blas import Gemm
from theanine.tensor.linalg import Dot

if TYPE_CHECKING:
    from theanine.backends.cpu_c.program import Emitter


def _checker(node: Apply):
    """check(n_steps, *outer) -> n_steps as an int, raising as the reference does first."""
    op: Scan = node.op

    def check(n_steps, *outer):
        n = int(n_steps)
        op.check_lengths(n, [np.shape(s)[0] for s in outer[:op.n_seqs]],
                         [np.shape(s)[0] for s in outer[op.n_seqs:op.n_seqs + op.n_states]])
        return n

    return check


def _bad_step(node: Apply):
    op: Scan = node.op

    def bad_step(i, value, trace, t):
        op.check_step_value(i, value, trace, t)
        raise AssertionError(f"{op.describe()}: th_scan found a shape mismatch the reference "
                             f"does not")  # unreachable: check_step_value raised

    return bad_step


def _no_step(node: Apply):
    def no_step(*outer):
        return node.op.perform(node, outer)

    return no_step


def _blas_operands(inner: FunctionGraph, n_nonseq: int) -> list[bool]:
    """Per non-sequence: whether a product reads it as a matrix (BLAS runs a C-ordered one
    much faster than a transposed view: no packing per call)."""
    flags = []
    for v in inner.inputs[len(inner.inputs) - n_nonseq:]:
        flags.append(v.ndim == 2 and any(not isinstance(c, str) and isinstance(c.op, (Dot, Gemm))
                                         for c, _ in inner.clients.get(v, [])))
    return flags


def _ints(values) -> str:
    return "{" + (", ".join(str(int(v)) for v in values) or "0") + "}"


@c_impl.register(Scan)
def scan_loop(em: Emitter, k: int, node: Apply) -> None:
    """the inner graph rendered as a C function of the same program, iterated in C"""
    from theanine.backends.cpu_c.backend import lower_for_c
    from theanine.backends.cpu_c.limits import check_ranks
    from theanine.backends.cpu_c.program import Emitter

    op: Scan = node.op
    inner = inner_fgraph(op.inner_inputs, op.inner_outputs, em.backend)
    check_ranks(inner)
    prefix = f"{em.prefix}s{k}_"
    child = Emitter(inner, lower_for_c(em.backend, inner), em.blas, em.vector_math,
                    em.backend, parent=em, prefix=prefix)
    body = f"th_{prefix}body"
    direct = child.emit_function(body, len(node.outputs))
    outputs = set(em.fgraph.outputs)
    # a value the loop's outputs may share with one another (none the caller receives)
    share = [o not in outputs for o in node.outputs]
    em.include("scan.h")
    info = em.add_host((_checker(node), _bad_step(node), _no_step(node),
                        tuple(np.dtype(o.dtype).num for o in node.outputs)))
    keep = [-1 if x is None else x for x in op.keep]
    work = em.root.n_work  # one reused buffer per trace
    em.root.n_work += len(node.outputs)
    layout = (f"{op.n_seqs}, {op.n_states}, {op.n_nit}, {op.n_nonseq}, {int(op.until)}, "
              f"{len(op.inner_inputs)}, seq_ntaps, seq_offs, state_ntaps, state_taps, keep, "
              f"{work}, direct, share, contig")
    outer = ", ".join(f"(PyObject *){em.ref(v)}" for v in node.inputs)
    slots = [em.new_slot(o) for o in node.outputs]
    em.lines += [
        f"    {{ /* step {k}: a loop */",
        f"    static const int seq_ntaps[] = {_ints(map(len, op.seq_offsets))}, "
        f"seq_offs[] = {_ints(o for offs in op.seq_offsets for o in offs)};",
        f"    static const int state_ntaps[] = {_ints(map(len, op.state_taps))}, "
        f"state_taps[] = {_ints(t for taps in op.state_taps for t in taps)};",
        f"    static const int keep[] = {_ints(keep)}, direct[] = {_ints(direct)}, "
        f"share[] = {_ints(share)}, contig[] = {_ints(_blas_operands(inner, op.n_nonseq))};",
        f"    static const th_scan_layout layout = {{{layout}}};",
        f"    PyObject *outer[] = {{{outer}}};",
        f"    PyObject *res[{len(slots)}];",
        f"    if (th_scan(state, &layout, {body}, outer, {len(node.inputs)}, res, "
        f"PyTuple_GET_ITEM(fns, {info})) < 0) goto fail;",
        *(f"    v[{s}] = res[{i}];" for i, s in enumerate(slots)),
        "    }"]
