"""Lowering a FunctionGraph into a program of steps: fused kernels (kernel IR) and single nodes.

Elementwise nodes are grouped into clusters that become one loop: a node joins the cluster of
its consumers when all its elementwise consumers are in one cluster and it has the same rank
and broadcast pattern. A node whose value is also needed outside the cluster stays in it and
becomes an extra output of the loop when it depends on every input of the cluster (then its
run-time shape is exactly the loop's). A reduction whose input comes from a cluster used by
nothing else becomes one kernel that evaluates the cluster inside the reduction loop.
A backend whose loops have room for a fixed number of arrays gives `max_operands`: a cluster
stops growing before its kernel would read and write more arrays than that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from theanine.codegen.ir import Call, Expr, Index, Kernel, Load, Param
from theanine.codegen.scalar_kernels import kernel_key
from theanine.graph.basic import Apply, Constant, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.tensor.elemwise import Elemwise
from theanine.tensor.random import FlatIndex
from theanine.tensor.reduction import Reduce

REDUCE_OPS = {"sum": "add", "prod": "mul", "max": "max", "min": "min", "all": "and",
              "any": "or"}


@dataclass
class KernelStep:
    """Run `kernel` reading `inputs` (graph variables, one per input buffer) and scalar
    `params`, writing `outputs` (graph variables, one per kernel output)."""

    kernel: Kernel
    inputs: list[Variable]
    params: list[np.ndarray]
    outputs: list[Variable]
    nodes: list[Apply] = field(default_factory=list)


@dataclass
class NodeStep:
    """Run one graph node through the backend's table of op implementations."""

    node: Apply


Step = KernelStep | NodeStep


def _pattern(v: Variable) -> tuple:
    return tuple(s == 1 for s in v.type.shape)


def _is_param(v: Variable) -> bool:
    """A constant a kernel takes as a scalar parameter rather than as an array."""
    return isinstance(v, Constant) and v.data.size == 1 and all(s == 1 for s in v.type.shape)


def _array_reads(node: Apply) -> set[Variable]:
    return {v for v in node.inputs if not _is_param(v)}


class _Cluster:
    def __init__(self, root: Apply):
        self.nodes: list[Apply] = [root]
        self.ndim = root.outputs[0].ndim
        self.pattern = _pattern(root.outputs[0])
        # the arrays its kernel reads, and how many it writes (an upper bound: the root's
        # output and each member needed outside)
        self.reads: set[Variable] = _array_reads(root)
        self.n_writes = 1

    def join(self, node: Apply, exported: bool) -> None:
        self.nodes.append(node)
        self.reads.discard(node.outputs[0])  # now computed inside the loop
        self.reads |= _array_reads(node)
        self.n_writes += exported

    def operands_with(self, node: Apply, exported: bool) -> int:
        """The arrays the kernel would touch if `node` joined."""
        n_reads = len(self.reads) - (node.outputs[0] in self.reads) + \
            len(_array_reads(node) - self.reads)
        return n_reads + self.n_writes + exported

    def node_set(self) -> set[Apply]:
        return set(self.nodes)


class _CyclicProgram(Exception):
    pass


def lower(fgraph: FunctionGraph, can_fuse: Callable[[Apply], bool],
          can_reduce: Callable[[Apply], bool], name_prefix: str = "k",
          max_operands: int | None = None, index_operands: bool = False) -> list[Step]:
    """Turn `fgraph` into steps in execution order.

    can_fuse(node): the backend can render this Elemwise node inside a kernel.
    can_reduce(node): the backend can render this Reduce node as a kernel.
    max_operands: the most arrays (inputs and outputs) one kernel may touch, or None.
    index_operands: the backend's kernels take `Index` operands (`Kernel.index_inputs`), so a
    random draw's element index is the loop position; otherwise kernels read the index array
    a FlatIndex step computes.

    Clusters with extra outputs can, in rare graphs, depend on each other both ways; then the
    graph is lowered again with single-output clusters, which never can. When the compile mode
    excluded 'fusion' (`fgraph.excluded_tags`), every node gets a kernel of its own.
    """
    options = dict(name_prefix=name_prefix, max_operands=max_operands,
                   index_operands=index_operands)
    try:
        return _lower(fgraph, can_fuse, can_reduce, exports=True, **options)
    except _CyclicProgram:
        return _lower(fgraph, can_fuse, can_reduce, exports=False, **options)


