"""Denoising autoencoders written the way the classic Theano tutorials (dA, SdA) write them,
with theanine imported as `theano`: a NumPy RandomState for the weights, a random stream seeded
from it for the corruption, `binomial(size=x.shape, n=1, p=1 - level, dtype=floatX) * x`,
T.grad, updates, `givens` of minibatch slices of shared data, and `theano.In` defaults that
calls may override by name. Each trains on small synthetic data on the numpy and c backends.
"""

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T
from theanine.tensor.shared_randomstreams import RandomStreams

N_VISIBLE, N_HIDDEN, BATCH = 24, 10, 10


@pytest.fixture(params=[("numpy", "float64"), ("c", "float64"), ("c", "float32")],
                ids=lambda p: "-".join(p))
def setup(request):
    """Run on a backend and floatX through config, as the tutorials' programs are run."""
    old = theano.config.device, theano.config.floatX
    theano.config.device, theano.config.floatX = request.param
    yield request.param
    theano.config.device, theano.config.floatX = old


def patterns(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` noisy copies of four binary prototypes (rows in [0, 1]) and their class labels."""
    rng = np.random.RandomState(seed)
    protos = (rng.rand(4, N_VISIBLE) < 0.4).astype(float)
    labels = rng.randint(0, 4, size=n)
    return np.clip(protos[labels] + 0.1 * rng.rand(n, N_VISIBLE), 0.0, 1.0), labels


def as_shared(data: np.ndarray):
    return theano.shared(np.asarray(data, dtype=theano.config.floatX), borrow=True)


class Autoencoder:
    """One denoising layer with tied weights; `W` and `bhid` may come from another layer."""

    def __init__(self, numpy_rng, theano_rng=None, input=None, n_visible=N_VISIBLE,
                 n_hidden=N_HIDDEN, W=None, bhid=None):
        if not theano_rng:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        if not W:
            bound = 4 * np.sqrt(6.0 / (n_visible + n_hidden))
            W = as_shared(numpy_rng.uniform(-bound, bound, size=(n_visible, n_hidden)))
        if not bhid:
            bhid = as_shared(np.zeros(n_hidden))
        self.W, self.bhid, self.bvis = W, bhid, as_shared(np.zeros(n_visible))
        self.rng = theano_rng
        self.x = T.matrix("x") if input is None else input
        self.params = [self.W, self.bhid, self.bvis]

    def corrupt(self, x, level):
        return self.rng.binomial(size=x.shape, n=1, p=1 - level,
                                 dtype=theano.config.floatX) * x

    def cost_updates(self, level, learning_rate):
        noisy = self.corrupt(self.x, level)
        hidden = T.nnet.sigmoid(T.dot(noisy, self.W) + self.bhid)
        z = T.nnet.sigmoid(T.dot(hidden, self.W.T) + self.bvis)
        cost = T.mean(-T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1))
        grads = T.grad(cost, self.params)
        return cost, [(p, p - learning_rate * g) for p, g in zip(self.params, grads)]


def trainer(da, data, x=None):
    """The tutorials' training step: a minibatch index, the corruption level and learning rate
    as `theano.In` inputs with defaults 0.2 and 0.1, the minibatch of shared `data` given for
    `x` (default: the layer's input)."""
    index, level, learning_rate = T.lscalar("index"), T.scalar("corruption"), T.scalar("lr")
    cost, updates = da.cost_updates(level, learning_rate)
    return theano.function(
        [index, theano.In(level, value=0.2), theano.In(learning_rate, value=0.1)], cost,
        updates=updates, givens={da.x if x is None else x: data[index * BATCH:(index + 1) * BATCH]})


def numpy_steps(x, W, learning_rate, steps):
    """The costs of `steps` uncorrupted full-batch steps of the same autoencoder, in NumPy."""
    W, bh, bv = W.copy(), np.zeros(W.shape[1]), np.zeros(W.shape[0])
    costs = []
    for _ in range(steps):
        h = 1 / (1 + np.exp(-(x @ W + bh)))
        z = 1 / (1 + np.exp(-(h @ W.T + bv)))
        costs.append(np.mean(-np.sum(x * np.log(z) + (1 - x) * np.log(1 - z), axis=1)))
        dz = (z - x) / len(x)
        dh = (dz @ W) * h * (1 - h)
        W = W - learning_rate * (x.T @ dh + dz.T @ h)
        bh, bv = bh - learning_rate * dh.sum(0), bv - learning_rate * dz.sum(0)
    return costs


def test_uncorrupted_training_matches_numpy(setup):
    x, _ = patterns(BATCH)
    rng = np.random.RandomState(123)
    da = Autoencoder(numpy_rng=rng)
    W0 = da.W.get_value().astype(float)
    train = trainer(da, as_shared(x))
    costs = [train(0, corruption=0.0, lr=0.5) for _ in range(5)]
    rtol = 1e-10 if setup[1] == "float64" else 1e-4
    np.testing.assert_allclose(costs, numpy_steps(x.astype(setup[1]).astype(float), W0, 0.5,
                                                  5), rtol=rtol)


def test_corrupted_training_cost_falls(setup):
    x, _ = patterns(60)
    da = Autoencoder(numpy_rng=np.random.RandomState(123))
    train = trainer(da, as_shared(x))
    epochs = [np.mean([train(i, lr=0.3) for i in range(len(x) // BATCH)]) for _ in range(15)]
    assert epochs[-1] < 0.6 * epochs[0], epochs


def test_corruption_zeroes_that_fraction_of_inputs(setup):
    x = np.full((50, 40), 0.5)
    da = Autoencoder(numpy_rng=np.random.RandomState(7), n_visible=40)
    level = T.scalar("corruption")
    noisy = theano.function([theano.In(level, value=0.3)], da.corrupt(da.x, level),
                            givens={da.x: as_shared(x)})
    first, second = noisy(), noisy(corruption=0.7)
    assert first.dtype == theano.config.floatX and first.shape == x.shape
    assert set(np.unique(first)) == {0.0, 0.5}
    assert abs((first == 0).mean() - 0.3) < 0.03 and abs((second == 0).mean() - 0.7) < 0.03
    assert not np.array_equal(noisy(corruption=0.3), first)  # the stream moved on


def test_in_defaults_and_arguments_by_name(setup):
    x, _ = patterns(20)
    da = Autoencoder(numpy_rng=np.random.RandomState(5))
    train = trainer(da, as_shared(x))
    shared = da.params + [s for s, _ in da.rng.state_updates]
    start = [s.get_value() for s in shared]

    def from_start(*args, **kwargs):
        for s, v in zip(shared, start):
            s.set_value(v)
        return train(*args, **kwargs), da.W.get_value()

    cost, W = from_start(1)
    for same in (from_start(1, 0.2, 0.1), from_start(index=1, corruption=0.2, lr=0.1)):
        assert same[0] == cost
        np.testing.assert_array_equal(same[1], W)
    plain = numpy_steps(x[BATCH:2 * BATCH].astype(setup[1]).astype(float),
                        start[0].astype(float), 0.1, 1)[0]
    uncorrupted = from_start(1, corruption=0.0)[0]
    assert uncorrupted == pytest.approx(plain, rel=1e-5) and uncorrupted != cost
    np.testing.assert_array_equal(from_start(1, lr=0.0)[1], start[0])
    assert not np.array_equal(W, start[0])


def test_stacked_layers_pretrain_then_fine_tune(setup):
    """SdA's shape: sigmoid layers whose W and b each denoising layer trains in place (the
    layer hands them over, so `if not W:` meets a shared variable), then a softmax on top."""
    data, labels = patterns(60)
    train_x, train_y = as_shared(data), T.cast(as_shared(labels), "int32")
    numpy_rng = np.random.RandomState(89677)
    stream = RandomStreams(numpy_rng.randint(2 ** 30))
    x, y = T.matrix("x"), T.ivector("y")
    layer_input, n_in, layers = x, N_VISIBLE, []
    for n_out in (16, 8):
        bound = 4 * np.sqrt(6.0 / (n_in + n_out))
        W = as_shared(numpy_rng.uniform(-bound, bound, size=(n_in, n_out)))
        b = as_shared(np.zeros(n_out))
        da = Autoencoder(numpy_rng, stream, layer_input, n_in, n_out, W=W, bhid=b)
        assert da.W is W and da.bhid is b
        layers.append(da)
        layer_input, n_in = T.nnet.sigmoid(T.dot(layer_input, W) + b), n_out
    for level, da in zip((0.1, 0.2), layers):
        pretrain = trainer(da, train_x, x)
        W_before = da.W.get_value()
        epochs = [np.mean([pretrain(index=i, corruption=level, lr=0.3) for i in range(6)])
                  for _ in range(10)]
        assert epochs[-1] < 0.8 * epochs[0], epochs
        assert not np.array_equal(da.W.get_value(), W_before)
    W_out, b_out = as_shared(np.zeros((n_in, 4))), as_shared(np.zeros(4))
    p_y = T.nnet.softmax(T.dot(layer_input, W_out) + b_out)
    nll = -T.mean(T.log(p_y)[T.arange(y.shape[0]), y])
    errors = T.mean(T.neq(T.argmax(p_y, axis=1), y))
    params = [da.W for da in layers] + [da.bhid for da in layers] + [W_out, b_out]
    index = T.lscalar("index")
    batch = slice(index * BATCH, (index + 1) * BATCH)
    finetune = theano.function(
        [index], nll, updates=[(p, p - 0.5 * g) for p, g in zip(params, T.grad(nll, params))],
        givens={x: train_x[batch], y: train_y[batch]})
    error_rate = theano.function([], errors, givens={x: train_x, y: train_y})
    before = error_rate()
    for _ in range(30):
        for i in range(6):
            finetune(i)
    assert error_rate() < min(0.1, before), (before, error_rate())
