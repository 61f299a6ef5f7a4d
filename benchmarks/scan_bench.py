"""Loops: (1) one SGD training step of a tanh RNN (200 steps, batch 32, 128 inputs and hidden
units, float32; forward scan, BPTT and the updates) and (2) one minibatch of the DeepLearning
Tutorials' lstm.py (embedding, masked LSTM scan, mean pooling, softmax, adadelta: its
f_grad_shared then f_update; IMDB-sized: vocabulary 10000, 128 units, batch 16, 100 steps,
dropout off so every implementation runs the same graph).

    python benchmarks/scan_bench.py [--quick] [--threads N]

Columns: theanine on C (theanine-c), theanine's NumPy reference backend (reference; ref-plain:
the same without the loop rewrites, so every step's whole body runs in Python), a
hand-written NumPy step (numpy, RNN only), PyTensor's scan in its default mode and C mode
(pt-default, pt-c) and JAX's jitted lax.scan with value_and_grad (jax, RNN only). Every
implementation's cost and new parameters are checked against the NumPy step (RNN) or the
reference backend (LSTM) before timing. Targets (issue 15): the RNN step at least as fast as
the fastest of PyTensor and JAX, and at least 5x the reference backend.
"""

from __future__ import annotations

import threads  # isort: skip (sets OpenMP's threads before anything loads it)
import argparse
import os
import time
import warnings
from types import SimpleNamespace

import numpy as np
import rivals
from harness import (
    THEANINE,
    Row,
    Settings,
    Target,
    best_times,
    check,
    fmt_time,
    print_table,
    print_targets,
)

import theanine
import theanine.tensor as T
from theanine.compile.mode import get_mode

LR = 0.01
RNN_GROUP = "(1) RNN training step: 200 steps, batch 32, 128 hidden, float32"
LSTM_GROUP = "(2) lstm.py minibatch: 16 sequences of 100 steps, 128 units, float32"


# -- the RNN step, written once for any Theano-like module -----------------------------------------
def rnn_init(n: int, b: int, k: int, h: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": (rng.standard_normal((k, h)) * 0.1).astype("float32"),
            "U": (rng.standard_normal((h, h)) * 0.1).astype("float32"),
            "b": np.zeros(h, "float32"),
            "x": rng.standard_normal((n, b, k)).astype("float32"),
            "y": rng.standard_normal((n, b, h)).astype("float32")}


def theano_like_rnn(lib, tensor, init: dict, compile_fn):
    """The training step built with `lib` (theanine or pytensor: scan, shared, grad) and
    `tensor` (their tensor modules); `compile_fn(inputs, output, updates)` compiles it."""
    params = [lib.shared(init[k].copy(), name=k) for k in ("W", "U", "b")]
    W, U, b = params
    x, y = tensor.tensor3("x", dtype="float32"), tensor.tensor3("y", dtype="float32")
    h0 = tensor.zeros((x.shape[1], init["U"].shape[0]), dtype="float32")
    hs, _ = lib.scan(lambda xt, hp: tensor.tanh(tensor.dot(xt, W) + tensor.dot(hp, U) + b),
                     sequences=x, outputs_info=h0)
    cost = ((hs - y) ** 2).mean()
    grads = lib.grad(cost, params)
    lr = np.float32(LR)
    fn = compile_fn([x, y], cost, [(p, p - lr * g) for p, g in zip(params, grads)])
    return fn, params


def numpy_rnn(init: dict):
    """The hand-written step (forward, BPTT, in-place SGD) and its parameter list."""
    params = [init[k].copy() for k in ("W", "U", "b")]
    W, U, b = params

    def step(x, y):
        n, bs, _ = x.shape
        hs = np.empty((n, bs, U.shape[0]), np.float32)
        h = np.zeros((bs, U.shape[0]), np.float32)
        for t in range(n):
            h = hs[t] = np.tanh(x[t] @ W + h @ U + b)
        cost = np.mean((hs - y) ** 2)
        gh = 2 * (hs - y) / hs.size
        gW, gU, gb = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
        carry = np.zeros_like(h)
        for t in range(n - 1, -1, -1):
            d = (gh[t] + carry) * (1 - hs[t] ** 2)
            gW += x[t].T @ d
            gU += (hs[t - 1] if t else np.zeros_like(h)).T @ d
            gb += d.sum(axis=0)
            carry = d @ U.T
        for p, g in ((W, gW), (U, gU), (b, gb)):
            p -= LR * g
        return cost

    return step, params


