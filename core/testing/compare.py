"""Compile one graph on a backend and on the NumPy reference and compare what they compute:
outputs (dtype, shape, values within per-dtype tolerances) and gradients of a random projection
of the outputs; the inputs must come back unmodified.

`PreparedComparison` compiles once and checks many input draws; `compare_backend` is the
one-shot form (PyTensor's `compare_jax_and_py` is the model of its shape).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from theanine.testing.strategies import describe_array

REFERENCE = "numpy"
# relative tolerance per dtype; integers and bools must match exactly
RTOL = {"float16": 1e-3, "float32": 1e-5, "float64": 1e-12, "complex64": 1e-5,
        "complex128": 1e-12}


_SENTINEL = {"b": True, "f": np.nan, "c": np.nan}  # what a caller scribbles on old results


class ConformanceError(AssertionError):
    """A backend computed something other than the reference (the message says what)."""


class Unsupported(Exception):
    """The graph needs a dtype or op the backend declares unsupported (`capabilities`)."""


def rtol_for(dtype: str) -> float:
    """The relative tolerance for values of `dtype` (0 for exact dtypes)."""
    return RTOL.get(str(dtype), 0.0)


def unsupported_reason(backend, variables: Sequence, nodes: Sequence) -> str | None:
    """Why `backend` cannot run a graph with these variables and nodes according to its optional
    `capabilities` = {"dtypes": {...}, "unsupported_ops": {OpClassName or scalar op: reason}},
    or None when it declares nothing against it."""
    caps = getattr(backend, "capabilities", None) or {}
    allowed = caps.get("dtypes")
    if allowed is not None:
        for v in variables:
            if v.dtype not in allowed:
                return f"backend {backend.name!r} does not support dtype {v.dtype}"
    ops = caps.get("unsupported_ops") or {}
    for node in nodes:
        keys = [type(node.op).__name__]
        scalar = getattr(node.op, "scalar_op", None)
        if scalar is not None:
            keys.append(scalar.name)
        for key in keys:
            if key in ops:
                return f"backend {backend.name!r} does not support {key}: {ops[key]}"
    return None


def _graph(outputs: Sequence) -> tuple[list, list]:
    from theanine.graph.traversal import toposort

    nodes = toposort(list(outputs))
    variables = {id(v): v for n in nodes for v in [*n.inputs, *n.outputs]}
    variables.update({id(v): v for v in outputs})
    return list(variables.values()), nodes


def check_supported(backend: str, outputs: Sequence) -> None:
    """Raise ValueError when `backend` is not registered, Unsupported when its capabilities
    exclude the graph of `outputs`."""
    from theanine.backend import backends

    registered = backends()
    if backend not in registered:
        raise ValueError(f"unknown backend {backend!r}; registered: {sorted(registered)}")
    why = unsupported_reason(registered[backend], *_graph(outputs))
    if why:
        raise Unsupported(why)


def _is_float(dtype: str) -> bool:
    return np.dtype(dtype).kind == "f"


class PreparedComparison:
    """`outputs` of `inputs` compiled on `backend` and on the reference, plus (when `grad`) the
    gradients of sum_k sum(outputs[k] * projection[k]) with respect to every float input, the
    projections being extra inputs drawn at random per check. Raises Unsupported at creation
    when the backend's capabilities exclude the graph."""

    def __init__(self, backend: str, inputs: Sequence, outputs, grad: bool = True,
                 label: str = "", reference: str = REFERENCE, accumulates: bool = False,
                 mode=None):
        from theanine.compile.function import function
        from theanine.tensor.basic import as_tensor_variable

        self.backend, self.reference, self.label = backend, reference, label
        self.inputs = list(inputs)
        self.outputs = [as_tensor_variable(o) for o in
                        (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        self.accumulates = accumulates
        self.projections, self.grads, self.wrt, self.projected = [], [], [], []
        self._previous: list[tuple[np.ndarray, np.ndarray]] = []
        if grad:
            self._build_grads()
        all_out = self.outputs + self.grads
        check_supported(backend, all_out)
        args = self.inputs + self.projections
        kw = {"mode": mode, "on_unused_input": "ignore"}
        self.ref_forward = function(self.inputs, self.outputs, backend=reference, **kw)
        self.ref_full = function(args, all_out, backend=reference, **kw)
        try:
            self.run = function(args, all_out, backend=backend, **kw)
        except Exception as e:
            raise ConformanceError(f"{self._title()}: compiling on backend {backend!r} failed: "
                                   f"{type(e).__name__}: {e}") from e

    def _build_grads(self) -> None:
        from theanine.gradient import grad
        from theanine.tensor.reduction import sum as sum_
        from theanine.tensor.type import TensorType

        self.wrt = [k for k, i in enumerate(self.inputs) if _is_float(i.dtype)]
        self.projected = [k for k, o in enumerate(self.outputs) if _is_float(o.dtype)]
        if not self.wrt or not self.projected:
            return
        cost = None
        for k in self.projected:
            o = self.outputs[k]
            p = TensorType(o.dtype, (None,) * o.ndim)(f"projection_{k}")
            self.projections.append(p)
            term = sum_(o * p)
            cost = term if cost is None else cost + term
        try:
            self.grads = grad(cost, [self.inputs[k] for k in self.wrt],
                              disconnected_inputs="ignore")
        except Exception as e:
            raise ConformanceError(f"{self.label}: building the gradient failed: "
                                   f"{type(e).__name__}: {e}") from e

    def _title(self) -> str:
        return f"{self.label or 'graph'} on backend {self.backend!r} vs {self.reference!r}"

    def check(self, values: Sequence, rng: np.random.Generator | None = None) -> None:
        """Run both compiled functions on `values` and raise ConformanceError on a difference."""
        rng = rng or np.random.default_rng(0)
        before = [np.array(v, copy=True) for v in values]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # the graphs cast complex to real on purpose
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            try:
                forward = self.ref_forward(*values)
            except Exception as e:
                raise ConformanceError(self._message(
                    f"the reference backend raised {type(e).__name__}: {e}", values)) from e
            # positive weights: gradient sums of same-signed terms do not cancel, so both
            # sides' rounding stays small next to the result (random weights still expose
            # a wrong, missing or misplaced gradient element)
            projs = [rng.uniform(0.5, 1.5, np.shape(forward[k])).astype(p.dtype)
                     for k, p in zip(self.projected, self.projections)]
            expected = self.ref_full(*values, *projs)
            try:
                actual = self.run(*values, *projs)
            except Exception as e:
                raise ConformanceError(self._message(
                    f"backend raised {type(e).__name__}: {e}", values)) from e
        for k, (b, v) in enumerate(zip(before, values)):
            if not _same(b, np.asarray(v)):
                raise ConformanceError(self._message(f"input {k} ({self.inputs[k]}) was "
                                                     "modified in place", values))
        self._check_ownership(values, actual)
        n_out = len(self.outputs)
        for k, (e, a) in enumerate(zip(expected, actual)):
            if k < n_out:
                var, what, scaled = self.outputs[k], f"output {k}", self.accumulates
            else:
                i = self.wrt[k - n_out]
                var, scaled = self.grads[k - n_out], True
                what = f"gradient wrt input {i} ({self.inputs[i]})"
            problem = mismatch(np.asarray(e), np.asarray(a), var.dtype, scaled)
            if problem:
                raise ConformanceError(self._message(f"{what} [{var}, dtype {var.dtype}]: "
                                                     f"{problem}", values, e, a))
        self._previous = [(a, np.array(a, copy=True)) for a in map(np.asarray, actual)]

    def _check_ownership(self, values, actual) -> None:
        """Results are the caller's: a later call must not write into the previous call's
        results, and no result may share memory with an input or another result. The previous
        results are then overwritten, as a caller may do, so that a backend still holding
        them fails the next comparison."""
        for k, (a, saved) in enumerate(self._previous):
            if not _same(saved, a):
                raise ConformanceError(self._message(
                    f"result {k} of the previous call changed when the function ran again "
                    "(the backend reuses a buffer it returned)", values))
            if a.flags.writeable and a.size:
                a[...] = _SENTINEL.get(a.dtype.kind, 7)
        self._previous = []
        arrays = [np.asarray(v) for v in values]
        for k, a in enumerate(map(np.asarray, actual)):
            others = [(f"input {j}", v) for j, v in enumerate(arrays)] + \
                [(f"result {j}", np.asarray(b)) for j, b in enumerate(actual[:k])]
            for what, other in others:
                if _shares(a, other):
                    raise ConformanceError(self._message(
                        f"result {k} shares memory with {what}: results must be arrays the "
                        "caller owns", values))

    def _message(self, problem: str, values, expected=None, actual=None) -> str:
        lines = [f"{self._title()}: {problem}"]
        for k, (var, v) in enumerate(zip(self.inputs, values)):
            lines.append(f"  input {k} {var}: {describe_array(v)} = {_fmt(v)}")
        if expected is not None:
            lines.append(f"  expected: {_fmt(expected)}")
            lines.append(f"  actual:   {_fmt(actual)}")
        return "\n".join(lines)


def _shares(a: np.ndarray, b: np.ndarray) -> bool:
    """True if a and b provably overlap in memory (an undecidable overlap counts as none)."""
    if not (a.size and b.size):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10**6))
    except np.exceptions.TooHardError:
        return False


