"""Data-parallel training of an MLP with theanine.distributed.

    mpiexec -n 2 python examples/distributed_mlp.py               # two processes, this machine
    mpiexec -f hosts -n 8 python examples/distributed_mlp.py      # a cluster (MPICH hostfile)
    mpiexec -n 4 python examples/distributed_mlp.py --device cuda # one GPU per process
    python examples/distributed_mlp.py                             # alone: a job of one

Every rank builds the same model, takes rank 0's starting parameters (broadcast_shared), and
trains on its own share of each batch; `allreduce` averages the gradients inside the compiled
step, so every rank applies the same update and the parameters stay equal everywhere. The data
is synthetic (a random teacher network labels Gaussian inputs), so the example needs no
download; rank 0 prints the job's mean loss and the held-out accuracy after each epoch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import theanine as th
import theanine.tensor as T
from theanine import distributed as dist


def teacher_data(n: int, features: int, classes: int, seed: int = 1234):
    """Inputs and the labels a fixed random two-layer network gives them (the same on every
    rank, so each rank can take its shard without any exchange)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(th.config.floatX)
    W1 = rng.normal(size=(features, 64)) / np.sqrt(features)
    W2 = rng.normal(size=(64, classes)) * 2.0
    y = np.argmax(np.tanh(X @ W1) @ W2, axis=1).astype(np.int32)
    return X, y


def build(features: int, hidden: int, classes: int, lr: float, device: str, seed: int):
    """The model's shared parameters, its data-parallel training step and a prediction function."""
    rng = np.random.default_rng(seed + dist.rank())  # each rank draws its own start ...
    floatX = th.config.floatX
    params = [
        th.shared(rng.normal(scale=np.sqrt(1 / features), size=(features, hidden)).astype(floatX),
                  name="W1"),
        th.shared(np.zeros(hidden, floatX), name="b1"),
        th.shared(rng.normal(scale=np.sqrt(1 / hidden), size=(hidden, classes)).astype(floatX),
                  name="W2"),
        th.shared(np.zeros(classes, floatX), name="b2"),
    ]
    dist.broadcast_shared(params)                    # ... and all take rank 0's

    x, y = T.matrix("x"), T.ivector("y")
    W1, b1, W2, b2 = params
    p = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    cost = T.nnet.categorical_crossentropy(p, y).mean()
    grads = dist.allreduce(T.grad(cost, params))     # the mean over ranks, in the step
    job_cost = dist.allreduce(cost)
    step = th.function([x, y], job_cost, backend=device,
                       updates=[(q, q - lr * g) for q, g in zip(params, grads)])
    predict = th.function([x], T.argmax(p, axis=1), backend=device)
    return params, step, predict


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None,
                        help="a backend or device (default: config.device); 'cuda' or 'gpu' "
                             "takes GPU number local_rank() on each machine")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="the job's batch (all ranks)")
    parser.add_argument("--examples", type=int, default=20480)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.2)
    args = parser.parse_args(argv)

    dist.init()
    device = args.device or th.config.device
    if device in ("cuda", "gpu"):
        device = f"cuda:{dist.local_rank()}"
    classes = 10
    X, y = teacher_data(args.examples + 2000, args.features, classes)
    X_train, y_train, X_test, y_test = X[:-2000], y[:-2000], X[-2000:], y[-2000:]
    _, step, predict = build(args.features, args.hidden, classes, args.lr, device, seed=0)

    if args.batch % dist.size():
        parser.error(f"--batch {args.batch} must divide among {dist.size()} ranks")
    order = np.random.default_rng(7)                  # the same shuffle on every rank
    accuracy = 0.0
    for epoch in range(args.epochs):
        start, losses = time.perf_counter(), []
        perm = order.permutation(len(X_train))
        for b in range(len(X_train) // args.batch):
            batch = perm[b * args.batch:(b + 1) * args.batch]
            xs, ys = dist.shard(X_train[batch], y_train[batch], even=True)
            losses.append(float(step(xs, ys)))
        accuracy = float(np.mean(predict(X_test) == y_test))
        if dist.rank() == 0:
            print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}, held-out accuracy "
                  f"{accuracy:.3f} ({time.perf_counter() - start:.2f} s, {dist.size()} "
                  f"rank{'s' if dist.size() > 1 else ''} on {device})", flush=True)
    return accuracy


if __name__ == "__main__":
    main()
