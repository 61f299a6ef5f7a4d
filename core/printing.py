"""Looking at graphs: `pp` (one-line infix math), `debugprint` (an indented tree with node ids,
the way to see what the rewrites did to a compiled function), `pydotprint` (Graphviz) and
Theano's debugging op `Print` (print_op.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

import numpy as np

from theanine.graph.basic import Apply, Constant, Variable
from theanine.graph.fgraph import FunctionGraph
from theanine.graph.traversal import toposort
from theanine.print_op import Print
from theanine.tensor.elemwise import DimShuffle, Elemwise


def format_constant(c: Constant) -> str:
    """A constant's value as it reads in an expression: `2`, `0.5`, `[1, 2]`."""
    if c.name is not None:
        return c.name
    data = np.asarray(c.data)
    if data.size == 1:
        v = data.item()
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    if data.size <= 8:
        return np.array2string(data, separator=", ")
    return f"Constant{{shape={data.shape}, dtype={data.dtype}}}"


def _is_broadcast_only(op: DimShuffle) -> bool:
    """True if the DimShuffle only inserts broadcastable axes (keeps axes in order)."""
    kept = [d for d in op.new_order if d != "x"]
    return not op.drop and kept == sorted(kept)


def pp(var: Variable) -> str:
    """`var` as one line of math: infix for arithmetic (fully parenthesized), function calls
    for the rest, names for named variables, values for constants. Iterative, so graphs of any
    depth print."""
    memo: dict[Variable, str] = {}
    stack: list[tuple[Variable, bool]] = [(var, False)]
    while stack:
        v, inputs_done = stack.pop()
        if v in memo:
            continue
        if isinstance(v, Constant):
            memo[v] = format_constant(v)
        elif v.owner is None or (v.name is not None and v is not var):
            memo[v] = str(v)
        elif inputs_done:
            memo[v] = _show_node(v, [memo[i] for i in v.owner.inputs])
        else:
            stack.append((v, True))
            stack.extend((i, False) for i in reversed(v.owner.inputs) if i not in memo)
    return memo[var]


def _operand(text: str) -> str:
    """An operand of an infix operator: a unary expression or negative number is parenthesized
    so that `(-x) ** 2` does not print as `-x ** 2`."""
    return f"({text})" if text.startswith(("-", "~")) else text


def _show_node(v: Variable, args: list[str]) -> str:
    node = v.owner
    op = node.op
    if isinstance(op, Elemwise):
        sop = op.scalar_op
        if sop.symbol is not None and sop.nin == 2:
            return f"({_operand(args[0])} {sop.symbol} {_operand(args[1])})"
        if sop.symbol is not None and sop.nin == 1:
            return f"{sop.symbol}{_operand(args[0])}"
        return f"{sop.name}({', '.join(args)})"
    if isinstance(op, DimShuffle):
        if _is_broadcast_only(op):
            return args[0]
        if op.input_ndim == 2 and op.new_order == (1, 0):
            return f"{args[0]}.T"
    name = str(op) if len(node.outputs) == 1 else f"{op}.{v.index}"
    return f"{name}({', '.join(args)})"


def _outputs_of(obj) -> tuple[list[Variable], list[Apply] | None]:
    """The variables to print and, for a FunctionGraph (or compiled function), its node order."""
    fgraph = getattr(obj, "fgraph", obj)
    if isinstance(fgraph, FunctionGraph):
        return list(fgraph.outputs), list(fgraph.nodes)
    if isinstance(obj, Variable):
        return [obj], None
    if isinstance(obj, Apply):  # a node (as MonitorMode's functions receive): its outputs
        return list(obj.outputs), None
    if isinstance(obj, (list, tuple)) and all(isinstance(v, Variable) for v in obj):
        return list(obj), None
    raise TypeError(f"expected a Variable, a list of Variables, an Apply node, a FunctionGraph "
                    f"or a compiled function, got {type(obj).__name__}")


def _letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> BA: short ids like Theano's."""
    out = chr(65 + n % 26)
    while n >= 26:
        n //= 26
        out = chr(65 + n % 26) + out
    return out


