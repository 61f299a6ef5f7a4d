"""The NumPy reference backend: runs every op's NumPy implementation, as its op table
(library.py) says."""

from __future__ import annotations

from theanine.backend import Backend
from theanine.backends.numpy.executor import build_executor
from theanine.backends.numpy.library import numpy_impl
from theanine.compile.profiling import StepTable, compiling_profile, phase
from theanine.graph.fgraph import FunctionGraph


class NumpyBackend(Backend):
    """Defines what every op means; always available. Lowest priority for device 'cpu' so a
    compiled backend wins when one is installed and available."""

    name = "numpy"
    devices = ("cpu", "numpy")
    priority = 0
    impls = numpy_impl

    def compile(self, fgraph: FunctionGraph):
        profile = compiling_profile(fgraph)
        with phase("codegen"):
            run = build_executor(fgraph, self, timed=profile is not None)
        if profile is not None:
            profile.add_table(StepTable(self.name, list(fgraph.nodes), run.times, run.counts,
                                        "host clock (perf_counter) around each node"))
        return run
