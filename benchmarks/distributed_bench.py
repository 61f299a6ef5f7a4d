"""Data-parallel training with theanine.distributed on this machine's cores.

    python benchmarks/distributed_bench.py [--batch 256] [--steps 20] [--repeats 5]

The model is the deep-learning tutorial's MLP, 784-500-10 tanh/softmax in float32: 397,510
parameters, so each step all-reduces about 400k floats (1.6 MB). Each configuration runs as
its own job (alone, or under `mpiexec -n 2`) with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set:
1 process x 1 thread, 1 process x 2 threads and 2 processes x 1 thread, always on the same job
batch. Each job times, best of the repeats and slowest rank:
- theanine-c's training step with `allreduce` of the gradients, and the same step without it;
- the all-reduce alone on the four gradients (`allreduce_arrays`), and its 16-byte agreement
  check alone;
- the peer: the same step written by hand in NumPy with mpi4py's Allreduce on one packed buffer
  (what a user without a framework writes), checked to give theanine's loss.
Then MPI's all-reduce time against message size here, and a model (labelled as such) of the
step on 8 GPUs with NCCL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

SIZES = (784, 500, 10)
MARK = "RESULT "


# -- one rank of a job -----------------------------------------------------------------------
def _data(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_in, n_hid, n_out = SIZES
    r1, r2 = np.sqrt(6 / (n_in + n_hid)), np.sqrt(6 / (n_hid + n_out))
    params = [rng.uniform(-r1, r1, (n_in, n_hid)), np.zeros(n_hid),
              rng.uniform(-r2, r2, (n_hid, n_out)), np.zeros(n_out)]
    x = rng.uniform(0, 1, (batch, n_in))
    y = rng.integers(0, n_out, batch).astype(np.int32)
    return [p.astype(np.float32) for p in params], x.astype(np.float32), y


def _theanine_step(start, reduce: bool, lr: float = 0.01):
    import theanine as th
    import theanine.tensor as T
    from theanine import distributed as dist

    params = [th.shared(v.copy(), name=n) for v, n in zip(start, ("W1", "b1", "W2", "b2"))]
    x, y = T.fmatrix("x"), T.ivector("y")
    W1, b1, W2, b2 = params
    p = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    cost = T.nnet.categorical_crossentropy(p, y).mean()
    grads = T.grad(cost, params)
    if reduce:
        grads = dist.allreduce(grads)
    return th.function([x, y], cost, backend="c",
                       updates=[(q, q - np.float32(lr) * g) for q, g in zip(params, grads)])


def _numpy_step(start, comm, lr: float = 0.01):
    """The hand-written peer: forward, backward, one packed Allreduce, SGD, in NumPy."""
    W1, b1, W2, b2 = (v.copy() for v in start)
    sizes = [W1.size, b1.size, W2.size, b2.size]
    packed = np.empty(sum(sizes), np.float32)
    views = np.split(packed, np.cumsum(sizes)[:-1])
    size = 1 if comm is None else comm.Get_size()

    def step(x, y):
        h = np.tanh(x @ W1 + b1)
        z = h @ W2 + b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        cost = -np.log(p[rows, y]).mean()
        p[rows, y] -= 1
        dz = p / len(y)
        dh = (dz @ W2.T) * (1 - h * h)
        np.matmul(x.T, dh, out=views[0].reshape(W1.shape))
        np.sum(dh, axis=0, out=views[1])
        np.matmul(h.T, dz, out=views[2].reshape(W2.shape))
        np.sum(dz, axis=0, out=views[3])
        if comm is not None:
            from mpi4py import MPI

            comm.Allreduce(MPI.IN_PLACE, packed, op=MPI.SUM)
            packed[:] /= size
        for w, g in zip((W1, b1, W2, b2), views):
            w -= np.float32(lr) * g.reshape(w.shape)
        return cost

    return step


def _best(call, steps: int, repeats: int, barrier) -> float:
    """Best mean seconds per call over `repeats` runs of `steps` calls, started together."""
    call()
    best = float("inf")
    for _ in range(repeats):
        barrier()
        tic = time.perf_counter()
        for _ in range(steps):
            call()
        best = min(best, (time.perf_counter() - tic) / steps)
    return best


def worker(batch: int, steps: int, repeats: int) -> None:
    """Time everything on this rank; rank 0 prints the job's figures (slowest rank) as JSON."""
    from theanine import distributed as dist
    from theanine.distributed.buckets import check_agreement

    w = dist.init()
    start, X, Y = _data(batch)
    xs, ys = dist.shard(X, Y, even=True)
    grads = [np.ones_like(p) for p in start]
    names = ["W1", "b1", "W2", "b2"]
    with_ar, without = _theanine_step(start, True), _theanine_step(start, False)
    peer = _numpy_step(start, w.comm)
    # the same first step gives the same loss in theanine and the hand-written peer
    got = float(with_ar(xs, ys))
    want = float(peer(xs, ys))
    assert abs(got - want) < 1e-4 * abs(want), (got, want)
    timed = {
        "step": lambda: with_ar(xs, ys),
        "step, no allreduce": lambda: without(xs, ys),
        "allreduce alone": lambda: dist.allreduce_arrays(grads, "mean", names),
        "agreement check": (lambda: check_agreement(w, "mean", grads, names, "bench"))
        if w.size > 1 else None,
        "numpy+mpi4py step": lambda: peer(xs, ys),
    }
    mine = {k: _best(f, steps, repeats, dist.barrier) for k, f in timed.items() if f is not None}
    every = dist.allgather_object(mine)
    sizes = _mpi_sizes(w, repeats) if w.size > 1 else None
    if w.rank == 0:
        job = {k: max(r[k] for r in every) for k in mine}
        if sizes:
            job["mpi sizes"] = sizes
        print(MARK + json.dumps(job), flush=True)


