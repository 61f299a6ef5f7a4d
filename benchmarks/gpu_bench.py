"""GPU benchmarks of the CUDA (or OpenCL) backend against CuPy, JAX and PyTorch on the same
machine, printed as ratios (peer time / theanine time: above 1 means theanine is faster) with
the issue's targets marked PASS or MISS.

Workloads: `a**2+b**2+2*a*b` and a full sum at 2^28 float32 (GB/s against the peak), row softmax
and `exp(2*x*y+y)` at 4096x4096, float32 GEMM 4096^3, the latency of a call on tiny host inputs,
a 784-500-10 MLP SGD step at batch 60 and 4096, and random draws (uniform float32 at 2^24, a
dropout of a 4096x4096 matrix) against the peers' generators. Operands live on the device
(theanine: shared variables, results stored as updates), each timing round ends with a device
synchronisation.
Peers that are not importable, or see no GPU, are skipped.

    python benchmarks/gpu_bench.py [--backend cuda|opencl] [--n 268435456] [--size 4096]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX shares the GPU politely

import numpy as np  # noqa: E402

import theanine as th  # noqa: E402
import theanine.tensor as T  # noqa: E402
from theanine.backend import get_backend  # noqa: E402

MLP = (784, 500, 10)
LR = 0.01


@dataclass
class Row:
    """One workload: theanine's best seconds per call, the peers' and what the issue asks."""

    name: str
    theanine: float
    metric: str = ""
    peers: dict[str, float] = field(default_factory=dict)
    target: str = ""
    passed: bool | None = None


def best_time(fn: Callable[[], object], sync: Callable[[object], None],
              budget: float = 1.0, min_rounds: int = 5) -> float:
    """Best seconds per call over rounds of back-to-back calls of about 10 ms, each round
    closed by `sync(last result)` so the device work is inside the round."""
    sync(fn())
    t = time.perf_counter()
    sync(fn())
    once = time.perf_counter() - t
    reps = max(1, min(1000, int(0.01 / max(once, 1e-7))))
    best, rounds, start = math.inf, 0, time.perf_counter()
    while rounds < min_rounds or time.perf_counter() - start < budget:
        t = time.perf_counter()
        for _ in range(reps):
            out = fn()
        sync(out)
        best = min(best, (time.perf_counter() - t) / reps)
        rounds += 1
    return best


def load_peers(wanted: tuple[str, ...]) -> dict[str, tuple[dict, Callable]]:
    """name -> (operations, sync) of the peer libraries that import and see a GPU."""
    found = {}
    for name in wanted:
        try:
            mod = importlib.import_module(name)
            found[name] = PEER_OPS[name](mod)
        except Exception as e:  # not installed, no driver, no GPU: skipped, said once
            print(f"peer {name}: skipped ({type(e).__name__}: {e})")
    return found


def _poly(a, b):
    return a * a + b * b + 2 * a * b


def _cupy(cp) -> tuple[dict, Callable]:
    from cupyx.scipy.special import softmax

    if cp.cuda.runtime.getDeviceCount() == 0:
        raise RuntimeError("no GPU")
    ops = {"put": cp.asarray, "poly": cp.fuse()(_poly), "sum": cp.sum,
           "softmax": lambda x: softmax(x, axis=1),
           "expo": cp.fuse()(lambda x, y: cp.exp(2 * x * y + y)), "gemm": cp.matmul,
           "uniform": lambda n: cp.random.random(n, dtype=cp.float32),
           "dropout": lambda x: x * (cp.random.random(x.shape, dtype=cp.float32) < 0.5)}
    return ops, lambda _: cp.cuda.runtime.deviceSynchronize()


def _jax(jax) -> tuple[dict, Callable]:
    if not any(d.platform == "gpu" for d in jax.devices()):
        raise RuntimeError("no GPU")
    jnp = jax.numpy
    ops = {"put": jax.device_put, "poly": jax.jit(_poly), "sum": jax.jit(jnp.sum),
           "softmax": jax.jit(lambda x: jax.nn.softmax(x, axis=1)),
           "expo": jax.jit(lambda x, y: jnp.exp(2 * x * y + y)), "gemm": jax.jit(jnp.matmul),
           "mlp": lambda init: _jax_mlp_step(jax, init),
           "uniform": jax.jit(lambda n: jax.random.uniform(jax.random.PRNGKey(0), (n,)),
                              static_argnums=0),
           "dropout": jax.jit(lambda x: x * (jax.random.uniform(jax.random.PRNGKey(0), x.shape)
                                             < 0.5))}
    return ops, jax.block_until_ready


def _torch(torch) -> tuple[dict, Callable]:
    if not torch.cuda.is_available():
        raise RuntimeError("no GPU")
    torch.backends.cuda.matmul.allow_tf32 = False  # plain float32 GEMM, as theanine computes
    ops = {"put": lambda v: torch.from_numpy(v).cuda(), "poly": _poly, "sum": torch.sum,
           "softmax": lambda x: torch.softmax(x, dim=1),
           "expo": lambda x, y: torch.exp(2 * x * y + y), "gemm": torch.matmul,
           "mlp": lambda init: _torch_mlp_step(torch, init),
           "tiny": lambda v: (torch.from_numpy(v).cuda() * 2 + 1).cpu().numpy(),
           "uniform": lambda n: torch.rand(n, device="cuda"),
           "dropout": lambda x: x * (torch.rand_like(x) < 0.5)}
    return ops, lambda _: torch.cuda.synchronize()


PEER_OPS = {"cupy": _cupy, "jax": _jax, "torch": _torch}


def time_peers(peers: dict, key: str, values: list[np.ndarray]) -> dict[str, float]:
    """Best seconds per call of operation `key` of each peer that has it, on device copies of
    `values`."""
    times = {}
    for name, (ops, sync) in peers.items():
        if key in ops:
            args = [ops["put"](v) for v in values]
            times[name] = best_time(functools.partial(ops[key], *args), sync)
    return times


class Theanine:
    """theanine on one backend: resident functions (shared operands, results as updates)."""

    def __init__(self, backend: str):
        self.backend = backend
        rt = get_backend(backend).runtime()
        self.rt = rt
        self.device = rt.device_name
        finish = rt.queue.finish if backend.startswith("opencl") else rt.cuda.Context.synchronize
        self.sync = lambda _: finish()

    def resident(self, build: Callable, values: list[np.ndarray]):
        """A no-argument function computing build(*shared values) into a shared result, and
        that result."""
        shared = [th.shared(v) for v in values]
        expr = build(*shared)
        out = th.shared(np.zeros((0,) * expr.ndim, expr.dtype), name="out")
        return th.function([], [], updates=[(out, expr)], backend=self.backend), out

    def time(self, build: Callable, values: list[np.ndarray], expected: np.ndarray,
             rtol: float = 1e-4) -> float:
        fn, out = self.resident(build, values)
        fn()
        np.testing.assert_allclose(out.get_value(), expected, rtol=rtol, atol=rtol)
        return best_time(fn, self.sync)


def bandwidth_rows(tn: Theanine, peers: dict, n: int, peak: float) -> list[Row]:
    rng = np.random.default_rng(0)
    a, b = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    log_n = int(math.log2(n))
    poly = Row(f"a**2+b**2+2ab f32 2^{log_n}",
               tn.time(lambda x, y: x ** 2 + y ** 2 + 2 * x * y, [a, b], _poly(a, b)),
               peers=time_peers(peers, "poly", [a, b]))
    total = Row(f"sum f32 2^{log_n}",
                tn.time(lambda x: x.sum(), [a], np.float32(a.astype(np.float64).sum()), 1e-3),
                peers=time_peers(peers, "sum", [a]))
    for row, nbytes, goal in ((poly, 3 * 4 * n, 0.85), (total, 4 * n, 0.80)):
        rate = nbytes / row.theanine
        row.metric = f"{rate / 1e9:.0f} GB/s"
        row.target = f">= {goal:.0%} of {peak / 1e12:.2f} TB/s ({rate / peak:.0%})"
        row.passed = rate >= goal * peak
    return [poly, total]


def fusion_rows(tn: Theanine, peers: dict, size: int) -> list[Row]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((size, size), dtype=np.float32)
    y = rng.standard_normal(size, dtype=np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    softmax = Row(f"softmax rows f32 {size}^2",
                  tn.time(T.nnet.softmax, [x], e / e.sum(axis=1, keepdims=True)),
                  peers=time_peers(peers, "softmax", [x]))
    expo = Row(f"exp(2xy+y) f32 {size}^2",
               tn.time(lambda u, v: T.exp(2 * u * v + v), [x, y], np.exp(2 * x * y + y), 1e-3),
               peers=time_peers(peers, "expo", [x, y]))
    for row in (softmax, expo):
        rivals = [t for k, t in row.peers.items() if k in ("cupy", "jax")]
        if rivals:
            row.target = "as fast as CuPy's fused kernels and JAX's jit"
            row.passed = row.theanine <= min(rivals)
    return [softmax, expo]


def gemm_row(tn: Theanine, peers: dict, size: int) -> Row:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    want = (a.astype(np.float64) @ b).astype(np.float32)
    row = Row(f"GEMM f32 {size}^3", tn.time(T.dot, [a, b], want, 1e-2),
              peers=time_peers(peers, "gemm", [a, b]))
    row.metric = f"{2 * size ** 3 / row.theanine / 1e12:.1f} TFLOP/s"
    cublas = [t for k, t in row.peers.items() if k in ("cupy", "torch")]
    if cublas:
        row.target = f">= 50% of cuBLAS via CuPy/PyTorch ({min(cublas) / row.theanine:.0%})"
        row.passed = row.theanine <= 2 * min(cublas)
    return row


def latency_row(tn: Theanine, peers: dict) -> Row:
    x = T.vector("x", dtype="float32")
    f = th.function([x], x * 2 + 1, backend=tn.backend)
    v = np.ones(4, np.float32)
    row = Row("tiny call (4 floats, host in/out)", best_time(functools.partial(f, v), _no_sync))
    for name, (ops, _) in peers.items():
        if "tiny" in ops:
            row.peers[name] = best_time(functools.partial(ops["tiny"], v), _no_sync)
    row.metric = f"{row.theanine * 1e6:.1f} us"
    row.target = "< 15 us end to end"
    row.passed = row.theanine < 15e-6
    return row


def random_rows(tn: Theanine, peers: dict, n: int, size: int) -> list[Row]:
    """Uniform float32 draws (n of them) and a dropout of a size^2 float32 matrix, against the
    peers' own generators (CuPy, PyTorch; JAX with one fixed key)."""
    from theanine.random_streams import RandomStream
    from theanine.tensor import philox

    key = philox.seed_key(7, 0)  # RandomStream(7)'s first draw
    uniform = np.asarray(philox.draw("uniform", "float32", key, 0, np.arange(n, dtype=np.uint64)))
    row_u = Row(f"uniform f32 {n}", tn.time(lambda: RandomStream(7).uniform((n,),
                                                                            dtype="float32"),
                                            [], uniform, 0))
    x = np.random.default_rng(3).standard_normal((size, size), dtype=np.float32)
    mask = philox.draw("uniform", "float32", key, 0, np.arange(size * size, dtype=np.uint64))
    row_d = Row(f"dropout p=0.5 f32 {size}^2",
                tn.time(lambda v: v * RandomStream(7).binomial(size=v.shape, p=np.float32(0.5),
                                                               dtype="float32"),
                        [x], x * (mask.reshape(size, size) < 0.5), 0))
    for name, (ops, sync) in peers.items():
        if "uniform" in ops:
            row_u.peers[name] = best_time(functools.partial(ops["uniform"], n), sync)
            row_d.peers[name] = best_time(functools.partial(ops["dropout"], ops["put"](x)), sync)
    for row, nbytes in ((row_u, 4 * n), (row_d, 8 * size * size)):
        row.metric = f"{nbytes / row.theanine / 1e9:.0f} GB/s"
        rivals = list(row.peers.values())
        if rivals:
            row.target = "as fast as the peers' generators"
            row.passed = row.theanine <= min(rivals)
    return [row_u, row_d]


