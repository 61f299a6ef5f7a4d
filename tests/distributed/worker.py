"""One rank of the distributed tests (tests/test_distributed.py starts it under mpiexec):
`worker.py SCENARIO BACKEND OUTDIR`; each rank writes what it saw to OUTDIR/rank<r>.*."""

import os
import signal
import sys
import time

import numpy as np
from mlp import mlp_data, sgd_params, sgd_step  # noqa: E402 (beside this script)

import theanine as th
import theanine.tensor as T
from theanine import distributed as dist

scenario, backend, outdir = sys.argv[1:4]
th.config.distributed.timeout = float(os.environ.get("WORKER_TIMEOUT", "60"))
dist.init()
r, n = dist.rank(), dist.size()
out = os.path.join(outdir, f"rank{r}")


if scenario == "sgd":
    X, Y, start = mlp_data()
    # every rank starts from its own parameters; broadcast_shared makes them rank 0's
    params = sgd_params(start, offset=r)
    dist.broadcast_shared(params)
    step = sgd_step(params, backend, reduce=True)
    for X_b, Y_b in zip(X, Y):
        xs, ys = dist.shard(X_b, Y_b, even=True)
        step(xs, ys)
    np.savez(out + ".npz", *[q.get_value() for q in params])

elif scenario == "helpers":
    gathered = dist.allgather_object({"rank": r, "text": "x" * (r * 1000)})
    dist.barrier()
    summed = dist.allreduce_arrays([np.full(3, r + 1.0), np.arange(4) * (r + 1)], "sum",
                                   ["a", "b"])
    v = T.dvector("v")
    ints = th.function([v], dist.allreduce(T.cast(v, "int64"), op="sum"), backend=backend)
    np.savez(out + ".npz", local=[dist.local_rank(), n], gathered=[len(g["text"]) for g in
                                                                    gathered],
             a=summed[0], b=summed[1], ints=ints(np.array([1.0, 2.0]) * (r + 1)),
             part=dist.shard(np.arange(11)))

elif scenario == "threads":
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    np.savez(out + ".npz", omp=int(os.environ["OMP_NUM_THREADS"]), blas=blas)

elif scenario == "nccl":
    from theanine.backends.cuda import nccl

    device = f"cuda:{dist.local_rank()}"
    x = T.fvector("x")
    summed = th.function([x], dist.allreduce([x * (r + 1), T.cast(x, "int32") * (r + 1)],
                                             op="sum"), backend=device)
    mean = th.function([x], dist.allreduce(T.dot(x, x) * x * (r + 1)), backend=device)
    xv = np.arange(1, 6, dtype=np.float32)
    f_sum, i_sum = summed(xv)
    np.savez(out + ".npz", f_sum=f_sum, i_sum=i_sum, mean=mean(xv),
             communicators=len(nccl._communicators))

elif scenario == "mismatch":
    x = T.dmatrix("x")
    W = th.shared(np.ones((3 + r, 2)), name="W")   # rank 1's layer is larger
    f = th.function([x], dist.allreduce(T.dot(x, W)), backend=backend)
    g = th.function([x], dist.allreduce(T.grad(T.sum(T.dot(x, W)), W)), backend=backend)
    try:
        g(np.ones((2, 3 + r)))
    except dist.DistributedError as e:
        with open(out + ".txt", "w") as fh:
            fh.write(str(e))
    # the ranks are still in step: the next exchange works
    np.savez(out + ".npz", y=f(np.ones((2, 3 + r))))

elif scenario in ("raise", "kill", "stuck"):
    x = T.dvector("x")
    f = th.function([x], dist.allreduce(x * 2), backend=backend)
    f(np.ones(3))
    if r == 1:
        if scenario == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if scenario == "stuck":
            time.sleep(600)
        raise RuntimeError("rank 1 ran out of data")
    f(np.ones(3))   # rank 0 waits here for a rank that is gone
    print("rank 0 finished", flush=True)
