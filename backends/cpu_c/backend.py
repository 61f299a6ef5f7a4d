"""The C backend: fused elementwise and reduction kernels compiled by gcc with OpenMP, the
rest through library calls, all driven by one compiled function per graph."""

from __future__ import annotations

import ctypes
import re

from theanine.backend import Backend
from theanine.backends.cpu_c.compiler import _openmp_and_headers, build_shared_object, load
from theanine.backends.cpu_c.dialect import CDialect
from theanine.backends.cpu_c.library import check_supported
from theanine.backends.cpu_c.program import render_program
from theanine.codegen.cstyle import CStyleRenderer
from theanine.codegen.fusion import KernelStep, NodeStep, lower
from theanine.graph.basic import Apply, format_trace
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.reduction import Reduce

_STEP_ERROR = re.compile(r"^theanine-step (\d+): (.*)$", re.S)


class CBackend(Backend):
    """Generated C on the CPU (device 'cpu' when gcc is available)."""

    name = "c"
    devices = ("cpu", "c")
    priority = 10

    def __init__(self):
        self.renderer = CStyleRenderer(CDialect())

    def available(self) -> tuple[bool, str]:
        why = _openmp_and_headers()
        return (not why, why)

    def can_fuse(self, node: Apply) -> bool:
        return self.renderer.supports(node.op.scalar_op.name,
                                      [v.dtype for v in node.inputs], node.outputs[0].dtype)

    def can_reduce(self, node: Apply) -> bool:
        op: Reduce = node.op
        return self.renderer.supports("identity", [node.inputs[0].dtype], op.dtype)

    def compile(self, fgraph: FunctionGraph):
        steps = lower(fgraph, self.can_fuse, self.can_reduce)
        for s in steps:
            if isinstance(s, NodeStep):
                check_supported(s.node, self.name)
        program = render_program(fgraph, steps)
        lib = load(build_shared_object(program.source))
        if lib.th_init() != 0:
            raise RuntimeError("theanine: the C backend could not initialise NumPy's C API")
        entry = lib.th_run
        entry.restype = ctypes.py_object
        entry.argtypes = [ctypes.py_object, ctypes.py_object]
        state = (program.constants, program.host_functions, [None] * program.n_work)

        def run(*inputs):
            try:
                return entry(state, inputs)
            except ValueError as e:
                raise _explain(e, steps) from None

        run.source = program.source
        run.steps = steps
        return run


def _explain(error: ValueError, steps) -> Exception:
    """Add the graph nodes and the user's line to an error raised inside a compiled step."""
    m = _STEP_ERROR.match(str(error))
    if not m:
        return error
    step = steps[int(m.group(1))]
    nodes = step.nodes if isinstance(step, KernelStep) else [step.node]
    node = nodes[-1]
    ops = ", ".join(f"{n.op}({', '.join(map(str, n.inputs))})" for n in nodes)
    return ValueError(f"{node.op}: {m.group(2)} (in {ops})\nThe failing operation was built "
                      f"at:\n{format_trace(node.trace)}")