def jax_rnn(init: dict):
    jax = rivals.jax_module()
    if jax is None:
        return None
    import jax.numpy as jnp

    def loss(params, x, y):
        W, U, b = params

        def step(h, xt):
            h = jnp.tanh(xt @ W + h @ U + b)
            return h, h

        _, hs = jax.lax.scan(step, jnp.zeros((x.shape[1], U.shape[0]), jnp.float32), x)
        return jnp.mean((hs - y) ** 2)

    @jax.jit
    def train(params, x, y):
        cost, g = jax.value_and_grad(loss)(params, x, y)
        return cost, [p - LR * gi for p, gi in zip(params, g)]

    state = {"params": [jnp.asarray(init[k]) for k in ("W", "U", "b")]}
    x, y = jnp.asarray(init["x"]), jnp.asarray(init["y"])

    def step():
        cost, state["params"] = train(state["params"], x, y)
        return cost.block_until_ready()

    return step, lambda: [np.asarray(p) for p in state["params"]]


def rnn_step(sizes: tuple, settings: Settings) -> Row:
    """Check one step of every implementation against NumPy's, then time them."""
    init = rnn_init(*sizes)
    x, y = init["x"], init["y"]
    np_step, np_params = numpy_rnn(init)
    want = np_step(x, y)
    want_params = [p.copy() for p in np_params]
    runs = {}
    plain = get_mode("FAST_RUN").excluding("scan")
    for col, backend, mode in ((THEANINE, "c", None), ("reference", "numpy", None),
                               ("ref-plain", "numpy", plain)):
        f, params = theano_like_rnn(theanine, T, init, lambda i, o, u, be=backend, m=mode:
                                    theanine.function(i, o, updates=u, backend=be, mode=m,
                                                      trust_input=True))
        runs[col] = (lambda f=f: f(x, y), lambda ps=params: [p.get_value() for p in ps])
    if rivals.pytensor_module():
        import pytensor
        import pytensor.tensor as pt

        for col in rivals.PT_COLUMNS:
            f, params = theano_like_rnn(pytensor, pt, init, lambda i, o, u, c=col:
                                        rivals.pytensor_function(c, i, o, u))
            runs[col] = (lambda f=f: f(x, y), lambda ps=params: [p.get_value() for p in ps])
    jx = jax_rnn(init)
    if jx is not None:
        runs["jax"] = jx
    for col, (step, values) in runs.items():
        check(f"rnn cost [{col}]", step(), want, 2e-4)
        for k, got, ref in zip("WUb", values(), want_params):
            check(f"rnn new {k} [{col}]", got, ref, 2e-3, atol=1e-6)
    calls = {col: step for col, (step, _) in runs.items()}
    calls["numpy"] = lambda: np_step(x, y)
    times = best_times(calls, settings)
    return Row(RNN_GROUP, "rnn train step", times.pop(THEANINE), times)