def _lower(fgraph, can_fuse, can_reduce, name_prefix: str, max_operands: int | None,
           exports: bool, index_operands: bool) -> list[Step]:
    outputs = set(fgraph.outputs)
    clients = fgraph.clients
    index = {node: k for k, node in enumerate(fgraph.nodes)}
    leaves = _leaves(fgraph, can_fuse)
    cluster_of: dict[Apply, _Cluster] = {}
    # Reverse topological order: every consumer is placed before its producers.
    fuse = "fusion" not in fgraph.excluded_tags
    for node in reversed(fgraph.nodes):
        if not (isinstance(node.op, Elemwise) and can_fuse(node)):
            continue
        target, exported = _join_target(node, cluster_of, clients, outputs, index, leaves,
                                        exports) if fuse else (None, False)
        if target is not None and max_operands is not None and \
                target.operands_with(node, exported) > max_operands:
            target = None
        if target is None:
            cluster_of[node] = _Cluster(node)
        else:
            target.join(node, exported)
            cluster_of[node] = target

    reduce_with: dict[Apply, _Cluster] = {}
    for node in fgraph.nodes:
        if fuse and isinstance(node.op, Reduce) and can_reduce(node):
            c = cluster_of.get(node.inputs[0].owner)
            if (c is not None and node.inputs[0] is c.nodes[0].outputs[0]
                    and node.inputs[0] not in outputs and len(clients[node.inputs[0]]) == 1
                    and len(_exports(c, clients, outputs)) == 1):
                reduce_with[node] = c
    absorbed = {id(c) for c in reduce_with.values()}

    steps: list[Step] = []
    emitted: set[int] = set()
    for node in fgraph.nodes:
        c = cluster_of.get(node)
        name = f"{name_prefix}{len(steps)}"
        if c is not None:
            if id(c) not in emitted and id(c) not in absorbed:
                emitted.add(id(c))
                steps.append(_cluster_step(c, clients, outputs, name, index_operands))
        elif isinstance(node.op, Reduce) and can_reduce(node):
            steps.append(_reduce_step(node, reduce_with.get(node), name, index_operands))
        else:
            steps.append(NodeStep(node))
    return _order(_without_unread_indices(steps, outputs))


def _without_unread_indices(steps: list[Step], outputs: set[Variable]) -> list[Step]:
    """`steps` less the FlatIndex nodes whose index array nobody reads: kernels read the
    draw's size instead (an `Index` operand)."""
    read = set(outputs)
    for s in steps:
        read.update(s.inputs if isinstance(s, KernelStep) else s.node.inputs)
    return [s for s in steps if not (isinstance(s, NodeStep) and isinstance(s.node.op, FlatIndex)
                                     and s.node.outputs[0] not in read)]


def _join_target(node: Apply, cluster_of: dict, clients, outputs, index, leaves,
                 exports: bool) -> tuple[_Cluster | None, bool]:
    """The cluster `node` may join (that of its elementwise consumers), or None; and whether
    its value would be an extra output of that cluster's kernel."""
    out = node.outputs[0]
    consumers = [c for c, _ in clients.get(out, []) if c != "output"]
    fused = {id(cluster_of[c]): cluster_of[c] for c in consumers if c in cluster_of}
    if len(fused) != 1:
        return None, False
    target = next(iter(fused.values()))
    if target.ndim != out.ndim or target.pattern != _pattern(out):
        return None, False
    outside = [c for c in consumers if c not in cluster_of or cluster_of[c] is not target]
    if not outside and out not in outputs:
        return target, False
    if not exports:
        return None, False
    # Exported as an extra output of the loop: its shape must be the loop's, and no outside
    # consumer may lead back into the cluster (that would make the kernel depend on itself).
    if not leaves[out] >= leaves[target.nodes[0].outputs[0]]:
        return None, True
    members = target.node_set()
    limit = max(index[m] for m in members)
    stack, seen = list(outside), set()
    while stack:
        n = stack.pop()
        if n in members:
            return None, True
        if n in seen or index[n] > limit:
            continue
        seen.add(n)
        for o in n.outputs:
            stack.extend(c for c, _ in clients.get(o, []) if c != "output")
    return target, True


def _leaves(fgraph: FunctionGraph, can_fuse) -> dict[Variable, frozenset]:
    """For each variable, the non-constant values it is computed from through fusable
    elementwise nodes. An elementwise value's run-time shape is the broadcast of its leaves'
    shapes, so a value whose leaves include the cluster root's leaves has the loop's shape."""
    leaves: dict[Variable, frozenset] = {v: frozenset([v]) for v in fgraph.inputs}
    for node in fgraph.nodes:
        if isinstance(node.op, Elemwise) and can_fuse(node):
            found: frozenset = frozenset()
            for v in node.inputs:
                if not isinstance(v, Constant):
                    found |= leaves.get(v, frozenset([v]))
            leaves[node.outputs[0]] = found
        else:
            for o in node.outputs:
                leaves[o] = frozenset([o])
    return leaves


def _exports(c: _Cluster, clients, outputs) -> list[Variable]:
    """Values of the cluster needed outside it, the root's output first."""
    members = c.node_set()
    result = []
    for n in c.nodes:
        o = n.outputs[0]
        outside = o in outputs or any(cl == "output" or cl not in members
                                      for cl, _ in clients.get(o, []))
        if n is c.nodes[0] or outside:
            result.append(o)
    return result


