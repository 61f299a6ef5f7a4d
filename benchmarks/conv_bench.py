"""Convolutional nets: (1) the two conv-pool layers of the DeepLearningTutorials' LeNet
(convolutional_mlp.py) at the tutorial's shapes, batch 500, float32: 20 filters 5x5 on 1x28x28
and 50 filters 5x5 on 20x12x12, each followed by 2x2 max pooling, a bias and tanh; forward
alone and forward plus gradients. (2) One training epoch of the whole network (conv-pool,
conv-pool, a 500-unit tanh layer, softmax; SGD with learning rate 0.1, batch 500) over 10000
synthetic images, the minibatches sliced from shared data by `givens` as the tutorial does.

    python benchmarks/conv_bench.py [--quick] [--threads N]

Columns: theanine on C (theanine-c), theanine's NumPy reference backend (reference, layers
only), JAX (jax: lax.conv_general_dilated and reduce_window, jitted, value_and_grad; the
epoch a Python loop over a jitted SGD step) and, for the layers, a hand-written NumPy
baseline (numpy: im2col by sliding_window_view and tensordot, max-pool masks). Every result is
checked before timing: each layer workload against the reference backend, the epoch's first
step (its cost and all eight new parameters) of theanine-c against JAX's. Ratios are peer time
over theanine-c time, measured in the same run in interleaved rounds (best of each).
"""

from __future__ import annotations

import threads  # isort: skip (sets OpenMP's threads before anything loads it)
import argparse
import os
import time

import numpy as np
import rivals
from harness import THEANINE, Row, Settings, best_times, check, print_table
from numpy.lib.stride_tricks import sliding_window_view

import theanine
import theanine.tensor as T
from theanine.tensor.nnet import conv2d
from theanine.tensor.signal import pool

LR = 0.1
RTOL = 2e-3  # float32 sums over up to 500 images: reassociation moves the last digits
LAYER_GROUP = "(1) LeNet conv-pool layers, batch {b}, float32"
EPOCH_GROUP = "(2) LeNet training epoch: {n} images, batch {b}, SGD, float32"


def lenet_init(batch: int, n_images: int, seed: int = 0) -> dict[str, np.ndarray]:
    """convolutional_mlp.py's initial parameters (uniform conv and hidden weights scaled by
    fan-in and fan-out, zero biases, zero softmax weights) and random images and labels."""
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in, fan_out):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape).astype("float32")

    return {"W0": uniform((20, 1, 5, 5), 25, 20 * 25 / 4), "b0": np.zeros(20, "float32"),
            "W1": uniform((50, 20, 5, 5), 500, 50 * 25 / 4), "b1": np.zeros(50, "float32"),
            "W2": uniform((800, 500), 800, 500), "b2": np.zeros(500, "float32"),
            "W3": np.zeros((500, 10), "float32"), "b3": np.zeros(10, "float32"),
            "x": rng.random((n_images, 784), dtype="float32"),
            "y": rng.integers(0, 10, n_images).astype("int32"),
            "h": np.tanh(rng.standard_normal((batch, 20, 12, 12))).astype("float32")}


# -- theanine --------------------------------------------------------------------------------------
def theanine_layer(x, W, b, image_shape, filter_shape):
    """LeNetConvPoolLayer's output: tanh(max_pool_2x2(conv2d(x, W)) + b)."""
    conv = conv2d(input=x, filters=W, filter_shape=filter_shape, input_shape=image_shape)
    pooled = pool.pool_2d(input=conv, ws=(2, 2), ignore_border=True)
    return T.tanh(pooled + b.dimshuffle("x", 0, "x", "x"))