# -- the lstm tutorial's minibatch ---------------------------------------------------------------
def lstm_init(vocab: int, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """lstm.py's init_params: random embeddings, orthogonal W and U, zero biases."""
    rng = np.random.default_rng(seed)

    def ortho():
        u, _, _ = np.linalg.svd(rng.standard_normal((dim, dim)))
        return u.astype("float32")

    return {"Wemb": (0.01 * rng.random((vocab, dim))).astype("float32"),
            "lstm_W": np.concatenate([ortho() for _ in range(4)], axis=1),
            "lstm_U": np.concatenate([ortho() for _ in range(4)], axis=1),
            "lstm_b": np.zeros(4 * dim, "float32"),
            "U": (0.01 * rng.standard_normal((dim, 2))).astype("float32"),
            "b": np.zeros(2, "float32")}


def lstm_batch(vocab: int, n_steps: int, batch: int, seed: int = 1):
    """A padded minibatch as lstm.py's prepare_data makes it: x (steps, batch) int64, mask."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(n_steps // 2, n_steps + 1, batch)
    lengths[0] = n_steps
    x = np.zeros((n_steps, batch), "int64")
    mask = np.zeros((n_steps, batch), "float32")
    for i, n in enumerate(lengths):
        x[:n, i] = rng.integers(1, vocab, n)
        mask[:n, i] = 1
    return x, mask, rng.integers(0, 2, batch).astype("int64")


def theano_like_lstm(lib, tensor, nnet, init: dict, compile_fn):
    """lstm.py's build_model and adadelta (dropout off), with `lib`/`tensor` as in the RNN and
    `nnet` holding sigmoid and softmax (PyTensor moved them out of tensor.nnet)."""
    tparams = {k: lib.shared(v.copy(), name=k) for k, v in init.items()}
    dim = init["lstm_U"].shape[0]
    x = tensor.matrix("x", dtype="int64")
    mask = tensor.matrix("mask", dtype="float32")
    y = tensor.vector("y", dtype="int64")
    n_steps, n_samples = x.shape[0], x.shape[1]
    emb = tparams["Wemb"][x.flatten()].reshape([n_steps, n_samples, dim])

    def _slice(v, n):
        return v[:, n * dim:(n + 1) * dim]

    def _step(m_, x_, h_, c_):
        preact = tensor.dot(h_, tparams["lstm_U"]) + x_
        i = nnet.sigmoid(_slice(preact, 0))
        f = nnet.sigmoid(_slice(preact, 1))
        o = nnet.sigmoid(_slice(preact, 2))
        c = tensor.tanh(_slice(preact, 3))
        c = f * c_ + i * c
        c = m_[:, None] * c + (np.float32(1.0) - m_)[:, None] * c_
        h = o * tensor.tanh(c)
        h = m_[:, None] * h + (np.float32(1.0) - m_)[:, None] * h_
        return h, c

    below = tensor.dot(emb, tparams["lstm_W"]) + tparams["lstm_b"]
    zeros = tensor.alloc(np.float32(0.0), n_samples, dim)
    (hs, _), _ = lib.scan(_step, sequences=[mask, below], outputs_info=[zeros, zeros],
                          n_steps=n_steps)
    proj = (hs * mask[:, :, None]).sum(axis=0) / mask.sum(axis=0)[:, None]
    pred = nnet.softmax(tensor.dot(proj, tparams["U"]) + tparams["b"])
    cost = -tensor.log(pred[tensor.arange(n_samples), y] + np.float32(1e-8)).mean()
    params = list(tparams.values())
    grads = lib.grad(cost, params)

    def zeros_like(p, tag):
        return lib.shared(p.get_value() * np.float32(0.0), name=f"{p.name}_{tag}")

    zg = [zeros_like(p, "grad") for p in params]
    ru2 = [zeros_like(p, "rup2") for p in params]
    rg2 = [zeros_like(p, "rgrad2") for p in params]
    c95, c05, eps = np.float32(0.95), np.float32(0.05), np.float32(1e-6)
    f_grad = compile_fn([x, mask, y], cost, [(a, g) for a, g in zip(zg, grads)]
                        + [(r, c95 * r + c05 * g ** 2) for r, g in zip(rg2, grads)])
    updir = [-tensor.sqrt(u + eps) / tensor.sqrt(r + eps) * g for g, u, r in zip(zg, ru2, rg2)]
    f_update = compile_fn([], [], [(u, c95 * u + c05 * d ** 2) for u, d in zip(ru2, updir)]
                          + [(p, p + d) for p, d in zip(params, updir)])
    return f_grad, f_update, params


def lstm_minibatch(sizes: tuple, settings: Settings) -> Row:
    """Check one minibatch of each implementation against the reference backend's, then time."""
    vocab, dim, n_steps, batch = sizes
    init = lstm_init(vocab, dim)
    x, mask, y = lstm_batch(vocab, n_steps, batch)
    runs = {}

    def add(col, lib, tensor, nnet, compile_fn):
        f_grad, f_update, params = theano_like_lstm(lib, tensor, nnet, init, compile_fn)

        def step():
            cost = f_grad(x, mask, y)
            f_update()
            return cost

        runs[col] = (step, lambda: [p.get_value() for p in params])

    for col, backend in ((THEANINE, "c"), ("reference", "numpy")):
        add(col, theanine, T, T.nnet, lambda i, o, u, be=backend: theanine.function(
            i, o, updates=u, backend=be, trust_input=True))
    if rivals.pytensor_module():
        import pytensor
        import pytensor.tensor as pt
        from pytensor.tensor.special import softmax

        nnet = SimpleNamespace(sigmoid=pt.sigmoid, softmax=lambda v: softmax(v, axis=-1))
        for col in rivals.PT_COLUMNS:
            add(col, pytensor, pt, nnet,
                lambda i, o, u, c=col: rivals.pytensor_function(c, i, o, u))
    want = runs["reference"][0]()
    want_params = runs["reference"][1]()
    for col, (step, values) in runs.items():
        if col != "reference":
            check(f"lstm cost [{col}]", step(), want, 2e-4)
            for got, ref in zip(values(), want_params):
                check(f"lstm new parameters [{col}]", got, ref, 2e-3, atol=1e-6)
    times = best_times({col: step for col, (step, _) in runs.items()}, settings)
    return Row(LSTM_GROUP, "lstm minibatch", times.pop(THEANINE), times)


def targets(rnn: Row, lstm: Row) -> list[Target]:
    """RNN: at least as fast as the fastest peer and 5x the reference; LSTM: beats PyTensor."""
    out = []
    s = rnn.speedup("reference")
    out.append(Target("(1) RNN step: >= 5x the reference backend", s >= 5, f"{s:.2f}x"))
    best = rnn.fastest(("pt-default", "pt-c", "jax"))
    if best is not None:
        col, t = best
        out.append(Target("(1) RNN step: at least as fast as the fastest peer", t >= rnn.theanine,
                          f"{t / rnn.theanine:.2f}x vs {col} ({fmt_time(t)})"))
    best = lstm.fastest(rivals.PT_COLUMNS)
    if best is not None:
        col, t = best
        out.append(Target("(2) lstm minibatch: faster than PyTensor", t > lstm.theanine,
                          f"{t / lstm.theanine:.2f}x vs {col} ({fmt_time(t)})"))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short timings")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS and BLAS threads (default: unset, all cores)")
    args = parser.parse_args(argv)
    threads.pin(args.threads, __file__, argv)
    settings = Settings(budget=0.1, min_rounds=3) if args.quick else Settings(budget=2.0)
    rnn_sizes = (20, 8, 16, 16) if args.quick else (200, 32, 128, 128)
    lstm_sizes = (500, 16, 20, 4) if args.quick else (10000, 128, 100, 16)
    started = time.perf_counter()
    print(f"theanine {theanine.__version__} | numpy {np.__version__} | {os.cpu_count()} cores"
          f" | {threads.describe(args.threads)}"
          + (" | QUICK: small sizes, targets indicative only" if args.quick else ""))
    rivals.pytensor_module()
    warnings.filterwarnings("ignore", message="Scan return signature will change")
    rnn = rnn_step(rnn_sizes, settings)
    lstm = lstm_minibatch(lstm_sizes, settings)
    print_table([rnn, lstm])
    print_targets(targets(rnn, lstm))
    rivals.print_notes(started)


if __name__ == "__main__":
    main()
