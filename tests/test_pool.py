"""pool_2d in every mode against a loop over Theano's window regions, max pooling's gradient with
ties, gradients against finite differences, batch normalization against its formulas, and
the errors for bad arguments."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine import config
from theanine.compile.function import function
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError
from theanine.tensor.nnet import bn
from theanine.tensor.signal import pool

BACKENDS = ["numpy", "c"]


def loop_pool(x, ws, ignore_border, stride, pad, mode):
    """Theano 1.0's Pool.perform: each window's region of the padded image (clipped to it,
    and for all modes but average_inc_pad to the unpadded part), reduced one at a time."""
    h, w = x.shape[-2] + 2 * pad[0], x.shape[-1] + 2 * pad[1]

    def out_len(v, k, s):
        if ignore_border:
            return max((v - k) // s + 1, 0)
        return (v - 1) // s + 1 if s >= k else max(0, (v - 1 - k + s) // s) + 1

    oh, ow = out_len(h, ws[0], stride[0]), out_len(w, ws[1], stride[1])
    y = np.zeros(x.shape[:-2] + (h, w))
    y[..., pad[0]:pad[0] + x.shape[-2], pad[1]:pad[1] + x.shape[-1]] = x
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for idx in np.ndindex(*x.shape[:-2]):
        for r in range(oh):
            for c in range(ow):
                r0, c0 = r * stride[0], c * stride[1]
                r1, c1 = min(r0 + ws[0], h), min(c0 + ws[1], w)
                if mode != "average_inc_pad":
                    r0, c0 = max(r0, pad[0]), max(c0, pad[1])
                    r1, c1 = min(r1, h - pad[0]), min(c1, w - pad[1])
                region = y[idx][r0:r1, c0:c1]
                out[idx + (r, c)] = {"max": np.max, "sum": np.sum}.get(mode, np.mean)(region)
    return out


VARIANTS = [
    dict(ws=(2, 2), ignore_border=True, mode="max"),
    dict(ws=(3, 2), ignore_border=False, stride=(2, 1), mode="max"),
    dict(ws=(3, 3), ignore_border=True, stride=(1, 2), pad=(1, 2), mode="max"),
    dict(ws=(2, 3), ignore_border=False, mode="sum"),
    dict(ws=(3, 2), ignore_border=True, pad=(2, 1), mode="average_inc_pad"),
    dict(ws=(3, 2), ignore_border=True, pad=(2, 1), mode="average_exc_pad"),
    dict(ws=(3, 3), ignore_border=False, stride=(2, 2), mode="average_exc_pad"),
    dict(ws=(3, 3), ignore_border=False, stride=(2, 2), mode="average_inc_pad"),
]


@pytest.fixture
def device():
    """Set config.device (the backend verify_grad's functions compile for) for one test."""
    old = config.device
    yield lambda name: setattr(config, "device", name)
    config.device = old


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", VARIANTS)
def test_pool_2d_matches_theanos_regions(backend, kw, rng):
    xv = rng.normal(size=(2, 3, 7, 8))
    x = T.dtensor4("x")
    f = function([x], pool.pool_2d(x, **kw), backend=backend)
    expected = loop_pool(xv, kw["ws"], kw["ignore_border"], kw.get("stride", kw["ws"]),
                         kw.get("pad", (0, 0)), kw["mode"])
    got = f(xv[..., ::-1].copy()[..., ::-1])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_of_a_5d_and_a_2d_input(backend, rng):
    x5, x2 = T.dtensor5("x"), T.dmatrix("m")
    f = function([x5, x2], [pool.pool_2d(x5, (2, 2), True), pool.pool_2d(x2, (2, 2), True)],
                 backend=backend)
    v5, v2 = rng.normal(size=(2, 1, 3, 4, 5)), rng.normal(size=(5, 4))
    a, b = f(v5, v2)
    np.testing.assert_array_equal(a, loop_pool(v5, (2, 2), True, (2, 2), (0, 0), "max"))
    np.testing.assert_array_equal(b, loop_pool(v2, (2, 2), True, (2, 2), (0, 0), "max"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_gradient_goes_to_every_tied_maximum(backend):
    x = T.dmatrix("x")
    g = T.grad(T.sum(pool.pool_2d(x, (2, 2), ignore_border=True) * [[1.0, 10.0]]), x)
    f = function([x], g, backend=backend)
    xv = np.array([[1.0, 1.0, 0.0, 5.0], [0.0, 1.0, 5.0, 5.0]])
    np.testing.assert_array_equal(f(xv), [[1, 1, 0, 10], [0, 1, 10, 10]])
    # overlapping windows: an element that is the maximum of two windows gets both gradients
    g2 = T.grad(T.sum(pool.pool_2d(x, (2, 2), ignore_border=True, stride=(1, 1))), x)
    f2 = function([x], g2, backend=backend)
    np.testing.assert_array_equal(f2(np.array([[0.0, 9.0, 0.0], [0.0, 0.0, 0.0]])),
                                  [[0, 2, 0], [0, 0, 0]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", VARIANTS[1:])
def test_pool_gradients_match_finite_differences(backend, kw, rng, device):
    device(backend)
    # distinct values: finite differences do not cross a tie in max pooling
    pt = [rng.permutation(2 * 9 * 7).reshape(2, 9, 7) / 10.0]
    verify_grad(lambda a: pool.pool_2d(a, **kw), pt, rng=rng)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pooling_second_derivative(backend, rng, device):
    """The gradient of max pooling's gradient (with respect to the pooled gradient)."""
    device(backend)
    xv = rng.permutation(2 * 5 * 6).reshape(2, 5, 6) / 10.0
    x = T.constant(xv)

    def fun(gz):
        z = pool.pool_2d(x, (2, 3), ignore_border=False, stride=(1, 2))
        return T.grad(T.sum(z * gz), x)

    verify_grad(fun, [rng.normal(size=(2, 4, 3))], rng=rng)


def test_max_pool_2d_same_size():
    x = T.dmatrix("x")
    f = function([x], pool.max_pool_2d_same_size(x, (2, 2)))
    xv = np.array([[1.0, 3.0, 2.0], [2.0, 0.0, 7.0], [5.0, 6.0, 4.0]])
    np.testing.assert_array_equal(f(xv), [[0, 3, 0], [0, 0, 0], [0, 0, 0]])


def _raises_here(match: str):
    return pytest.raises(GraphError, match=f"(?s){match}.*test_pool.py")


def test_pool_errors_name_the_argument_and_the_users_line():
    x = T.dtensor4("x")
    with _raises_here("mode must be one of .*'median'"):
        pool.pool_2d(x, (2, 2), True, mode="median")
    with _raises_here("padding \\(1, 1\\) needs ignore_border=True"):
        pool.pool_2d(x, (2, 2), False, pad=(1, 1))
    with _raises_here("pad \\(2, 0\\) must be smaller than the window"):
        pool.pool_2d(x, (2, 2), True, pad=(2, 0))
    with _raises_here("ws must be a pair of ints >= 1, got \\(0, 2\\)"):
        pool.pool_2d(x, (0, 2), True)
    with _raises_here("at least 2 dims"):
        pool.pool_2d(T.dvector("v"), (2, 2), True)
    with _raises_here("needs a float input"):
        pool.pool_2d(T.itensor4("i"), (2, 2), True, mode="average_exc_pad")
    with pytest.warns(UserWarning, match="ignore_border"):
        pool.pool_2d(x, (2, 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_normalization_train_and_test(backend, rng):
    x = T.dtensor4("x")
    gamma, beta, rm, rv = (T.dvector(n) for n in ("gamma", "beta", "rm", "rv"))
    out, mean, invstd, new_rm, new_rv = bn.batch_normalization_train(
        x, gamma, beta, "spatial", 1e-4, 0.1, rm, rv)
    mean_t, var_t = T.dvector("mean"), T.dvector("var")
    test = bn.batch_normalization_test(x, gamma, beta, mean_t, var_t, "spatial")
    f = function([x, gamma, beta, rm, rv, mean_t, var_t],
                 [out, mean, invstd, new_rm, new_rv, test], backend=backend)
    xv = rng.normal(size=(4, 3, 5, 2)) * 3 + 1
    gv, bv, rmv, rvv = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3), \
        rng.uniform(1, 2, 3)
    o, m, inv, nrm, nrv, t = f(xv, gv, bv, rmv, rvv, rmv, rvv)
    mu = xv.mean(axis=(0, 2, 3))
    var = xv.var(axis=(0, 2, 3))
    shape = (1, 3, 1, 1)
    np.testing.assert_allclose(m, mu)
    np.testing.assert_allclose(inv, 1 / np.sqrt(var + 1e-4))
    np.testing.assert_allclose(o, (xv - mu.reshape(shape)) * gv.reshape(shape) /
                               np.sqrt(var.reshape(shape) + 1e-4) + bv.reshape(shape))
    np.testing.assert_allclose(nrm, 0.9 * rmv + 0.1 * mu)
    n = 4 * 5 * 2
    np.testing.assert_allclose(nrv, 0.9 * rvv + 0.1 * var * n / (n - 1))
    np.testing.assert_allclose(t, (xv - rmv.reshape(shape)) * gv.reshape(shape) /
                               np.sqrt(rvv.reshape(shape) + 1e-4) + bv.reshape(shape))


def test_batch_normalization_gradients_match_finite_differences(rng):
    pt = [rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)]
    verify_grad(lambda x, g, b: bn.batch_normalization_train(x, g, b)[0], pt, rng=rng)


def test_batch_normalization_errors():
    x = T.dtensor4("x")
    with pytest.raises(GraphError, match="gamma must have 3 dims .* or 4 .* 2 dims"):
        bn.batch_normalization_train(x, T.dmatrix("g"), T.dmatrix("b"))
    with pytest.raises(GraphError, match="epsilon must be at least 1e-5"):
        bn.batch_normalization_train(x, T.dtensor3("g"), T.dtensor3("b"), epsilon=1e-6)
    with pytest.raises(GraphError, match="both running_mean and running_var"):
        bn.batch_normalization_train(x, T.dtensor3("g"), T.dtensor3("b"),
                                     running_mean=T.dtensor3("m"))
    with pytest.raises(GraphError, match="axes must be 'per-activation', 'spatial'"):
        bn.batch_normalization_test(x, T.dtensor3("g"), T.dtensor3("b"), T.dtensor3("m"),
                                    T.dtensor3("v"), axes="channel")