def _fmt(a) -> str:
    text = np.array2string(np.asarray(a), threshold=64, precision=17, separator=", ")
    return text.replace("\n", " ")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == \
        np.ascontiguousarray(b).tobytes()


def mismatch(expected: np.ndarray, actual: np.ndarray, dtype: str, scaled: bool) -> str | None:
    """What differs between an expected and an actual result of variable dtype `dtype` (None
    when they agree): dtype, shape, NaN/inf positions, then values within rtol_for(dtype) of
    |expected| plus an absolute floor of rtol (times max|expected| when `scaled`: sums and
    products accumulate rounding across elements)."""
    if actual.dtype != np.dtype(dtype) or expected.dtype != actual.dtype:
        return (f"dtype differs: expected {expected.dtype} (graph says {dtype}), got "
                f"{actual.dtype}")
    if expected.shape != actual.shape:
        return f"shape differs: expected {expected.shape}, got {actual.shape}"
    if expected.size == 0:
        return None
    rtol = rtol_for(dtype)
    if rtol == 0:
        bad = expected != actual
        if not bad.any():
            return None
        return _worst(expected, actual, bad, np.zeros(expected.shape), "exactly")
    e, a = expected.astype(np.complex128), actual.astype(np.complex128)
    e_nan, a_nan = np.isnan(e), np.isnan(a)
    finite = np.isfinite(e) & np.isfinite(a)
    bad = (e_nan != a_nan) | (~finite & ~e_nan & ~a_nan & (e != a))
    scale = max(1.0, float(np.abs(e[finite]).max(initial=0))) if scaled else 1.0
    with np.errstate(all="ignore"):
        err = np.where(finite, np.abs(e - a), 0)
        tol = rtol * np.abs(e) + rtol * scale
    bad |= finite & ~(err <= tol)
    if not bad.any():
        return None
    return _worst(expected, actual, bad, err, f"within rtol {rtol} (atol {rtol * scale:.3g})")


def _worst(expected, actual, bad, err, how: str) -> str:
    idx = np.unravel_index(int(np.argmax(np.where(bad, err, -1).ravel())), expected.shape)
    where = tuple(int(i) for i in idx)
    return (f"{int(bad.sum())} of {expected.size} elements differ (must agree {how}); "
            f"at index {where}: expected {expected[idx]!r}, got {actual[idx]!r}")


def compare_backend(backend_name: str, inputs: Sequence, outputs, values: Sequence,
                    grad: bool = True, label: str = "", rng: np.random.Generator | None = None,
                    accumulates: bool = False) -> None:
    """Compile `outputs` of `inputs` on `backend_name` and on the NumPy reference, run both on
    `values`, and raise ConformanceError if outputs (or gradients, when `grad`) differ; raise
    Unsupported if the backend's capabilities exclude the graph."""
    PreparedComparison(backend_name, inputs, outputs, grad, label,
                       accumulates=accumulates).check(values, rng)


__all__ = ["REFERENCE", "RTOL", "ConformanceError", "Unsupported", "PreparedComparison",
           "check_supported", "compare_backend", "mismatch", "rtol_for", "unsupported_reason"]
