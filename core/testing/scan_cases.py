"""Conformance cases for the scans loop_cases leaves out (n_steps symbolic, a while loop, only
the last steps kept, outputs without a state read over several sequence taps), and
`scan_programs`: a hypothesis strategy of random scans (an elementwise step over drawn sequence
and state taps and a non-sequence, a second output without state, go_backwards,
truncate_gradient, n_steps given or symbolic) with the values a NumPy loop computes, which
test_suite.test_random_scan runs on every backend, forward, by gradient and by finite
differences."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from theanine.testing.cases import FLOAT, Arg, Case, free, register, sized
from theanine.testing.loop_cases import UNIT
from theanine.testing.strategies import Domain, arrays, sides


def _theano():
    return importlib.import_module("theanine")


def _tensor():
    return importlib.import_module("theanine.tensor")


# -- random scans ------------------------------------------------------------------------------
_UNARY = {"tanh": np.tanh, "sin": np.sin, "cos": np.cos}
_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply}


@st.composite
def step_bodies(draw, n_leaves: int, depth: int = 2) -> tuple:
    """A random elementwise expression over leaves 0..n_leaves-1, as nested tuples:
    ("leaf", k), (unary name, e) or (binary name, e1, e2)."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return ("leaf", draw(st.integers(0, n_leaves - 1)))
    if draw(st.integers(0, 9)) < 3:
        return (draw(st.sampled_from(sorted(_UNARY))), draw(step_bodies(n_leaves, depth - 1)))
    return (draw(st.sampled_from(sorted(_BINARY))), draw(step_bodies(n_leaves, depth - 1)),
            draw(step_bodies(n_leaves, depth - 1)))


def evaluate(body: tuple, leaves: list, symbolic: bool):
    """The value of a step body over `leaves`, built with theanine.tensor or NumPy."""
    if body[0] == "leaf":
        return leaves[body[1]]
    args = [evaluate(b, leaves, symbolic) for b in body[1:]]
    return getattr(_tensor(), body[0])(*args) if symbolic else \
        {**_UNARY, **_BINARY}[body[0]](*args)


def text(body: tuple) -> str:
    """A step body written out, leaves as l0, l1, ..."""
    if body[0] == "leaf":
        return f"l{body[1]}"
    return f"{body[0]}({', '.join(text(b) for b in body[1:])})"


@dataclass
class ScanExample:
    """A random scan: symbolic `inputs` and `outputs` (the state's trace, then the stateless
    output's), input `values`, the outputs a NumPy loop computes (`expected`), whether the
    gradient is the true one (not truncated) and a readable `text`."""

    inputs: list
    outputs: list
    values: list[np.ndarray]
    expected: list[np.ndarray]
    exact_gradient: bool
    text: str


def _reference(x, w, h0, seq_taps, state_taps, n, backwards, bodies, dtype):
    """Both outputs of the scan, by a NumPy loop over the steps."""
    xs = x[::-1] if backwards else x
    states, ys = list(h0), []
    for t in range(n):
        row = t - min(seq_taps)
        leaves = [xs[row + k] for k in seq_taps] + [states[len(states) + k]
                                                   for k in state_taps] + [w]
        h = np.tanh(evaluate(bodies[0], leaves, False) + leaves[len(seq_taps)] * 0.5)
        ys.append(evaluate(bodies[1], leaves, False) * w)
        states.append(h.astype(dtype))
    m = x.shape[1]
    return [np.asarray(states[len(h0):], dtype).reshape(n, m),
            np.asarray(ys, dtype).reshape(n, m)]


@st.composite
def scan_programs(draw, dtype: str) -> ScanExample:
    """A random scan of one state (taps drawn from -3..-1) over a sequence (taps from -2..1)
    and a non-sequence, with a second output without state; go_backwards, truncate_gradient
    and a symbolic n_steps (running on fewer entries than the sequence holds) drawn too."""
    T = _tensor()
    seq_taps = sorted(draw(st.lists(st.sampled_from([-2, -1, 0, 1]), min_size=1, max_size=3,
                                    unique=True), label="sequence taps"))
    state_taps = sorted(draw(st.lists(st.sampled_from([-3, -2, -1]), min_size=1, max_size=2,
                                      unique=True), label="state taps"))
    backwards = draw(st.booleans(), label="go_backwards")
    truncate = draw(st.sampled_from([-1, -1, 1, 2]), label="truncate_gradient")
    symbolic_n = draw(st.booleans(), label="n_steps symbolic")
    n_leaves = len(seq_taps) + len(state_taps) + 1
    bodies = (draw(step_bodies(n_leaves), label="state body"),
              draw(step_bodies(n_leaves), label="output body"))
    n, m = draw(st.integers(1, 4), label="steps"), draw(sides(1, 3), label="width")
    extra = draw(st.integers(0, 2), label="unread entries") if symbolic_n else 0
    depth = -min(state_taps)
    x, w, h0 = (T.TensorType(dtype, (None,) * k)(name) for k, name in
                ((2, "x"), (1, "w"), (2, "h0")))
    values = [draw(arrays(dtype, shape, UNIT), label=name) for name, shape in
              (("x", (n + max(seq_taps) - min(seq_taps) + extra, m)), ("w", (m,)),
               ("h0", (depth, m)))]
    inputs = [x, w, h0]
    n_steps = None
    if symbolic_n:
        n_steps = T.iscalar("n")
        inputs.append(n_steps)
        values.append(np.asarray(n, "int32"))

    def step(*slices):
        leaves = list(slices)
        h = T.tanh(evaluate(bodies[0], leaves, True) + leaves[len(seq_taps)] * 0.5)
        return h, evaluate(bodies[1], leaves, True) * leaves[-1]

    initial = h0[0] if state_taps == [-1] else h0
    outputs, _ = _theano().scan(step, sequences=dict(input=x, taps=seq_taps),
                                outputs_info=[dict(initial=initial, taps=state_taps), None],
                                non_sequences=w, n_steps=n_steps, go_backwards=backwards,
                                truncate_gradient=truncate)
    expected = _reference(*values[:3], seq_taps, state_taps, n, backwards, bodies, dtype)
    return ScanExample(inputs, list(outputs), values, expected,
                       truncate == -1 or truncate >= n,
                       f"scan(sequence taps {seq_taps}, state taps {state_taps}, go_backwards "
                       f"{backwards}, truncate_gradient {truncate}, n_steps "
                       f"{'symbolic' if symbolic_n else 'from the sequence'}; state "
                       f"tanh({text(bodies[0])} + l{len(seq_taps)} * 0.5), output "
                       f"{text(bodies[1])} * w)")


