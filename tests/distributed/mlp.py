"""The data-parallel test's model: an MLP trained by SGD with a compiled step, shared by the
ranks (worker.py) and the single process that checks them (tests/test_distributed.py)."""

import numpy as np

import theanine as th
import theanine.tensor as T
from theanine import distributed as dist

STEPS, BATCH = 5, 24


def mlp_data(seed: int = 0):
    """A batch of 24 examples of 6 features, 3 classes, and an MLP's starting parameters."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(STEPS, BATCH, 6))
    Y = rng.integers(0, 3, size=(STEPS, BATCH)).astype(np.int32)
    params = [rng.normal(scale=0.5, size=(6, 8)), np.zeros(8), rng.normal(scale=0.5, size=(8, 3)),
              np.zeros(3)]
    return X, Y, params


def sgd_step(params, backend: str, reduce: bool):
    """The compiled step: cross-entropy of a tanh MLP, gradients all-reduced (mean), SGD."""
    x, y = T.dmatrix("x"), T.ivector("y")
    W1, b1, W2, b2 = params
    p = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    cost = T.nnet.categorical_crossentropy(p, y).mean()
    grads = T.grad(cost, params)
    if reduce:
        grads = dist.allreduce(grads)
    return th.function([x, y], cost, updates=[(q, q - 0.5 * g) for q, g in zip(params, grads)],
                       backend=backend)


def sgd_params(start, offset: float = 0.0):
    """Shared variables W1, b1, W2, b2 from `start` (+ offset)."""
    return [th.shared(v + offset, name=nm) for v, nm in zip(start, ["W1", "b1", "W2", "b2"])]
