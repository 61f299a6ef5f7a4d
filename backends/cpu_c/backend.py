"""The C backend: fused elementwise and reduction kernels compiled by gcc with OpenMP, the
other nodes as its op table (library.py) says, all driven by one compiled function per graph;
an op with no entry fails compilation naming the op and the backend."""

from __future__ import annotations

import _ctypes
import ctypes
import os
import weakref

from theanine.backend import Backend
from theanine.backends.cpu_c.blas import blas_threads_pointer, gemm_pointers
from theanine.backends.cpu_c.compiler import (
    _openmp_and_headers,
    build_shared_object,
    find_compiler,
    load,
    vector_math,
)
from theanine.backends.cpu_c.dialect import CDialect
from theanine.backends.cpu_c.library import c_impl
from theanine.backends.cpu_c.limits import (
    MAX_OPERANDS,
    BadResult,
    BadValue,
    bad_result_error,
    bad_value_error,
    check_ranks,
)
from theanine.backends.cpu_c.program import render_program
from theanine.backends.cpu_c.step_timer import TIMER_NAME, timer_arrays
from theanine.codegen.cstyle import CStyleRenderer
from theanine.codegen.fusion import lower
from theanine.compile.profiling import StepTable, compiling_profile, phase, step_entries
from theanine.graph.basic import Apply
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.reduction import Reduce


class CBackend(Backend):
    """Generated C on the CPU (device 'cpu' when gcc is available)."""

    name = "c"
    devices = ("cpu", "c")
    priority = 10
    # Gemm nodes become one BLAS call; a convolution's bias and activation run per image
    rewrite_tags = ("gemm", "conv_epilogue")
    impls = c_impl

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
        if len(node.inputs) + 1 > MAX_OPERANDS:
            return False
        return self.renderer.supports(node.op.scalar_op,
                                      [v.dtype for v in node.inputs], node.outputs[0].dtype)

    def can_reduce(self, node: Apply) -> bool:
        op: Reduce = node.op
        return self.renderer.supports("identity", [node.inputs[0].dtype], op.dtype)

    def compile(self, fgraph: FunctionGraph):
        check_ranks(fgraph)
        profile = compiling_profile(fgraph)
        with phase("codegen"):
            steps = lower_for_c(self, fgraph)
            sgemm, dgemm, ilp64, _ = gemm_pointers()
            blas = bool(sgemm and dgemm and ilp64)
            program = render_program(fgraph, steps, blas, vector_math(), self,
                                     timed=profile is not None)
        with phase("compiler", "cache"):  # gcc's own time, when it runs, is a phase of its own
            built = build_shared_object(program.source)
        with phase("load"):
            lib = load(built)
            pin_openmp_runtime()
            if lib.th_init() != 0:
                raise RuntimeError("theanine: the C backend could not initialise NumPy's C API")
            if blas:
                lib.th_init_blas(ctypes.c_void_p(sgemm), ctypes.c_void_p(dgemm))
                if blas_threads_pointer():
                    lib.th_init_blas_threads(ctypes.c_void_p(blas_threads_pointer()))
        entry = lib.th_run
        entry.restype = ctypes.py_object
        entry.argtypes = [ctypes.py_object, ctypes.py_object]
        state = (program.constants, program.host_functions, [None] * program.n_work, BadValue,
                 BadResult)
        if profile is not None:
            times, counts = timer_arrays(len(steps))
            state += ((times, counts),)
            profile.add_table(StepTable(self.name, step_entries(steps), times, counts,
                                        TIMER_NAME))
        host_nodes = program.host_nodes

        def run(*inputs):
            try:
                return entry(state, inputs)
            except BadValue as e:
                k = e.args[0]
                raise bad_value_error(fgraph, k, inputs[k]) from None
            except BadResult as e:
                call, out, value = e.args
                raise bad_result_error(host_nodes[call], out, value) from None

        _unload_when_dropped(run, lib)
        run.source = program.source
        run.steps = steps
        run.host_count = len(program.host_functions)
        run.host_nodes = list(host_nodes.values())
        run.loop_host_nodes = program.loop_host_nodes
        return run


def lower_for_c(backend: CBackend, fgraph: FunctionGraph) -> list:
    """`fgraph`'s steps: fused kernels and the nodes the op table renders."""
    return lower(fgraph, backend.can_fuse, backend.can_reduce, max_operands=MAX_OPERANDS,
                 index_operands=True)


# the OpenMP runtimes a program may link (gcc's, LLVM's, Intel's)
OPENMP_RUNTIMES = ("libgomp.so.1", "libomp.so", "libomp.so.5", "libiomp5.so")


def pin_openmp_runtime() -> None:
    """Mark the OpenMP runtime a loaded program pulled in as never to be unloaded. Its worker
    threads outlive every program (they wait inside the runtime for the next parallel region),
    so unloading it along with the last program would leave them running unmapped code."""
    for name in OPENMP_RUNTIMES:
        try:  # RTLD_NOLOAD: only one already loaded; RTLD_NODELETE: dlclose never unmaps it
            ctypes.CDLL(name, mode=os.RTLD_NOW | os.RTLD_NOLOAD | os.RTLD_NODELETE)
        except OSError:
            continue


def _unload_when_dropped(run, lib: ctypes.CDLL) -> None:
    """Close `lib` (dlclose) once `run`, the only holder of its functions, is garbage. A call
    in progress holds `run`, so no object is unloaded under a running call; the loader counts
    the opens of one file, so an object other functions opened stays mapped for them. Not at
    interpreter exit, where another thread may still be calling. (The OpenMP runtime the
    object linked stays loaded: pin_openmp_runtime.)"""
    weakref.finalize(run, _ctypes.dlclose, lib._handle).atexit = False