def _mpi_sizes(w, repeats: int) -> dict[str, float]:
    """MPI's SUM all-reduce of float32 buffers of growing size: best seconds per call."""
    out = {}
    for n in (1, 1024, 16384, 131072, 397510, 2 ** 21, 2 ** 23):
        buf = np.ones(n, np.float32)
        calls = max(3, min(200, 2 ** 22 // n))
        out[str(n)] = _best(lambda b=buf: w.wait([w.comm.Iallreduce(w.MPI.IN_PLACE, b,
                                                                     op=w.MPI.SUM)], "bench"),
                            calls, repeats, lambda: w.wait([w.comm.Ibarrier()], "bench"))
    return out


# -- the driver ------------------------------------------------------------------------------
CONFIGS = [(1, 1), (1, 2), (2, 1)]  # (processes, threads per process)


def run_job(procs: int, threads: int, args) -> dict:
    """One configuration as its own job; its figures from rank 0."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    me = [sys.executable, os.path.abspath(__file__), "--worker", "--batch", str(args.batch),
          "--steps", str(args.steps), "--repeats", str(args.repeats)]
    if procs > 1:
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
        me = [mpiexec, "-n", str(procs), *me]
    run = subprocess.run(me, capture_output=True, text=True, env=env, timeout=1800)
    if run.returncode:
        raise SystemExit(f"{procs} x {threads} failed:\n{run.stderr[-3000:]}")
    line = next(s for s in run.stdout.splitlines() if s.startswith(MARK))
    return json.loads(line[len(MARK):])


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f} ms"


def nccl_model(params: int, gpu_step: float, bus_bw: float, hop_latency: float,
               gpus: int = 8) -> tuple[float, float]:
    """A ring all-reduce's time (2(p-1) latency-bound hops plus 2(p-1)/p of the buffer over the
    bus bandwidth) and the weak-scaling efficiency of a step that waits for it (theanine's
    all-reduce runs after the whole backward pass: no overlap)."""
    t = 2 * (gpus - 1) * hop_latency + 2 * (gpus - 1) / gpus * params * 4 / bus_bw
    return t, gpu_step / (gpu_step + t)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="the job's batch (all ranks)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    # the 8-GPU model's inputs, none measured here (no GPU; pass measured ones to recompute):
    # nccl-tests' all_reduce bus bandwidth at large sizes on 8 H100 SXM over NVLink 4 (460-480
    # GB/s reported; the H200 has the same NVLink), a ring hop's latency, and one GPU's step:
    # about 20 launches (kernels, gemms, the bucket copies) at the ~13 us per pycuda launch
    # measured on an H100 (../shared/GPU.md), the MLP's arithmetic being microseconds
    parser.add_argument("--nccl-busbw", type=float, default=460.0, help="GB/s, large messages")
    parser.add_argument("--nccl-hop-us", type=float, default=2.0, help="per ring hop, us")
    parser.add_argument("--gpu-step-ms", type=float, default=0.25,
                        help="the MLP step on one GPU, ms")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.batch, args.steps, args.repeats)
        return

    print(f"# distributed_bench: MLP 784-500-10 float32 (397,510 parameters), job batch "
          f"{args.batch}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    results = {(p, t): run_job(p, t, args) for p, t in CONFIGS}
    base = results[(1, 2)]["step"]
    print("\n| processes x threads | theanine-c step | examples/s | vs 1x2 | numpy+mpi4py step "
          "| numpy / theanine |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (p, t), r in results.items():
        print(f"| {p} x {t} | {ms(r['step'])} | {args.batch / r['step']:9.0f} | "
              f"{base / r['step']:5.2f}x | {ms(r['numpy+mpi4py step'])} | "
              f"{r['numpy+mpi4py step'] / r['step']:5.2f}x |")
    two = results[(2, 1)]
    share = two["allreduce alone"] / two["step"]
    print(f"\n2 processes: step {ms(two['step'])}, without allreduce "
          f"{ms(two['step, no allreduce'])}; allreduce alone {ms(two['allreduce alone'])} "
          f"= {share:.1%} of the step; its agreement check "
          f"{two['agreement check'] * 1e6:.1f} us")
    print("\nMPI (MPICH, shared memory) all-reduce of float32, 2 processes:")
    for n, t in two["mpi sizes"].items():
        print(f"  {int(n):>9} floats: {t * 1e6:9.1f} us  ({int(n) * 4 / t / 1e9:6.2f} GB/s)")
    t, eff = nccl_model(397510, args.gpu_step_ms * 1e-3, args.nccl_busbw * 1e9,
                        args.nccl_hop_us * 1e-6)
    print(f"\nMODEL, not a measurement: 8 GPUs, NCCL ring at {args.nccl_busbw:g} GB/s bus "
          f"bandwidth and {args.nccl_hop_us:g} us per hop; one GPU's step {args.gpu_step_ms:g} "
          f"ms at a fixed per-GPU batch: all-reduce {t * 1e6:.0f} us, efficiency {eff:.0%}, "
          f"{8 * eff:.1f}x one GPU's throughput")
    for params in (25_000_000, 100_000_000):
        t, _ = nccl_model(params, 1.0, args.nccl_busbw * 1e9, args.nccl_hop_us * 1e-6)
        print(f"  {params / 1e6:g}M float32 gradients: all-reduce {t * 1e3:.2f} ms; 90% "
              f"efficiency needs a step of at least {9 * t * 1e3:.1f} ms on one GPU")


if __name__ == "__main__":
    main()
