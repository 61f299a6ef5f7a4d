"""The C backend: fused elementwise and reduction kernels compiled by gcc with OpenMP, the
rest through library calls, all driven by one compiled function per graph."""

from __future__ import annotations

import ctypes
import os

from theanine.backend import Backend
from theanine.backends.cpu_c.blas import gemm_pointers
from theanine.backends.cpu_c.compiler import (
    _openmp_and_headers,
    build_shared_object,
    find_compiler,
    load,
    vector_math,
)
from theanine.backends.cpu_c.dialect import CDialect
from theanine.backends.cpu_c.library import check_supported
from theanine.backends.cpu_c.program import render_program
from theanine.codegen.cstyle import CStyleRenderer
from theanine.codegen.fusion import NodeStep, lower
from theanine.graph.basic import Apply
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.reduction import Reduce


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

    def describe(self) -> list[str]:
        cc, version = find_compiler()
        blas = gemm_pointers()[3]
        return [f"compiler: {version if cc else 'none (' + version + ')'}",
                f"BLAS: {blas}",
                f"SIMD math: {'glibc libmvec' if vector_math() else 'none (scalar libm)'}",
                f"device cpu: {os.cpu_count()} cores (OpenMP threads)"]

    def can_fuse(self, node: Apply) -> bool:
        return self.renderer.supports(node.op.scalar_op,
                                      [v.dtype for v in node.inputs], node.outputs[0].dtype)

    def can_reduce(self, node: Apply) -> bool:
        op: Reduce = node.op
        return self.renderer.supports("identity", [node.inputs[0].dtype], op.dtype)

    def compile(self, fgraph: FunctionGraph):
        steps = lower(fgraph, self.can_fuse, self.can_reduce)
        for s in steps:
            if isinstance(s, NodeStep):
                check_supported(s.node, self.name)
        sgemm, dgemm, ilp64, _ = gemm_pointers()
        blas = bool(sgemm and dgemm and ilp64)
        program = render_program(fgraph, steps, blas, vector_math())
        lib = load(build_shared_object(program.source))
        if lib.th_init() != 0:
            raise RuntimeError("theanine: the C backend could not initialise NumPy's C API")
        if blas:
            lib.th_init_blas(ctypes.c_void_p(sgemm), ctypes.c_void_p(dgemm))
        entry = lib.th_run
        entry.restype = ctypes.py_object
        entry.argtypes = [ctypes.py_object, ctypes.py_object]
        state = (program.constants, program.host_functions, [None] * program.n_work)

        def run(*inputs):
            return entry(state, inputs)

        run.source = program.source
        run.steps = steps
        run.host_count = len(program.host_functions)
        return run

