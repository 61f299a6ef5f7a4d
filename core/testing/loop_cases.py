"""Conformance cases for loops and the conditional: scans whose step functions are small random
elementwise graphs (drawn once, from a fixed seed, so every run checks the same ones) over
sequence and state taps, a non-sequence, go_backwards and truncate_gradient; scans of several
states and outputs; and ifelse, alone, with lists of values, and inside a scan. Each is checked
forward and by gradient on every backend, as every case is."""

from __future__ import annotations

import importlib
import random

from theanine.testing.cases import FLOAT, Case, free, register, sized
from theanine.testing.strategies import Domain

# tanh of sums of such values stays short of float32 saturation, where a device's tanh one ulp
# below 1 makes a gradient of 0 come out as 1e-5
UNIT = Domain(-1.0, 1.0)


def _tensor():
    return importlib.import_module("theanine.tensor")


def _scan(*args, **kwargs):
    return importlib.import_module("theanine").scan(*args, **kwargs)[0]


def _ifelse(*args):
    return importlib.import_module("theanine.ifelse").ifelse(*args)


UNARY = ("tanh", "sin", "cos")
BINARY = ("add", "sub", "mul")


def _expression(rng: random.Random, leaves: list, depth: int):
    """A random elementwise expression over `leaves` (symbolic values) of the given depth."""
    T = _tensor()
    if depth == 0:
        return leaves[rng.randrange(len(leaves))]
    if rng.random() < 0.3:
        return getattr(T, rng.choice(UNARY))(_expression(rng, leaves, depth - 1))
    a, b = (_expression(rng, leaves, depth - 1) for _ in range(2))
    return getattr(T, rng.choice(BINARY))(a, b)


def random_scan_case(seed: int) -> Case:
    """A scan over a sequence x (taps drawn from -2..1) with a state (taps drawn from -3..-1)
    and a non-sequence w, the step a random expression squashed by tanh; go_backwards and
    truncate_gradient drawn too."""
    rng = random.Random(seed)
    seq_taps = sorted(rng.sample([-2, -1, 0, 1], rng.randint(1, 3)))
    state_taps = sorted(rng.sample([-3, -2, -1], rng.randint(1, 2)))
    backwards = rng.random() < 0.4
    truncate = rng.choice([-1, -1, 2])
    depth = -min(state_taps)
    span = max(seq_taps) - min(seq_taps)
    body_seed = rng.randrange(1 << 30)

    def build(x, w, h0):
        def step(*slices):
            leaves = list(slices)  # the sequence's taps, the state's taps, then w
            expr = _expression(random.Random(body_seed), leaves, 2)
            return _tensor().tanh(expr + slices[len(seq_taps)] * 0.5)

        return _scan(step, sequences=dict(input=x, taps=seq_taps),
                     outputs_info=dict(initial=h0, taps=state_taps), non_sequences=w,
                     go_backwards=backwards, truncate_gradient=truncate)

    return Case(f"scan_random_{seed}", build,
                (free(2, domain=UNIT, name="x"), free(1, domain=UNIT, name="w"),
                 free(2, domain=UNIT, name="h0")),
                FLOAT, shapes=sized(2, lambda n, m: [(n + span, m), (m,), (depth, m)]),
                label="Scan", extended=False,
                notes=f"seq taps {seq_taps}, state taps {state_taps}, go_backwards "
                      f"{backwards}, truncate_gradient {truncate}")


for _seed in range(4):
    register(random_scan_case(_seed))


def _states_and_outputs(x, W, h0):
    T = _tensor()

    def step(xt, h, c, W):
        c2 = T.tanh(T.dot(xt, W) + c * 0.5)
        return h * 0.5 + c2, c2, T.sum(h * c2)

    return _scan(step, sequences=x, non_sequences=W, outputs_info=[h0, h0, None])


register(Case("scan_states_and_outputs", _states_and_outputs,
              (free(2, domain=UNIT, name="x"), free(2, domain=UNIT, name="W"),
               free(1, domain=UNIT, name="h0")), FLOAT,
              shapes=sized(3, lambda n, k, m: [(n, k), (k, m), (m,)]), label="Scan",
              extended=False))


def _ifelse_case(x, y):
    T = _tensor()
    cond = T.gt(T.sum(x), 0)
    return [_ifelse(cond, x * y, T.sin(x) - y),
            *_ifelse(T.lt(T.sum(y), 1), [x + y, x * 2], [x - y, x])]


register(Case("ifelse", _ifelse_case, (free(2, name="x"), free(2, name="y")), FLOAT,
              label="IfElse", extended=False))


def _scan_ifelse(x, h0):
    T = _tensor()

    def step(xt, h):
        return _ifelse(T.gt(T.sum(xt), 0), T.tanh(h + xt), h * 0.5 - xt)

    return _scan(step, sequences=x, outputs_info=h0)


register(Case("scan_ifelse", _scan_ifelse, (free(2, name="x"), free(1, name="h0")), FLOAT,
              shapes=sized(2, lambda n, m: [(n, m), (m,)]), label="Scan", extended=False))
