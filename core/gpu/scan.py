"""Loops and conditionals on the GPU backends. A Scan's inner graph is compiled once into a
GpuProgram of its own; the loop hands it views of the sequences and of the recorded states
(DeviceArrays, no copy), and device copies write each step's results into traces allocated on
the device ([n_steps, ...], or a ring of `keep` entries for outputs read only at their last
steps). Nothing crosses to the host per step except a while loop's stop condition. A
LazyIfElse compiles each branch the same way and runs the one its condition (read on the host:
one scalar) chooses.
"""

from __future__ import annotations

import numpy as np

from theanine.compile.inner import inner_fgraph
from theanine.gpu.array import DeviceArray
from theanine.gpu.library import gpu_impl
from theanine.gpu.plans import Plan, PlanKind, ProgramKernels, places
from theanine.graph.basic import Apply
from theanine.graph.fgraph import FunctionGraph
from theanine.ifelse import LazyIfElse
from theanine.scan_module.op import Scan


def _row(a: DeviceArray, i: int) -> DeviceArray:
    """Entry i of `a` along its first axis, a view."""
    return a.view(a.shape[1:], a.strides[1:], a.offset + i * a.strides[0])


def _head(a: DeviceArray, n: int) -> DeviceArray:
    """The first n entries of `a`, a view."""
    return a.view((n,) + a.shape[1:], a.strides)


def _on_device(rt, value) -> DeviceArray:
    return value if isinstance(value, DeviceArray) else rt.to_device(value)


def _sub_program(program, fgraph: FunctionGraph):
    from theanine.gpu.program import GpuProgram

    sub = GpuProgram(fgraph, program.rt, program.backend)
    program.sub_programs.append(sub)
    return sub


def _run_scan(rt, node: Apply, body, n_steps, *outer) -> list:
    op: Scan = node.op
    n = int(n_steps)
    seqs = outer[:op.n_seqs]
    inits = outer[op.n_seqs:op.n_seqs + op.n_states]
    nonseqs = outer[op.n_seqs + op.n_states:]
    op.check_lengths(n, [s.shape[0] for s in seqs], [s.shape[0] for s in inits])
    if n == 0:  # the reference shapes the empty traces (it probes the step)
        host = [a.get() if isinstance(a, DeviceArray) else a for a in outer]
        return list(op.perform(node, [n, *host]))
    n_out = op.n_states + op.n_nit
    ring = []
    for i in range(n_out):
        keep = n if op.keep[i] is None else op.keep[i]
        if i < op.n_states and op.keep[i] is not None:
            keep = max(keep, op.depth(i)) + 1  # a step never overwrites what it reads
        ring.append(min(keep, n))
    traces: list[DeviceArray | None] = [
        rt.empty((ring[j],) + inits[j].shape[1:], node.outputs[j].dtype)
        for j in range(op.n_states)] + [None] * op.n_nit
    steps = n
    for t in range(n):
        args = [_row(s, t + off) for s, offs in zip(seqs, op.seq_offsets) for off in offs]
        for j, taps in enumerate(op.state_taps):
            for tap in taps:
                at = t + tap
                args.append(_row(inits[j], op.depth(j) + at) if at < 0
                            else _row(traces[j], at % ring[j]))
        results = body.run(*args, *nonseqs)
        for i in range(n_out):
            r = _on_device(rt, results[i])
            if traces[i] is None:
                traces[i] = rt.empty((ring[i],) + r.shape, node.outputs[i].dtype)
            if r.shape != traces[i].shape[1:]:
                op.check_step_value(i, np.broadcast_to(0.0, r.shape),
                                    np.broadcast_to(0.0, traces[i].shape), t)
            rt.copy(r, _row(traces[i], t % ring[i]))
        if op.until:
            stop = results[-1]
            if bool(np.asarray(stop.get() if isinstance(stop, DeviceArray) else stop)):
                steps = t + 1
                break
    out = []
    for i, trace in enumerate(traces):
        keep = steps if op.keep[i] is None else min(op.keep[i], steps)
        if op.keep[i] is None:
            out.append(trace if steps == trace.shape[0] else _head(trace, steps))
            continue
        result = rt.empty((keep,) + trace.shape[1:], trace.dtype)
        for s in range(keep):
            rt.copy(_row(trace, (steps - keep + s) % ring[i]), _row(result, s))
        out.append(result)
    return out


@gpu_impl.register(Scan)
def _plan_scan(program, node: Apply, source: ProgramKernels) -> Plan:
    """The loop on the device: the inner graph one compiled program, states on the device"""
    op: Scan = node.op
    body = _sub_program(program, inner_fgraph(op.inner_inputs, op.inner_outputs,
                                              program.backend))
    return Plan(PlanKind.DEVICE, run=_run_scan, prepared=body, reads=places("hd"))


def _run_ifelse(rt, node: Apply, branches, cond, *outer) -> list:
    then_vals, else_vals = node.op.split(outer)
    chosen = bool(np.asarray(cond.get() if isinstance(cond, DeviceArray) else cond))
    body, copies = branches[0] if chosen else branches[1]
    results = body.run(*(then_vals if chosen else else_vals))
    # a value sharing memory (an outside value's, a constant's, an earlier one's) is copied,
    # as the reference's results are new arrays
    return [rt.copy(_on_device(rt, r)) if j in copies else r for j, r in enumerate(results)]


@gpu_impl.register(LazyIfElse)
def _plan_lazy_ifelse(program, node: Apply, source: ProgramKernels) -> Plan:
    """Each branch one compiled program; only the chosen one runs (the condition read on the
    host)"""
    from theanine.ifelse import shared_outputs

    op: LazyIfElse = node.op
    branches = []
    for branch in (op.then, op.other):
        fgraph = FunctionGraph(branch.inputs, branch.outputs)
        branches.append((_sub_program(program, fgraph), set(shared_outputs(fgraph))))
    return Plan(PlanKind.DEVICE, run=_run_ifelse, prepared=tuple(branches),
                reads=places("hd"))