def _no_sync(_) -> None:
    """Host results: the call itself waited for the device."""


def _mlp_init(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_in, n_hid, n_out = MLP
    r1, r2 = np.sqrt(6 / (n_in + n_hid)), np.sqrt(6 / (n_hid + n_out))
    return {"W1": rng.uniform(-r1, r1, (n_in, n_hid)).astype(np.float32),
            "b1": np.zeros(n_hid, np.float32),
            "W2": rng.uniform(-r2, r2, (n_hid, n_out)).astype(np.float32),
            "b2": np.zeros(n_out, np.float32),
            "x": rng.uniform(0, 1, (batch, n_in)).astype(np.float32),
            "y": rng.integers(0, n_out, batch).astype(np.int64)}


def _theanine_mlp_step(tn: Theanine, init: dict) -> Callable[[], object]:
    """One SGD step with every operand on the device. The cross-entropy is written as a
    one-hot product (elementwise and reductions) rather than categorical_crossentropy, whose
    indexing takes a host round trip on the GPU backends."""
    params = [th.shared(init[k].copy(), name=k) for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    x, y = th.shared(init["x"], name="x"), th.shared(init["y"], name="y")
    h = T.tanh(T.dot(x, W1) + b1)
    p = T.nnet.softmax(T.dot(h, W2) + b2)
    onehot = T.eq(y.dimshuffle(0, "x"), T.arange(MLP[2]).dimshuffle("x", 0))
    cost = -T.mean(T.sum(T.log(p) * onehot, axis=1))
    updates = [(w, w - np.float32(LR) * g) for w, g in zip(params, T.grad(cost, params))]
    return th.function([], [], updates=updates, backend=tn.backend)


def mlp_rows(tn: Theanine, peers: dict, batches: tuple[int, ...]) -> list[Row]:
    rows = []
    for batch in batches:
        init = _mlp_init(batch)
        row = Row(f"MLP 784-500-10 step, batch {batch}",
                  best_time(_theanine_mlp_step(tn, init), tn.sync))
        for name, (ops, sync) in peers.items():
            if "mlp" in ops:
                row.peers[name] = best_time(ops["mlp"](init), sync)
        row.metric = f"{1 / row.theanine:.0f} steps/s"
        rows.append(row)
    return rows


def _torch_mlp_step(torch, init: dict) -> Callable[[], object]:
    params = [torch.from_numpy(init[k].copy()).cuda().requires_grad_()
              for k in ("W1", "b1", "W2", "b2")]
    x, y = torch.from_numpy(init["x"]).cuda(), torch.from_numpy(init["y"]).cuda()

    def step():
        W1, b1, W2, b2 = params
        logits = torch.tanh(x @ W1 + b1) @ W2 + b2
        loss = torch.nn.functional.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for w, g in zip(params, grads):
                w -= LR * g
        return loss

    return step


def _jax_mlp_step(jax, init: dict) -> Callable[[], object]:
    jnp = jax.numpy
    x, y = jax.device_put(init["x"]), jax.device_put(init["y"].astype(np.int32))

    def loss(params):
        W1, b1, W2, b2 = params
        logits = jnp.tanh(x @ W1 + b1) @ W2 + b2
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    update = jax.jit(lambda ps: [w - LR * g for w, g in zip(ps, jax.grad(loss)(ps))],
                     donate_argnums=0)
    state = [[jax.device_put(init[k]) for k in ("W1", "b1", "W2", "b2")]]

    def step():
        state[0] = update(state[0])
        return state[0]

    return step


def print_table(rows: list[Row], tn: Theanine, peers: dict) -> None:
    names = list(peers)
    print(f"\ntheanine backend {tn.backend!r} on {tn.device}; ratio = peer time / theanine "
          "time (above 1: theanine faster)")
    head = f"{'workload':38} {'theanine':>11} {'':>15}" + "".join(
        f" {n:>10} {'ratio':>6}" for n in names)
    print(head + "  target")
    for r in rows:
        cells = "".join(f" {_ms(r.peers[n]):>10} {r.peers[n] / r.theanine:6.2f}"
                        if n in r.peers else f" {'-':>10} {'':>6}" for n in names)
        verdict = "" if r.passed is None else (" PASS" if r.passed else " MISS")
        print(f"{r.name:38} {_ms(r.theanine):>11} {r.metric:>15}{cells}  {r.target}{verdict}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}ms" if seconds >= 1e-4 else f"{seconds * 1e6:.1f}us"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="cuda", choices=("cuda", "opencl"))
    p.add_argument("--n", type=int, default=2 ** 28, help="elements for the bandwidth rows")
    p.add_argument("--size", type=int, default=4096, help="matrix edge for softmax/exp/GEMM")
    p.add_argument("--batches", type=int, nargs="+", default=[60, 4096])
    p.add_argument("--peak", type=float, default=3.35e12, help="device bandwidth, bytes/s")
    p.add_argument("--peers", nargs="*", default=list(PEER_OPS), choices=list(PEER_OPS))
    args = p.parse_args(argv)
    tn = Theanine(args.backend)
    peers = load_peers(tuple(args.peers))
    rows = bandwidth_rows(tn, peers, args.n, args.peak)
    rows += fusion_rows(tn, peers, args.size)
    rows.append(gemm_row(tn, peers, args.size))
    rows.append(latency_row(tn, peers))
    rows += mlp_rows(tn, peers, tuple(args.batches))
    rows += random_rows(tn, peers, 2 ** 24, args.size)
    print_table(rows, tn, peers)


if __name__ == "__main__":
    main()