def theanine_layers(batch: int, backend: str) -> dict[str, object]:
    """The four layer workloads compiled on `backend`: {name: function of (x, h, W0, b0, W1,
    b1) returning a list of arrays}."""
    x, h = T.tensor4("x", dtype="float32"), T.tensor4("h", dtype="float32")
    W0, W1 = T.tensor4("W0", dtype="float32"), T.tensor4("W1", dtype="float32")
    b0, b1 = T.vector("b0", dtype="float32"), T.vector("b1", dtype="float32")
    shape0, shape1 = (batch, 1, 28, 28), (batch, 20, 12, 12)
    out0 = theanine_layer(x, W0, b0, shape0, (20, 1, 5, 5))
    out1 = theanine_layer(h, W1, b1, shape1, (50, 20, 5, 5))
    both = T.sum(theanine_layer(out0, W1, b1, shape1, (50, 20, 5, 5)))
    cost1 = T.sum(out1)
    graphs = {"layer 0 forward": ([x, W0, b0], [out0]),
              "layer 1 forward": ([h, W1, b1], [out1]),
              "layer 1 fwd + grads (input, W, b)": ([h, W1, b1],
                                                    [cost1, *T.grad(cost1, [h, W1, b1])]),
              "layers 0+1 fwd + grads (W0 b0 W1 b1)": ([x, W0, b0, W1, b1],
                                                       [both, *T.grad(both, [W0, b0, W1, b1])])}
    out = {}
    for name, (inputs, outputs) in graphs.items():
        f = theanine.function(inputs, outputs, backend=backend, trust_input=True)
        out[name] = (f, [v.name for v in inputs])
    return out


def theanine_epoch(init: dict, batch: int):
    """The tutorial's network and train_model on C: (run one epoch, run one step, params)."""
    params = {k: theanine.shared(init[k].copy(), name=k)
              for k in ("W0", "b0", "W1", "b1", "W2", "b2", "W3", "b3")}
    data_x, data_y = theanine.shared(init["x"]), theanine.shared(init["y"])
    index, x, y = T.lscalar(), T.matrix("x", dtype="float32"), T.ivector("y")
    layer0 = theanine_layer(x.reshape((batch, 1, 28, 28)), params["W0"], params["b0"],
                            (batch, 1, 28, 28), (20, 1, 5, 5))
    layer1 = theanine_layer(layer0, params["W1"], params["b1"], (batch, 20, 12, 12),
                            (50, 20, 5, 5))
    hidden = T.tanh(T.dot(layer1.flatten(2), params["W2"]) + params["b2"])
    p_y = T.nnet.softmax(T.dot(hidden, params["W3"]) + params["b3"])
    cost = -T.mean(T.log(p_y)[T.arange(y.shape[0]), y])
    grads = T.grad(cost, list(params.values()))
    train = theanine.function(
        [index], cost, updates=[(p, p - np.float32(LR) * g) for p, g in zip(params.values(),
                                                                              grads)],
        givens={x: data_x[index * batch:(index + 1) * batch],
                y: data_y[index * batch:(index + 1) * batch]}, backend="c")
    n_batches = len(init["x"]) // batch

    def epoch():
        return [train(i) for i in range(n_batches)][-1]

    return epoch, lambda: train(0), lambda: [p.get_value() for p in params.values()]


# -- JAX -------------------------------------------------------------------------------------------
def jax_layer(jax, x, W, b):
    """The layer in JAX: conv2d flips its filters (a true convolution), lax's does not."""
    conv = jax.lax.conv_general_dilated(x, W[:, :, ::-1, ::-1], (1, 1), "VALID",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))
    pooled = jax.lax.reduce_window(conv, -np.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2),
                                   "VALID")
    return jax.numpy.tanh(pooled + b[None, :, None, None])


