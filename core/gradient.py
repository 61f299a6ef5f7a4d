"""Symbolic differentiation: `grad` (reverse mode over the graph), `jacobian`, `hessian`,
`verify_grad` (finite differences) and gradient-blocking helpers."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from theanine.graph.basic import Apply, Op, TraceScope, Variable, graph_error
from theanine.graph.traversal import toposort
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.type import DISCRETE_DTYPES, TensorType


class DisconnectedInputError(ValueError):
    """grad() was asked for the gradient with respect to a variable the cost does not use."""


def _as_list(x) -> tuple[list, bool]:
    if isinstance(x, (list, tuple)):
        return list(x), True
    return [x], False


def grad(cost, wrt, consider_constant: Sequence[Variable] | None = None,
         disconnected_inputs: str = "raise", known_grads: dict | None = None,
         return_disconnected: str = "zero", add_names: bool = True):
    """Symbolic gradient of scalar `cost` with respect to `wrt` (a variable or a list).

    known_grads: {variable: gradient} to start backpropagation from intermediate variables
    (cost may then be None). consider_constant: variables treated as constants.
    disconnected_inputs: 'raise', 'warn' or 'ignore' when some `wrt` is not an ancestor of the
    cost in the graph (behind consider_constant or disconnected_grad counts as not).
    return_disconnected: 'zero' (zeros) or 'none' / 'disconnected' (None) for such inputs.

    A `wrt` the cost depends on only through piecewise-constant ops (floor, round, argmax,
    casts to integers, comparisons) gets a zero gradient, not an error. Like Theano, an integer
    or boolean `wrt` always gets zeros, of dtype config.floatX.
    """
    from theanine.tensor.basic import constant

    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError("disconnected_inputs must be 'raise', 'warn' or 'ignore', got "
                         f"{disconnected_inputs!r}")
    if str(return_disconnected).lower() not in ("zero", "none", "disconnected"):
        raise ValueError("return_disconnected must be 'zero', 'none' or 'disconnected', got "
                         f"{return_disconnected!r}")
    wrt_list, was_list = _as_list(wrt)
    for v in wrt_list:
        if not isinstance(v, Variable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {type(v).__name__} {v!r}")
    seeds: dict[Variable, Variable] = {}
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise graph_error(f"grad: cost must be a scalar (0-d), got {cost} of type {cost.type}"
                              "; reduce it first, e.g. with T.sum(cost)")
        if cost.dtype in DISCRETE_DTYPES:
            raise graph_error(f"grad: cost {cost} has integer dtype {cost.dtype}")
        seeds[cost] = constant(np.ones((), dtype=cost.dtype))
    for v, g in (known_grads or {}).items():
        g = as_tensor_variable(g)
        if g.ndim != v.ndim:
            raise graph_error(f"grad: known gradient for {v} has {g.ndim} dims, expected "
                              f"{v.ndim}")
        seeds[v] = g
    if not seeds:
        raise ValueError("grad: give a cost or known_grads")

    blockers = set(consider_constant or ())
    grads = backprop(seeds, wrt_list, blockers)
    connected = _connected(seeds, wrt_list, blockers)
    result = []
    for v in wrt_list:
        g = grads.get(v)
        if v not in connected:
            msg = (f"grad: the cost does not depend on {v} (type {v.type}); pass "
                   f"disconnected_inputs='ignore' or 'warn' to get zeros instead")
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(msg)
            if disconnected_inputs == "warn":
                warnings.warn(msg, stacklevel=2)
            g = _zeros_for(v) if str(return_disconnected).lower() == "zero" else None
        elif g is None or v.dtype in DISCRETE_DTYPES:
            g = _zeros_for(v)  # connected, but every path has a zero derivative
        elif add_names and v.name and g.name is None:
            g.name = f"(d{cost if cost is not None and cost.name else 'cost'}/d{v.name})"
        result.append(g)
    return result if was_list else result[0]


def _zeros_for(v: Variable) -> Variable:
    """The zero gradient of `v`: zeros like it, of dtype config.floatX if `v` is discrete."""
    from theanine.config import config
    from theanine.tensor.math import zeros_like

    return zeros_like(v, dtype=config.floatX if v.dtype in DISCRETE_DTYPES else None)


def _connected(seeds: dict, wrt: Sequence[Variable], blockers: set) -> set:
    """The `wrt` variables that are ancestors of some seed, not counting paths through
    `blockers` or through op inputs the op's `connection_pattern(node)` marks unconnected (a
    list per input of one bool per output; ops without one connect every input to every
    output)."""
    wrt_set = set(wrt)
    found: set = set()
    seen: set = set()
    stack = list(seeds)
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in wrt_set:
            found.add(v)
        node = v.owner
        if node is None or v in blockers:
            continue
        pattern = getattr(node.op, "connection_pattern", None)
        links = pattern(node) if pattern is not None else None
        stack.extend(inp for i, inp in enumerate(node.inputs)
                     if links is None or links[i][v.index])
    return found


def backprop(seeds: dict, wrt: Sequence[Variable], consider_constant=()) -> dict:
    """Reverse-mode accumulation from `seeds` {variable: gradient} to every variable in `wrt`.

    Only nodes on a path from some `wrt` to some seed are visited. Returns {variable: gradient}
    for the wrt variables that are connected.
    """
    from theanine.tensor.math import add, cast

    blockers = set(consider_constant)
    wrt_set = set(wrt)
    nodes = toposort(list(seeds), blockers=list(blockers))
    # which variables lie downstream of some wrt (and so can carry a gradient to it)
    depends: set[Variable] = set(wrt_set)
    for node in nodes:
        if any(i in depends for i in node.inputs):
            depends.update(node.outputs)
    contributions: dict[Variable, list[Variable]] = {v: [g] for v, g in seeds.items()}

    def total(v):
        parts = contributions.get(v)
        if not parts:
            return None
        g = parts[0]
        for p in parts[1:]:
            g = add(g, p) if isinstance(g.type, TensorType) else g + p  # (sparse: its own add)
        if g.dtype != v.dtype and v.dtype not in DISCRETE_DTYPES:
            g = cast(g, v.dtype)
        return g

    from theanine.branch_grad import Regions

    regions = Regions(nodes, seeds, wrt)
    for k in reversed(range(len(nodes))):
        _visit(nodes[k], contributions, total, depends, blockers, regions)
        for inp, g in regions.release(k, _zeros_for, add):
            contributions.setdefault(inp, []).append(g)
    return {v: total(v) for v in wrt if contributions.get(v)}


def _visit(node: Apply, contributions: dict, total, depends: set, blockers: set,
           regions) -> None:
    """Backprop through `node`: its inputs' gradient contributions from its outputs' (those
    leaving an ifelse branch wait in `regions`)."""
    if not any(o in contributions for o in node.outputs):
        return
    if not any(i in depends and i not in blockers for i in node.inputs):
        return
    out_grads = []
    for o in node.outputs:
        g = total(o)
        if g is None:
            from theanine.tensor.math import zeros_like

            g = zeros_like(o)
        out_grads.append(g)
    with TraceScope(node.trace):
        in_grads = regions.direct(node, node.op.pullback(node, node.inputs, node.outputs,
                                                         out_grads), out_grads)
    if len(in_grads) != len(node.inputs):
        raise RuntimeError(f"{node.op}.pullback returned {len(in_grads)} gradients for "
                           f"{len(node.inputs)} inputs")
    for inp, g in zip(node.inputs, in_grads):
        if g is None or inp in blockers or inp not in depends:
            continue
        if not isinstance(g, Variable):
            g = as_tensor_variable(g)
        if g.ndim != inp.ndim:
            raise RuntimeError(f"{node.op}.pullback gave a {g.ndim}-d gradient for the "
                               f"{inp.ndim}-d input {inp}")
        if not regions.hold(node, inp, g):
            contributions.setdefault(inp, []).append(g)


class StopGradient(Op):
    """Identity in the forward pass; blocks gradients (zero_grad / disconnected_grad)."""

    __props__ = ("mode",)

    def __init__(self, mode: str = "zero"):
        self.mode = mode

    def make_node(self, x):
        x = as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        return (inputs[0],)

    def py_fn(self, node):
        return lambda x: x

    view_of = {0: 0}

    def pullback(self, node, inputs, outputs, output_grads):
        return [None]

    def connection_pattern(self, node) -> list[list[bool]]:
        """zero_grad keeps its input connected (zero gradient); disconnected_grad cuts it."""
        return [[self.mode != "disconnected"]]

    def infer_shape(self, node, input_shapes):
        return input_shapes


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs: str = "raise"):
    """Row vector(s) `eval_points` times the Jacobian of `f` with respect to `wrt` (Theano's
    L-operator): reverse mode seeded with `eval_points` at `f`, no Jacobian formed. `f` and
    `eval_points` are matching variables or lists; the result has the structure of `wrt`."""
    fs, _ = _as_list(f)
    vs, _ = _as_list(eval_points)
    if len(fs) != len(vs):
        raise ValueError(f"Lop: {len(fs)} expressions but {len(vs)} eval_points")
    seeds = {}
    for fi, vi in zip(fs, vs):
        vi = as_tensor_variable(vi)
        if vi.ndim != fi.ndim:
            raise graph_error(f"Lop: eval point {vi} has {vi.ndim} dims but {fi} has {fi.ndim}; "
                              f"the L-operator's point has the shape of the expression")
        seeds[fi] = vi
    return grad(None, wrt, consider_constant=consider_constant,
                disconnected_inputs=disconnected_inputs, known_grads=seeds)


def Rop(f, wrt, eval_points, disconnected_outputs: str = "raise"):
    """The Jacobian of `f` with respect to `wrt` times `eval_points` (Theano's R-operator),
    computed as the reverse mode of the L-operator, which is linear in its point: two backward
    passes, no Jacobian formed. `wrt` and `eval_points` are matching variables or lists; the
    result has the structure of `f`."""
    from theanine.graph.traversal import ancestors, clone_graph
    from theanine.tensor.math import zeros_like
    from theanine.tensor.reduction import sum as sum_

    fs, f_list = _as_list(f)
    ws, _ = _as_list(wrt)
    vs, _ = _as_list(eval_points)
    if len(ws) != len(vs):
        raise ValueError(f"Rop: {len(ws)} wrt but {len(vs)} eval_points")
    vs = [as_tensor_variable(v) for v in vs]
    for w, v in zip(ws, vs):
        if v.ndim != w.ndim:
            raise graph_error(f"Rop: eval point {v} has {v.ndim} dims but {w} has {w.ndim}; "
                              f"the R-operator's point has the shape of the input")
    points = [fi.type.clone()(f"Rop_point_{i}") for i, fi in enumerate(fs)]
    pulled = grad(None, ws, known_grads=dict(zip(fs, points)), disconnected_inputs="ignore")
    total = sum_(pulled[0] * vs[0])
    for p, v in zip(pulled[1:], vs[1:]):
        total = total + sum_(p * v)
    out = grad(total, points, disconnected_inputs=disconnected_outputs)
    # the points are left in the graph only as shape sources (fill, sum-to-shape): zeros of
    # the expressions' shapes stand in for them; every other leaf stays itself
    leaves = [v for v in ancestors(out) if v.owner is None]
    if set(points) & set(leaves):
        keep = {v: v for v in leaves}
        keep.update({p: zeros_like(fi) for p, fi in zip(points, fs)})
        _, out, _ = clone_graph([], out, replace=keep)
    return out if f_list else out[0]


def zero_grad(x):
    """x in the forward pass; its gradient is zero."""
    return StopGradient("zero")(x)


def disconnected_grad(x):
    """x in the forward pass; the graph behind it is disconnected for grad()."""
    return StopGradient("disconnected")(x)


stop_gradient = disconnected_grad


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs: str = "raise"):
    """d expression / d wrt, of shape expression.shape + wrt.shape (a list for a list of wrt).

    As in Theano, a scan over the elements of the (flattened) expression, each step the
    gradient of one element; a scalar expression's Jacobian is its gradient.
    """
    from theanine.scan_module.builder import build_scan
    from theanine.tensor.allocation import arange
    from theanine.tensor.join import concatenate

    expression = as_tensor_variable(expression)
    wrt_list, was_list = _as_list(wrt)
    if expression.ndim == 0:
        result = grad(expression, wrt_list, consider_constant=consider_constant,
                      disconnected_inputs=disconnected_inputs)
        return result if was_list else result[0]
    flat = expression.flatten() if expression.ndim != 1 else expression

    def row(k, *args):
        flat, ws = args[len(wrt_list)], args[len(wrt_list) + 1:]
        return [grad(flat[k], w, consider_constant=consider_constant,
                     disconnected_inputs=disconnected_inputs) for w in ws]

    # each row is a recurrent output whose previous value is unused, so the rows' shape is
    # wrt's own even when the expression is empty and the loop takes no step
    first = [_zeros_for(w) for w in wrt_list]
    rows, _ = build_scan(row, arange(flat.shape[0]), first, [flat, *wrt_list], None, -1, False,
                         "jacobian", False, True, default_updates=False)
    if expression.ndim != 1:
        rows = [r.reshape(concatenate([expression.shape, w.shape]), ndim=expression.ndim + w.ndim)
                for r, w in zip(rows, wrt_list)]
    return rows if was_list else rows[0]


def hessian(cost, wrt, consider_constant=None, disconnected_inputs: str = "raise"):
    """Matrix of second derivatives of scalar `cost` with respect to vector(s) `wrt`."""
    wrt_list, was_list = _as_list(wrt)
    result = []
    for w in wrt_list:
        if w.ndim != 1:
            raise graph_error(f"hessian: wrt must be a vector, got {w} with {w.ndim} dims")
        g = grad(cost, w, consider_constant=consider_constant,
                 disconnected_inputs=disconnected_inputs)
        result.append(jacobian(g, w, consider_constant=consider_constant,
                               disconnected_inputs=disconnected_inputs))
    return result if was_list else result[0]


class GradientError(AssertionError):
    """verify_grad found a symbolic gradient that disagrees with finite differences."""


def verify_grad(fun: Callable, pt: Sequence, n_tests: int = 2, rng=None, eps: float | None = None,
                abs_tol: float | None = None, rel_tol: float | None = None,
                mode=None) -> None:
    """Check the symbolic gradient of `fun` at point `pt` against central finite differences.

    `fun` maps symbolic inputs (one per array in `pt`) to a tensor; its output is projected on a
    random tensor to make a scalar cost. Raises GradientError naming the input that disagrees.
    """
    from theanine.compile.function import function

    rng = rng or np.random.default_rng(0)
    pt = [np.array(p) for p in pt]
    for p in pt:
        if p.dtype.kind != "f":
            raise TypeError(f"verify_grad: points must be floating point, got {p.dtype}")
    dtype = np.result_type(*pt)
    eps = eps if eps is not None else (1e-7 if dtype == np.float64 else 3e-3)
    tol = 1e-4 if dtype == np.float64 else 1e-2
    abs_tol = abs_tol if abs_tol is not None else tol
    rel_tol = rel_tol if rel_tol is not None else tol
    inputs = [TensorType(p.dtype, (None,) * p.ndim)(f"input_{i}") for i, p in enumerate(pt)]
    out = as_tensor_variable(fun(*inputs))
    f_out = function(inputs, out, mode=mode)
    out_shape = np.shape(f_out(*pt))
    for _ in range(n_tests):
        proj = rng.uniform(-1, 1, out_shape).astype(out.dtype) if out_shape else \
            np.asarray(rng.uniform(0.5, 1.5), dtype=out.dtype)
        cost = (out * proj).sum()
        f_cost = function(inputs, cost, mode=mode)
        f_grad = function(inputs, grad(cost, inputs, disconnected_inputs="ignore"), mode=mode)
        analytic = f_grad(*pt)
        for i, p in enumerate(pt):
            numeric = np.zeros_like(p, dtype=np.float64)
            flat = numeric.reshape(-1)
            for j in range(p.size):
                plus, minus = [q.copy() for q in pt], [q.copy() for q in pt]
                plus[i].reshape(-1)[j] += eps
                minus[i].reshape(-1)[j] -= eps
                flat[j] = (float(f_cost(*plus)) - float(f_cost(*minus))) / (2 * eps)
            a = np.asarray(analytic[i], dtype=np.float64)
            err = np.abs(a - numeric)
            bad = ~(err <= abs_tol + rel_tol * np.abs(numeric))  # NaN counts as bad
            if np.any(bad):
                k = int(np.argmax(err))
                raise GradientError(
                    f"verify_grad: gradient of input {i} (shape {p.shape}) disagrees with finite "
                    f"differences at flat index {k}: symbolic {a.reshape(-1)[k]!r}, numeric "
                    f"{numeric.reshape(-1)[k]!r} (max abs error {err.max():.3g}, "
                    f"abs_tol {abs_tol}, rel_tol {rel_tol})"
                )