def debugprint(obj, depth: int = -1, print_type: bool = False, file: IO | str | None = None
               ) -> str | IO | None:
    """Print an indented tree of `obj`: a Variable, a list of them, a FunctionGraph, or a
    compiled function (its rewritten graph, with each node's position in the execution
    order). As Theano: to stdout by default, returning None; to `file`, returning it; with
    file="str", returning the text only. `depth` (if > 0) prints that many levels.

    Each line is `op [id X]`, then the name in quotes, the type if `print_type`, and the
    execution-order index for graphs. A node already shown is repeated without its inputs.
    """
    outputs, order = _outputs_of(obj)
    position = {node: k for k, node in enumerate(order)} if order is not None else {}
    ids: dict[object, str] = {}
    done: set[Apply] = set()
    lines: list[str] = []

    def label(v: Variable) -> str:
        key = v.owner if v.owner is not None else v
        if key not in ids:
            ids[key] = _letters(len(ids))
        if isinstance(v, Constant):
            text = format_constant(v)
        elif v.owner is None:
            text = str(v)
        elif len(v.owner.outputs) > 1:
            text = f"{v.owner.op}.{v.index}"
        else:
            text = str(v.owner.op)
        text += f" [id {ids[key]}]"
        if v.owner is not None and v.name is not None:
            text += f" '{v.name}'"
        if print_type:
            text += f" <{v.type}>"
        if v.owner in position:
            text += f" {position[v.owner]}"
        return text

    def tree(roots: list[Variable], prefix: str) -> list[Apply]:
        """Print the trees under `roots`; the loops (nodes with an inner graph) met on the way."""
        loops = []
        stack = [(v, prefix) for v in reversed(roots)]
        while stack:  # depth first, iteratively: graphs of any depth print
            v, indent = stack.pop()
            lines.append(indent + label(v))
            node = v.owner
            if node is None or node in done or \
                    0 <= depth <= (len(indent) - len(prefix)) // 2 + 1:
                continue
            done.add(node)
            if getattr(node.op, "inner_outputs", None) is not None:
                loops.append(node)
            stack.extend((inp, indent + " |") for inp in reversed(node.inputs))
        return loops

    loops = tree(outputs, "")
    if loops:
        lines.extend(["", "Inner graphs:"])
    while loops:  # each loop's body, as Theano prints a scan's: inner nodes marked with '>'
        node = loops.pop(0)
        lines.extend(["", label(node.outputs[0])])
        loops.extend(tree(list(node.op.inner_outputs), " >"))
    text = "\n".join(lines)
    if file == "str":
        return text
    print(text, file=file if file is not None else sys.stdout)
    return file


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot_source(obj) -> str:
    """The Graphviz description of `obj`: boxes for ops, ellipses for inputs (green),
    constants (grey) and outputs (blue); edges carry the input position for multi-input ops."""
    outputs, order = _outputs_of(obj)
    nodes = order if order is not None else toposort(outputs)
    number = {node: k for k, node in enumerate(nodes)}
    lines = ["digraph theanine {", '  node [fontname="Helvetica"];']
    leaves: dict[Variable, str] = {}

    def source(v: Variable) -> str:
        if v.owner is not None:
            return f"n{number[v.owner]}"
        if v not in leaves:
            leaves[v] = f"v{len(leaves)}"
            if isinstance(v, Constant):
                text, color = format_constant(v), "lightgrey"
            else:
                text, color = f"{v}\n{v.type}", "limegreen"
            lines.append(f"  {leaves[v]} [label={_dot_quote(text)}, shape=ellipse, "
                         f"style=filled, fillcolor={color}];")
        return leaves[v]

    for k, node in enumerate(nodes):
        text = str(node.op) if not isinstance(node.op, Elemwise) else node.op.scalar_op.name
        lines.append(f"  n{k} [label={_dot_quote(text)}, shape=box];")
        for i, inp in enumerate(node.inputs):
            edge = f' [label="{i}"]' if len(node.inputs) > 1 else ""
            lines.append(f"  {source(inp)} -> n{k}{edge};")
    for j, v in enumerate(outputs):
        text = f"{v.name or f'output {j}'}\n{v.type}"
        lines.append(f"  out{j} [label={_dot_quote(text)}, shape=ellipse, style=filled, "
                     f"fillcolor=lightskyblue];")
        lines.append(f"  {source(v)} -> out{j};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def pydotprint(obj, outfile: str | Path = "theanine.dot") -> Path:
    """Draw `obj` with Graphviz. A `.dot` outfile gets the description only; any other suffix
    (`.png`, `.svg`, `.pdf`) also writes the .dot beside it and renders it with Graphviz's
    `dot` program. Returns the path written."""
    outfile = Path(outfile)
    dot_path = outfile.with_suffix(".dot")
    dot_path.write_text(dot_source(obj))
    if outfile.suffix == ".dot":
        return outfile
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            f"pydotprint: rendering {outfile.suffix} needs Graphviz's `dot` program, which is not "
            f"on PATH. Install Graphviz (apt install graphviz, brew install graphviz, conda "
            f"install graphviz, or https://graphviz.org/download/), or pass a .dot outfile. The "
            f"graph description was written to {dot_path}.")
    subprocess.run([dot, f"-T{outfile.suffix[1:]}", str(dot_path), "-o", str(outfile)],
                   check=True, capture_output=True)
    return outfile


pprint = pp  # Theano's theano.printing.pprint

__all__ = ["Print", "pp", "pprint", "debugprint", "pydotprint", "dot_source", "format_constant"]