def jax_layers(jax) -> dict[str, object]:
    """The four layer workloads jitted: {name: function of the same arrays theanine takes}."""
    jnp = jax.numpy

    def both(x, W0, b0, W1, b1):
        return jnp.sum(jax_layer(jax, jax_layer(jax, x, W0, b0), W1, b1))

    def cost1(h, W1, b1):
        return jnp.sum(jax_layer(jax, h, W1, b1))

    grads1 = jax.jit(jax.value_and_grad(cost1, argnums=(0, 1, 2)))
    grads01 = jax.jit(jax.value_and_grad(both, argnums=(1, 2, 3, 4)))
    fns = {"layer 0 forward": jax.jit(lambda x, W, b: [jax_layer(jax, x, W, b)]),
           "layer 1 forward": jax.jit(lambda h, W, b: [jax_layer(jax, h, W, b)]),
           "layer 1 fwd + grads (input, W, b)": lambda *a: flat_pair(grads1(*a)),
           "layers 0+1 fwd + grads (W0 b0 W1 b1)": lambda *a: flat_pair(grads01(*a))}
    return {name: (lambda *a, f=f: jax.block_until_ready(f(*a))) for name, f in fns.items()}


def flat_pair(value_and_grads) -> list:
    """(value, (g1, g2, ...)) as [value, g1, g2, ...], the order theanine's outputs have."""
    value, grads = value_and_grads
    return [value, *grads]


def jax_epoch(jax, init: dict, batch: int):
    """The same network and SGD in JAX: one jitted step slicing minibatch `i` from the data on
    the device; (run one epoch, run one step, params)."""
    jnp = jax.numpy
    keys = ("W0", "b0", "W1", "b1", "W2", "b2", "W3", "b3")

    def loss(params, x, y):
        W0, b0, W1, b1, W2, b2, W3, b3 = params
        h = jax_layer(jax, jax_layer(jax, x.reshape(batch, 1, 28, 28), W0, b0), W1, b1)
        hidden = jnp.tanh(h.reshape(batch, -1) @ W2 + b2)
        logp = jax.nn.log_softmax(hidden @ W3 + b3)
        return -jnp.mean(logp[jnp.arange(batch), y])

    @jax.jit
    def step(params, data_x, data_y, i):
        x = jax.lax.dynamic_slice_in_dim(data_x, i * batch, batch)
        y = jax.lax.dynamic_slice_in_dim(data_y, i * batch, batch)
        cost, grads = jax.value_and_grad(loss)(params, x, y)
        return cost, [p - LR * g for p, g in zip(params, grads)]

    state = {"params": [jnp.asarray(init[k]) for k in keys]}
    data_x, data_y = jnp.asarray(init["x"]), jnp.asarray(init["y"])
    n_batches = len(init["x"]) // batch

    def run(batches):
        for i in batches:
            cost, state["params"] = step(state["params"], data_x, data_y, i)
        return cost.block_until_ready()

    return (lambda: run(range(n_batches)), lambda: run([0]),
            lambda: [np.asarray(p) for p in state["params"]])