class _ExprBuilder:
    """Translate graph nodes of a cluster into IR expressions over buffers and params."""

    def __init__(self, members: set[Apply], index_operands: bool):
        self.members = members
        self.index_operands = index_operands
        self.inputs: list[Variable] = []
        self.buffers: dict[tuple[bool, Variable], int] = {}  # (is an index, variable) -> buf
        self.params: list[np.ndarray] = []
        self.param_dtypes: list[str] = []
        self.memo: dict[Variable, Expr] = {}

    def _buffer(self, v: Variable, index: bool) -> int:
        if (index, v) not in self.buffers:
            self.buffers[(index, v)] = len(self.inputs)
            self.inputs.append(v)
        return self.buffers[(index, v)]

    def kernel_inputs(self) -> dict:
        """The Kernel fields describing the input buffers."""
        index = frozenset(b for (is_index, _), b in self.buffers.items() if is_index)
        scalar = frozenset(b for (is_index, v), b in self.buffers.items()
                           if not is_index and all(s == 1 for s in v.type.shape))
        # an index operand has the rank of its draw: the length of its size vector
        return dict(inputs=[("uint64", v.type.shape[0]) if b in index else (v.dtype, v.ndim)
                            for b, v in enumerate(self.inputs)],
                    index_inputs=index, scalar_inputs=scalar)

    def expr(self, root: Variable) -> Expr:
        """The expression of `root`, built depth-first (inputs in order, so buffers and params
        are numbered as they are first met) with an explicit stack: no recursion limit."""
        stack = [root]
        while stack:
            v = stack[-1]
            if v in self.memo:
                stack.pop()
                continue
            node = v.owner
            if node is not None and node in self.members:
                pending = [i for i in node.inputs if i not in self.memo]
                if pending:
                    stack.extend(reversed(pending))
                    continue
                args = tuple(self.memo[i] for i in node.inputs)
                e: Expr = Call(v.dtype, kernel_key(node.op.scalar_op), args)
            elif _is_param(v):
                self.params.append(np.asarray(v.data).reshape(()))
                self.param_dtypes.append(v.dtype)
                e = Param(v.dtype, len(self.params) - 1)
            elif self.index_operands and node is not None and isinstance(node.op, FlatIndex):
                # the loop position: the kernel reads the draw's size, never an index array
                e = Index("uint64", self._buffer(node.inputs[0], index=True))
            else:
                e = Load(v.dtype, self._buffer(v, index=False))
            self.memo[v] = e
            stack.pop()
        return self.memo[root]


def _cluster_step(c: _Cluster, clients, outputs, name: str, index_operands: bool) -> KernelStep:
    b = _ExprBuilder(c.node_set(), index_operands)
    exports = _exports(c, clients, outputs)
    exprs = [b.expr(o) for o in exports]
    kernel = Kernel(name=name, ndim=c.ndim, params=b.param_dtypes, outputs=exprs,
                    output_dtypes=[o.dtype for o in exports], **b.kernel_inputs())
    return KernelStep(kernel, b.inputs, b.params, exports, list(reversed(c.nodes)))


def _reduce_step(node: Apply, c: _Cluster | None, name: str,
                 index_operands: bool) -> KernelStep:
    op: Reduce = node.op
    x = node.inputs[0]
    b = _ExprBuilder(c.node_set() if c is not None else set(), index_operands)
    body = b.expr(x)
    if body.dtype != op.dtype:
        body = Call(op.dtype, "cast", (body,))
    kernel = Kernel(name=name, ndim=x.ndim, params=b.param_dtypes, outputs=[body],
                    reduce_op=REDUCE_OPS[op.kind], reduce_axes=op.axes, acc_dtype=op.dtype,
                    output_dtypes=[op.dtype], **b.kernel_inputs())
    nodes = (list(reversed(c.nodes)) if c is not None else []) + [node]
    return KernelStep(kernel, b.inputs, b.params, [node.outputs[0]], nodes)


def _order(steps: list[Step]) -> list[Step]:
    """Order steps so each runs after the steps producing what it reads (a cluster may read a
    value computed by a node that comes after the cluster's first member)."""
    produced_by: dict[Variable, int] = {}
    for k, s in enumerate(steps):
        for o in (s.outputs if isinstance(s, KernelStep) else s.node.outputs):
            produced_by[o] = k
    order: list[Step] = []
    state = [0] * len(steps)  # 0 new, 1 in progress, 2 done
    for start in range(len(steps)):
        stack = [start]
        while stack:
            k = stack[-1]
            if state[k] == 2:
                stack.pop()
                continue
            s = steps[k]
            reads = s.inputs if isinstance(s, KernelStep) else s.node.inputs
            pending = [produced_by[v] for v in reads
                       if v in produced_by and state[produced_by[v]] != 2
                       and produced_by[v] != k]
            if state[k] == 1 and pending:
                raise _CyclicProgram
            state[k] = 1
            if pending:
                stack.extend(pending)
            else:
                state[k] = 2
                order.append(s)
                stack.pop()
    return order