def finite_difference_problem(cost, grads: list, values: list, wrt: list[int]) -> str | None:
    """Where the gradients `grads` (of float64 inputs `wrt`) disagree with central differences
    of `cost` (values -> float), or None."""
    eps = 1e-6
    for g, k in zip(grads, wrt):
        numeric = np.zeros(values[k].shape)
        for j in range(values[k].size):
            moved = []
            for sign in (1, -1):
                vals = [np.array(v, order="C") for v in values]  # reshape(-1) is a view
                vals[k].reshape(-1)[j] += sign * eps
                moved.append(cost(vals))
            numeric.reshape(-1)[j] = (moved[0] - moved[1]) / (2 * eps)
        err = np.abs(np.asarray(g, np.float64) - numeric)
        if not np.all(err <= 1e-5 + 1e-4 * np.abs(numeric)):
            j = int(np.argmax(err))
            return (f"gradient wrt input {k} disagrees with finite differences at flat index "
                    f"{j}: symbolic {np.asarray(g).reshape(-1)[j]!r}, numeric "
                    f"{numeric.reshape(-1)[j]!r}")
    return None


# -- registered cases --------------------------------------------------------------------------
def _symbolic_n_steps(x, h0, n):
    """A state and an output over the first n entries of a sequence (n an input)."""
    T = _tensor()
    return _theano().scan(lambda a, b, s: (s * T.cos(a) + b, a * s), n_steps=n,
                          sequences=dict(input=x, taps=[0, 2]), outputs_info=[h0, None])[0]


register(Case("scan_n_steps_symbolic", _symbolic_n_steps,
              (free(2, name="x"), free(1, name="h0"),
               Arg((), "int32", lambda shapes: Domain(0, max(shapes[0][0] - 2, 0)), "n")),
              FLOAT, shapes=sized(2, lambda k, m: [(k + 2, m), (m,), ()]), label="Scan",
              extended=False, notes="n_steps an input, from 0 to the sequence's usable length"))


def _while_loop(x0, limit):
    """Doubling a state until its sum passes a limit (at most 6 steps)."""
    T = _tensor()
    until = importlib.import_module("theanine.scan_module").until
    return _theano().scan(lambda s, lim: (s * 2 + 0.1, until(T.sum(T.abs(s)) > lim)),
                          outputs_info=x0, non_sequences=limit, n_steps=6)[0]


register(Case("scan_until", _while_loop,
              (free(1, name="x0"), Arg((), None, Domain(0.0, 20.0), "limit")), FLOAT,
              shapes=sized(1, lambda m: [(m,), ()]), label="Scan", extended=False,
              grad=False, notes="a while loop (until); its gradient is not checked"))


def _kept_steps(x, h0):
    """Only the last steps of a two-tap state are read: the loop keeps a ring of them."""
    seq = dict(input=x, taps=[-1, 0])
    out = _theano().scan(lambda a, b, s2, s1: s1 * 0.5 - s2 * a + b, sequences=seq,
                         outputs_info=dict(initial=h0, taps=[-2, -1]))[0]
    return [out[-1], out[-2:]]


register(Case("scan_kept_steps", _kept_steps, (free(2, name="x"), free(2, name="h0")), FLOAT,
              shapes=sized(2, lambda k, m: [(k + 3, m), (2, m)]), label="Scan",
              extended=False, notes="out[-1] and out[-2:] of a state with taps -2, -1"))


def _outputs_over_taps(x, w):
    """Two outputs without state, each step reading three entries of a sequence backwards."""
    T = _tensor()
    return _theano().scan(lambda a, b, c, w: (a * b - c * w, T.sum(T.sin(b) * w)),
                          sequences=dict(input=x, taps=[-1, 0, 2]), non_sequences=w,
                          go_backwards=True)[0]


register(Case("scan_outputs_over_taps", _outputs_over_taps,
              (free(2, name="x"), free(1, name="w")), FLOAT,
              shapes=sized(2, lambda k, m: [(k + 3, m), (m,)]), label="Scan", extended=False))

__all__ = ["ScanExample", "UNIT", "evaluate", "finite_difference_problem", "scan_programs",
           "step_bodies", "text"]