# -- NumPy by hand ---------------------------------------------------------------------------------
def numpy_layer(x, W, b):
    """The layer's output and what its backward pass needs: im2col by sliding windows, one
    tensordot (a BLAS gemm) against the flipped filters, then 2x2 max pooling."""
    k = W.shape[2]
    patches = sliding_window_view(x, (k, k), axis=(2, 3))  # n, c, h, w, i, j
    conv = np.tensordot(patches, W[:, :, ::-1, ::-1], axes=([1, 4, 5], [1, 2, 3]))
    conv = conv.transpose(0, 3, 1, 2)
    n, f, hh, ww = conv.shape
    pooled = conv.reshape(n, f, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    out = np.tanh(pooled + b[None, :, None, None])
    return out, (patches, conv, pooled, out, W)


def numpy_layer_grads(d_out, cache):
    """Gradients of the layer's inputs (x, W, b) from its output's gradient: every element
    equal to its window's maximum gets the window's gradient, as Theano's max pool does."""
    patches, conv, pooled, out, W = cache
    d_pre = d_out * (1 - out * out)
    up = np.repeat(np.repeat(pooled, 2, axis=2), 2, axis=3)
    d_conv = (conv == up) * np.repeat(np.repeat(d_pre, 2, axis=2), 2, axis=3)
    d_W = np.tensordot(d_conv, patches, axes=([0, 2, 3], [0, 2, 3]))[:, :, ::-1, ::-1]
    k = W.shape[2]
    padded = np.pad(d_conv, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
    d_x = np.tensordot(sliding_window_view(padded, (k, k), axis=(2, 3)), W,
                       axes=([1, 4, 5], [0, 2, 3])).transpose(0, 3, 1, 2)
    return d_x, d_W, d_pre.sum(axis=(0, 2, 3))


def numpy_layers() -> dict[str, object]:
    """The four layer workloads by hand, each returning what theanine's function returns."""
    def grads1(h, W1, b1):
        out, cache = numpy_layer(h, W1, b1)
        return [out.sum(dtype=np.float32), *numpy_layer_grads(np.ones_like(out), cache)]

    def grads01(x, W0, b0, W1, b1):
        out0, cache0 = numpy_layer(x, W0, b0)
        out1, cache1 = numpy_layer(out0, W1, b1)
        d_out0, d_W1, d_b1 = numpy_layer_grads(np.ones_like(out1), cache1)
        _, d_W0, d_b0 = numpy_layer_grads(d_out0, cache0)
        return [out1.sum(dtype=np.float32), d_W0, d_b0, d_W1, d_b1]

    return {"layer 0 forward": lambda x, W, b: [numpy_layer(x, W, b)[0]],
            "layer 1 forward": lambda h, W, b: [numpy_layer(h, W, b)[0]],
            "layer 1 fwd + grads (input, W, b)": grads1,
            "layers 0+1 fwd + grads (W0 b0 W1 b1)": grads01}


# -- the two workloads -----------------------------------------------------------------------------
def close(name: str, got: list, want: list) -> None:
    """Each output within RTOL of the reference, relative to that output's largest value."""
    assert len(got) == len(want), f"{name}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        w = np.asarray(w)
        check(f"{name} output {i}", g, w, RTOL, atol=RTOL * float(np.abs(w).max()))


def layer_rows(batch: int, settings: Settings) -> list[Row]:
    """Check every implementation of each layer workload against the reference backend, then
    time them in interleaved rounds."""
    init = lenet_init(batch, batch)
    init["x"] = init["x"][:batch].reshape(batch, 1, 28, 28)
    ours = {THEANINE: theanine_layers(batch, "c"), "reference": theanine_layers(batch, "numpy")}
    peers = {"numpy": numpy_layers()}
    jax = rivals.jax_module()
    if jax is not None:
        peers["jax"] = jax_layers(jax)
    rows = []
    for name, (_, arg_names) in ours[THEANINE].items():
        args = [init[a] for a in arg_names]
        calls = {col: (lambda f=fns[name][0], a=args: f(*a)) for col, fns in ours.items()}
        calls.update({col: (lambda f=fns[name], a=args: f(*a)) for col, fns in peers.items()})
        want = calls["reference"]()
        for col, fn in calls.items():
            if col != "reference":
                close(f"{name} [{col}]", fn(), want)
        times = best_times(calls, settings)
        rows.append(Row(LAYER_GROUP.format(b=batch), name, times.pop(THEANINE), times))
    return rows


def epoch_row(batch: int, n_images: int, settings: Settings) -> Row:
    """Check the first SGD step of theanine-c against JAX's (cost, eight new parameters),
    then time whole epochs; without JAX, theanine-c alone."""
    init = lenet_init(batch, n_images)
    runs = {THEANINE: theanine_epoch(init, batch)}
    jax = rivals.jax_module()
    if jax is not None:
        runs["jax"] = jax_epoch(jax, init, batch)
        want_cost, want_params = runs["jax"][1](), runs["jax"][2]()
        close("epoch: first step's cost [theanine-c]", [runs[THEANINE][1]()], [want_cost])
        close("epoch: first step's new parameters [theanine-c]", runs[THEANINE][2](),
              want_params)
    times = best_times({col: run[0] for col, run in runs.items()}, settings)
    return Row(EPOCH_GROUP.format(n=n_images, b=batch), "training epoch", times.pop(THEANINE),
               times)


def epilogue_row(batch: int, settings: Settings) -> Row:
    """relu(conv2d(x, W, 'half') + b), 3x3 filters 32 -> 64 channels on 32x32 images: the C
    backend's fused epilogue (bias and relu applied to each image's block after its gemm)
    against the same graph with the conv_epilogue rewrite excluded, and JAX; each checked
    against the reference backend first."""
    from theanine.compile.mode import get_mode
    from theanine.tensor.nnet import relu

    rng = np.random.default_rng(0)
    x, W, b = T.ftensor4("x"), T.ftensor4("W"), T.fvector("b")
    out = relu(conv2d(x, W, border_mode="half") + b.dimshuffle("x", 0, "x", "x"))
    args = [rng.standard_normal((batch, 32, 32, 32)).astype("float32"),
            (rng.standard_normal((64, 32, 3, 3)) * 0.1).astype("float32"),
            rng.standard_normal(64).astype("float32")]
    unfused = get_mode("FAST_RUN").excluding("conv_epilogue")
    fns = {THEANINE: theanine.function([x, W, b], out, backend="c"),
           "c-unfused": theanine.function([x, W, b], out, backend="c", mode=unfused),
           "reference": theanine.function([x, W, b], out, backend="numpy")}
    calls = {col: (lambda f=f: [f(*args)]) for col, f in fns.items()}
    jax = rivals.jax_module()
    if jax is not None:
        def conv_relu(x, W, b):
            y = jax.lax.conv_general_dilated(x, W[:, :, ::-1, ::-1], (1, 1), "SAME",
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return jax.nn.relu(y + b[None, :, None, None])

        jitted = jax.jit(conv_relu)
        calls["jax"] = lambda: [jitted(*args).block_until_ready()]
    want = calls["reference"]()
    for col, fn in calls.items():
        if col != "reference":
            close(f"conv + bias + relu [{col}]", fn(), want)
    del calls["reference"]
    times = best_times(calls, settings)
    return Row(f"conv + bias + relu, {batch}x32x32x32 -> 64 channels, 3x3, float32",
               "fused epilogue", times.pop(THEANINE), times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 50, 1000 images, short timings")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS and BLAS threads (default: unset, all cores)")
    args = parser.parse_args(argv)
    threads.pin(args.threads, __file__, argv)
    batch, n_images = (50, 1000) if args.quick else (500, 10000)
    layer_settings = Settings(budget=0.2, min_rounds=3) if args.quick else Settings(budget=3.0)
    epoch_settings = (Settings(budget=0.5, min_rounds=2) if args.quick
                      else Settings(budget=10.0, min_rounds=3))
    started = time.perf_counter()
    print(f"theanine {theanine.__version__} | numpy {np.__version__} | {os.cpu_count()} cores"
          f" | {threads.describe(args.threads)}"
          + (" | QUICK: small sizes" if args.quick else ""))
    rivals.NOTES.append("c-unfused = theanine-c with the conv_epilogue rewrite excluded (bias "
                        "and relu as a separate elementwise kernel)")
    rivals.NOTES.append("numpy = the layers by hand: im2col (sliding_window_view) and "
                        "tensordot, max pooling and its masks by reshapes")
    if args.threads is not None:
        rivals.NOTES.append("--threads sets OpenMP's and OpenBLAS's threads; JAX's XLA thread "
                            "pool keeps every core")
    rows = layer_rows(batch, layer_settings)
    rows.append(epilogue_row(batch // 4 if args.quick else 128, layer_settings))
    rows.append(epoch_row(batch, n_images, epoch_settings))
    print_table(rows)
    rivals.print_notes(started)


if __name__ == "__main__":
    main()
