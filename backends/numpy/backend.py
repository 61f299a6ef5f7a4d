"""The NumPy reference backend: runs every Op's NumPy implementation."""

from __future__ import annotations

from theanine.backend import Backend
from theanine.backends.numpy.executor import build_executor
from theanine.graph.fgraph import FunctionGraph


class NumpyBackend(Backend):
    """Defines what every op means; always available. Lowest priority for device 'cpu' so a
    compiled backend wins when one is installed and available."""

    name = "numpy"
    devices = ("cpu", "numpy")
    priority = 0

    def compile(self, fgraph: FunctionGraph):
        return build_executor(fgraph)
