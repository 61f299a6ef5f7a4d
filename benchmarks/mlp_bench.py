"""Workload (4): one SGD training step of a 784-500-10 tanh/softmax MLP (categorical
cross-entropy on integer labels, batch 60) on shared W1, b1, W2, b2; target: at least 2x NumPy
and faster than PyTensor. The graph builder is shared with the compile-time probe."""

from __future__ import annotations

import numpy as np
from harness import THEANINE, Row, Settings, Target, best_times, check, fmt_time, tolerance
from rivals import PT_COLUMNS, pytensor_function, pytensor_module

import theanine as th
import theanine.tensor as T

SIZES = (784, 500, 10)
BATCH = 60
LR = 0.01
GROUP = "(4) MLP 784-500-10 training step, batch 60"


def initial_values(dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Glorot-uniform weights, zero biases, a batch of inputs and integer labels."""
    rng = np.random.default_rng(seed)
    n_in, n_hid, n_out = SIZES
    r1, r2 = np.sqrt(6 / (n_in + n_hid)), np.sqrt(6 / (n_hid + n_out))
    return {"W1": rng.uniform(-r1, r1, (n_in, n_hid)).astype(dtype),
            "b1": np.zeros(n_hid, dtype),
            "W2": rng.uniform(-r2, r2, (n_hid, n_out)).astype(dtype),
            "b2": np.zeros(n_out, dtype),
            "x": rng.uniform(0, 1, (BATCH, n_in)).astype(dtype),
            "y": rng.integers(0, n_out, BATCH).astype("int64")}


def theanine_graph(dtype: str, init: dict[str, np.ndarray]):
    """The theanine training graph: (inputs, cost, updates, shared params)."""
    params = [th.shared(init[k].copy(), name=k) for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    x, y = T.tensor(dtype, shape=(None, None), name="x"), T.lvector("y")
    h = T.tanh(T.dot(x, W1) + b1)
    p = T.nnet.softmax(T.dot(h, W2) + b2)
    cost = T.mean(T.nnet.categorical_crossentropy(p, y))
    grads = T.grad(cost, params)
    updates = [(w, w - LR * g) for w, g in zip(params, grads)]
    return [x, y], cost, updates, params


def _pytensor_train(dtype: str, init: dict[str, np.ndarray]):
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import softmax

    fns = {}
    for col in PT_COLUMNS:
        params = [pytensor.shared(init[k].copy(), name=k) for k in ("W1", "b1", "W2", "b2")]
        W1, b1, W2, b2 = params
        x, y = pt.matrix("x", dtype=dtype), pt.vector("y", dtype="int64")
        h = pt.tanh(x @ W1 + b1)
        p = softmax(h @ W2 + b2, axis=-1)
        cost = -pt.mean(pt.log(p)[pt.arange(y.shape[0]), y])
        grads = pytensor.grad(cost, params)
        lr = pt.constant(np.asarray(LR, dtype))  # a Python float would upcast float32 here
        updates = [(w, w - lr * g) for w, g in zip(params, grads)]
        fns[col] = (pytensor_function(col, [x, y], cost, updates), params)
    return fns


def numpy_train(init: dict[str, np.ndarray]):
    """The hand-written NumPy step (forward, backward, in-place SGD) and its parameter list."""
    params = [init[k].copy() for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params

    def step(x: np.ndarray, y: np.ndarray):
        n = x.shape[0]
        h = np.tanh(x @ W1 + b1)
        z = h @ W2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        cost = -np.mean(np.log(p[rows, y]))
        dz = p
        dz[rows, y] -= 1
        dz /= n
        dh = (dz @ W2.T) * (1 - h * h)
        for w, g in ((W2, h.T @ dz), (b2, dz.sum(axis=0)), (W1, x.T @ dh),
                     (b1, dh.sum(axis=0))):
            w -= LR * g
        return cost

    return step, params


def training_step(dtype: str, settings: Settings) -> Row:
    """Check one step of every implementation against NumPy's (cost and new parameters), then
    time repeated steps."""
    init = initial_values(dtype)
    x, y = init["x"], init["y"]
    inputs, cost, updates, params = theanine_graph(dtype, init)
    f = th.function(inputs, cost, updates=updates, backend="c", trust_input=True)
    np_step, np_params = numpy_train(init)
    want_cost = np_step(x, y)
    want_params = [p.copy() for p in np_params]
    rtol = tolerance(dtype)
    runs = {THEANINE: (lambda: f(x, y), lambda: [p.get_value() for p in params])}
    if pytensor_module():
        for col, (g, pparams) in _pytensor_train(dtype, init).items():
            runs[col] = (lambda g=g: g(x, y), lambda pp=pparams: [p.get_value() for p in pp])
    for col, (step, values) in runs.items():
        check(f"mlp {dtype} cost [{col}]", step(), want_cost, rtol)
        for k, got, want in zip(("W1", "b1", "W2", "b2"), values(), want_params):
            check(f"mlp {dtype} new {k} [{col}]", got, want, rtol, atol=1e-7)
    calls = {col: step for col, (step, _) in runs.items()}
    calls["numpy"] = lambda: np_step(x, y)
    times = best_times(calls, settings)
    return Row(GROUP, f"train step {dtype}", times.pop(THEANINE), times)


def step_summary(dtype: str) -> str:
    """Which steps of the compiled MLP run as C kernels and which as library calls."""
    from collections import Counter

    from theanine.codegen.fusion import KernelStep

    inputs, cost, updates, _ = theanine_graph(dtype, initial_values(dtype))
    f = th.function(inputs, cost, updates=updates, backend="c")
    steps = f._run.steps
    kernels = [s for s in steps if isinstance(s, KernelStep)]
    library = Counter(type(s.node.op).__name__ for s in steps if not isinstance(s, KernelStep))
    calls = ", ".join(f"{name} x{k}" for name, k in library.most_common())
    return (f"MLP {dtype}: {len(steps)} steps = {len(kernels)} C kernels "
            f"({sum(len(s.nodes) for s in kernels)} graph nodes fused) + "
            f"{sum(library.values())} library calls ({calls})")


def targets(rows: list[Row]) -> list[Target]:
    """At least 2x NumPy and faster than the faster PyTensor mode."""
    out = []
    for r in rows:
        s = r.speedup("numpy")
        out.append(Target(f"(4) {r.name}: >= 2x NumPy", s >= 2, f"{s:.2f}x vs numpy"))
        best = r.fastest(("pt-default", "pt-c"))
        if best is not None:
            col, t = best
            out.append(Target(f"(4) {r.name}: faster than PyTensor", t > r.theanine,
                              f"{t / r.theanine:.2f}x vs {col} ({fmt_time(t)})"))
    return out
