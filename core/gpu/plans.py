"""What planning a GPU program makes: how each step runs (`Plan`, of a `PlanKind`), where a
library step reads each input (`Place`), and the kernel functions the plans collect
(`ProgramKernels`), each named after its text so every cache finds a kernel however a graph
placed it.

A backend's op table (`Backend.impls`, theanine.op_table) plans each node that is not fused:
its entry is called as `entry.fn(program, node, source)` and returns the node's `Plan`
(`program.rt` is the runtime, `program.backend` the Backend; `source` takes the kernels the
plan needs and returns their names, which the plan's `prepared` holds until they are built).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from theanine.codegen.gpu import GpuRenderer, content_named
from theanine.codegen.ir import Kernel, Load
from theanine.codegen.skeleton import KernelSource


class PlanKind(enum.Enum):
    """How one step of a GPU program runs."""

    KERNEL = "kernel"  # a fused elementwise or reduction kernel
    HOST_NODES = "host_nodes"  # a fused step computed only from host values (shape arithmetic)
    DEVICE = "device"  # a library op's device implementation
    HOST = "host"  # a node run on host copies of its inputs (its perform, or a host loop)


class Place(enum.Enum):
    """Where a library step reads one of its inputs."""

    DEVICE = "d"
    HOST = "h"


def places(codes: str) -> tuple[Place, ...]:
    """Placements from their one-letter codes ('d' device, 'h' host), e.g. 'dh'."""
    return tuple(Place(c) for c in codes)


@dataclass(frozen=True)
class Plan:
    """How one step runs. For a node step, `run(rt, node, prepared, *inputs)` returns its
    outputs (DeviceArrays stay on the device, anything else is a host value); input k is read
    where `reads[k]` says, the last placement repeating. `prepared` holds kernel names until
    the program's kernels are built, then the kernels. `host_values`: the outputs are shape
    arithmetic, so fused steps computed only from host values run on the host too."""

    kind: PlanKind
    prepared: Any = None
    run: Callable[..., Any] | None = None
    reads: tuple[Place, ...] = (Place.HOST,)
    host_values: bool = False

    def read_from(self, n_inputs: int) -> tuple[Place, ...]:
        """The placement of each of `n_inputs` inputs."""
        return (self.reads + self.reads[-1:] * n_inputs)[:n_inputs]


class ProgramKernels:
    """The kernel functions of one program, each named after its text: a kernel that several
    programs (or several steps of one) need is one function, found by every cache."""

    def __init__(self, renderer: GpuRenderer):
        self.r = renderer
        self.bodies: dict[str, KernelSource] = {}

    def _add(self, render: Callable[[str], KernelSource], kind: str) -> str:
        name, text = content_named(render, kind)
        self.bodies.setdefault(name, text)
        return name

    def elementwise(self, k: Kernel) -> tuple:
        """k and the names of its contiguous and strided versions."""
        return (k, self._add(partial(self.r.contiguous, k), "c"),
                self._add(partial(self.r.strided, k), "s"))

    def reduction(self, k: Kernel) -> tuple:
        """k and its partial-result combiner; kernel names are resolved after the build."""
        acc = k.acc_dtype
        comb = Kernel("combine", 2, [(acc, 2)], [], [Load(acc, 0)], reduce_op=k.reduce_op,
                      reduce_axes=(1,), acc_dtype=acc, output_dtypes=[acc])
        return (k, self._add(partial(self.r.reduction, k), "r"),
                (comb, self._add(partial(self.r.reduction, comb), "r")))

    def gemm(self, dtype: str) -> str:
        """The name of the tiled GEMM kernel for `dtype`."""
        return self._add(lambda name: self.r.gemm(name, dtype), f"gemm_{dtype}")

    def hand_written(self, render: Callable[..., KernelSource], kind: str, *args: Any) -> str:
        """The name of the kernel `render(renderer, name, *args)` prints (a hand-written
        kernel such as codegen/conv_kernels.py's), named `th_<kind>_<hash>`."""
        return self._add(lambda name: render(self.r, name, *args), kind)


def resolve(prepared: Any, kernels: dict) -> Any:
    """`prepared` with its kernel names replaced by the built kernels."""
    if isinstance(prepared, str):
        return kernels[prepared]
    if isinstance(prepared, tuple):
        return tuple(resolve(p, kernels) for p in prepared)
    return prepared
