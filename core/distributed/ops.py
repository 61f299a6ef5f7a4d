"""`allreduce`, symbolic: an AllReduce node in the graph, so the exchange runs inside the
compiled step, between the gradient kernels and the updates. Every backend's op table runs it
(`theanine info --coverage`): MPI on host buffers, or NCCL on CUDA device buffers where
present."""

from __future__ import annotations

from collections.abc import Sequence

from theanine.distributed.buckets import allreduce_arrays
from theanine.distributed.world import DistributedError
from theanine.graph.basic import Apply, Op, Variable, format_trace, graph_error, located
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.type import FLOAT_DTYPES

OPS = ("mean", "sum")


class AllReduce(Op):
    """AllReduce(op)(*xs): each x's element-wise sum or mean over every rank of the job. Its
    gradient is the same all-reduce of the outputs' gradients (each rank's loss adds to the
    job's loss). It communicates, so it is never constant-folded and never re-run to locate
    another node's error."""

    __props__ = ("op",)
    communicates = True

    def __init__(self, op: str = "mean"):
        if op not in OPS:
            raise ValueError(f"allreduce: op must be 'mean' or 'sum', got {op!r}")
        self.op = op

    def make_node(self, *xs) -> Apply:
        xs = [as_tensor_variable(x) for x in xs]
        if not xs:
            raise graph_error("allreduce: expected at least one variable, got none")
        if self.op == "mean":
            for k, x in enumerate(xs):
                if x.dtype not in FLOAT_DTYPES:
                    raise graph_error(f"allreduce(op='mean'): variable {k} "
                                      f"({x.name or 'unnamed'}) must be a float, got dtype "
                                      f"{x.dtype}; use op='sum' for integers")
        return Apply(self, xs, [x.type() for x in xs])

    def describe(self, node: Apply) -> tuple[list[str], str]:
        """The inputs' names (for the agreement check's message) and the call's description."""
        names = [v.name or f"variable {k} ({v.type})" for k, v in enumerate(node.inputs)]
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return names, f"allreduce(op={self.op!r}) of {shown}"

    @staticmethod
    def located_error(node: Apply, e: DistributedError) -> DistributedError:
        """`e` with the user's line that built the allreduce, located (keeping the notice's
        origin, so a failure caused by another rank's notice is acknowledged, not re-told)."""
        error = DistributedError(f"{e}\nThe allreduce was built at:\n{format_trace(node.trace)}")
        if hasattr(e, "theanine_notice_from"):
            error.theanine_notice_from = e.theanine_notice_from
        return located(error)

    def perform(self, node: Apply, inputs: Sequence) -> tuple:
        names, what = self.describe(node)
        try:
            return tuple(allreduce_arrays(inputs, self.op, names, what))
        except DistributedError as e:
            raise self.located_error(node, e) from None

    def do_constant_folding(self, node: Apply) -> bool:
        return False

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        n = len(node.inputs)
        return [[i == j for j in range(n)] for i in range(n)]

    def pullback(self, node, inputs, outputs, output_grads) -> list:
        grads = AllReduce(self.op)(*output_grads)
        return list(grads) if isinstance(grads, list) else [grads]

    def infer_shape(self, node, input_shapes):
        return list(input_shapes)


def allreduce(xs: Variable | Sequence[Variable], op: str = "mean") -> Variable | list[Variable]:
    """The element-wise mean (or sum) of each of `xs` over every rank, computed in the compiled
    step; many variables travel together in fused buffers. A single variable gives a single
    result, a list a list. Alone (one process) it is the identity."""
    single = not isinstance(xs, (list, tuple))
    out = AllReduce(op)(*([xs] if single else xs))
    if single:
        return out
    return list(out) if isinstance(out, list) else [out]
