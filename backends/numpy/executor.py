"""The reference executor: one generated Python function that calls each node's NumPy
implementation in order, so a call costs one Python statement per node and nothing else.

Two memory rules keep large arrays cheap: an elementwise ufunc writes into the buffer of an
input that dies at that node (when shapes and dtypes agree at run time), and every intermediate
is released right after its last use. Without them each node would allocate fresh memory that
the C allocator hands back to the OS and page-faults in again on the next call.

Generated source uses only generated names (i0, v3_0, f2, k1); no user string is ever spliced
into it.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

import numpy as np

from theanine.backend import Backend
from theanine.graph.basic import Apply, Constant, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.graph.traversal import buffer_root
from theanine.tensor.elemwise import Elemwise


def _buffer_lifetimes(fgraph: FunctionGraph) -> tuple[dict, set]:
    """For each buffer root: the index of the last node reading it or any view of it; and the
    roots that outputs may alias (never reusable)."""
    last: dict = {}
    for k, node in enumerate(fgraph.nodes):
        for v in node.inputs:
            last[buffer_root(v)] = k
    held = {buffer_root(v) for v in fgraph.outputs}
    return last, held


def _reusable_input(node: Apply, fn, k: int, last: dict, held: set) -> Variable | None:
    """An input of elementwise `node` whose buffer may receive the output, or None: it was
    allocated by its own node, and neither it nor any view of it is read after this node."""
    if not (isinstance(node.op, Elemwise) and isinstance(fn, np.ufunc)):
        return None
    out = node.outputs[0]
    for v in node.inputs:
        if (v.owner is not None and buffer_root(v) is v and last.get(v) == k
                and v not in held and v.type.numpy_dtype == out.type.numpy_dtype
                and v.ndim == out.ndim):
            return v
    return None


def build_executor(fgraph: FunctionGraph, backend: Backend, timed: bool = False) -> Callable:
    """Compile `fgraph` to `run(*inputs) -> tuple(outputs)` calling, for each node, the
    callable its entry in `backend`'s op table gives (backends/numpy/library.py).

    timed: the profiler's version, which adds each node's host time (perf_counter) and run
    into the lists `run.times` and `run.counts` (one entry per node of fgraph.nodes)."""
    names: dict = {}
    env: dict = {"ndarray": np.ndarray}
    if timed:
        env.update(clock=perf_counter, T=[0.0] * len(fgraph.nodes), C=[0] * len(fgraph.nodes))
    lines = []
    outputs = set(fgraph.outputs)
    last_use: dict = {}
    for k, node in enumerate(fgraph.nodes):
        for v in node.inputs:
            last_use[v] = k
    buffer_last, held = _buffer_lifetimes(fgraph)
    for i, v in enumerate(fgraph.inputs):
        names[v] = f"i{i}"

    def ref(v) -> str:
        if v not in names:
            if not isinstance(v, Constant):
                raise RuntimeError(f"executor: {v} is used before it is computed")
            name = f"k{len(env)}"
            env[name] = v.data
            names[v] = name
        return names[v]

    for k, node in enumerate(fgraph.nodes):
        fname = f"f{k}"
        fn = env[fname] = backend.impls[node.op].fn(node, backend)
        args = [ref(v) for v in node.inputs]
        outs = []
        for j, o in enumerate(node.outputs):
            names[o] = f"v{k}_{j}"
            outs.append(names[o])
        target = ", ".join(outs)
        call = f"{fname}({', '.join(args)})"
        reuse = _reusable_input(node, fn, k, buffer_last, held)
        if reuse is not None:
            r = names[reuse]
            same_shape = " and ".join(f"{r}.shape == {a}.shape" for a in args if a != r
                                      and not isinstance(node.inputs[args.index(a)], Constant))
            guard = f"{r}.__class__ is ndarray" + (f" and {same_shape}" if same_shape else "")
            if any(isinstance(v, Constant) and v.ndim == node.outputs[0].ndim
                   and v.type.shape != (1,) * v.ndim for v in node.inputs):
                guard = None  # a constant could widen the result; keep it simple
            if guard:
                call = f"{fname}({', '.join(args)}, out={r}) if {guard} else {call}"
        if timed:
            lines += ["    t_ = clock()", f"    {target} = {call}",
                      f"    T[{k}] += clock() - t_; C[{k}] += 1"]
        else:
            lines.append(f"    {target} = {call}")
        dead = [names[v] for v in node.inputs if last_use.get(v) == k and v.owner is not None
                and v not in outputs]
        if dead:
            lines.append(f"    del {', '.join(dict.fromkeys(dead))}")
    result = ", ".join(ref(v) for v in fgraph.outputs)
    params = ", ".join(f"i{i}" for i in range(len(fgraph.inputs)))
    trailing = "," if fgraph.outputs else ""
    src = (f"def run({params}):\n" + "\n".join(lines)
           + f"\n    return ({result}{trailing})\n")
    exec(compile(src, "<theanine-numpy-executor>", "exec"), env)
    run = env["run"]
    run.source = src
    if timed:
        run.times, run.counts = env["T"], env["C"]
    return run
