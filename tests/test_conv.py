"""conv2d and its gradient functions against a direct loop written from the definition, on the
reference and C backends, for every border mode, strides, dilation, groups and correlation;
gradients (and second derivatives) against finite differences; shapes against Theano's
documented convolution arithmetic; and the errors for bad arguments and shapes."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine import config
from theanine.compile.function import function
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError
from theanine.tensor.nnet import conv2d, conv2d_grad_wrt_inputs, conv2d_grad_wrt_weights
from theanine.tensor.nnet.abstract_conv import get_conv_output_shape

BACKENDS = ["numpy", "c"]


@pytest.fixture
def device():
    """Set config.device (the backend verify_grad's functions compile for) for one test."""
    old = config.device
    yield lambda name: setattr(config, "device", name)
    config.device = old


def loop_conv(x, w, pads, stride=(1, 1), dil=(1, 1), groups=1, flip=True):
    """out[n, f, y, x] = sum over c, i, j of xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw] *
    w[f, c, i', j'] (i' = kh-1-i when flipped), computed one output at a time."""
    (pt, pb), (pl, pr) = pads
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt:pt + h, pl:pl + wd] = x
    oh = (h + pt + pb - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (wd + pl + pr - (kw - 1) * dil[1] - 1) // stride[1] + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // groups
    for b in range(n):
        for o in range(f):
            g = o // fg
            for y in range(oh):
                for xx in range(ow):
                    s = 0.0
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                wi, wj = (kh - 1 - i, kw - 1 - j) if flip else (i, j)
                                s += xp[b, g * cg + ci, y * stride[0] + i * dil[0],
                                        xx * stride[1] + j * dil[1]] * w[o, ci, wi, wj]
                    out[b, o, y, xx] = s
    return out


GEOMETRIES = [
    # (conv2d keyword arguments, explicit pads as a function of the kernel's extent)
    (dict(), lambda ek: ((0, 0), (0, 0))),
    (dict(border_mode="full"), lambda ek: ((ek[0] - 1,) * 2, (ek[1] - 1,) * 2)),
    (dict(border_mode="half"), lambda ek: ((ek[0] // 2,) * 2, (ek[1] // 2,) * 2)),
    (dict(border_mode=2, subsample=(2, 3)), lambda ek: ((2, 2), (2, 2))),
    (dict(border_mode=(1, (0, 2)), filter_flip=False), lambda ek: ((1, 1), (0, 2))),
    (dict(border_mode="half", filter_dilation=(2, 3), subsample=(1, 2)),
     lambda ek: ((ek[0] // 2,) * 2, (ek[1] // 2,) * 2)),
    (dict(num_groups=2, border_mode=((2, 0), (1, 1))), lambda ek: ((2, 0), (1, 1))),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kwargs, pads", GEOMETRIES)
def test_conv2d_matches_a_direct_loop(backend, kwargs, pads, rng):
    groups = kwargs.get("num_groups", 1)
    dil = kwargs.get("filter_dilation", (1, 1))
    xv = rng.normal(size=(2, 2 * groups, 9, 8))
    wv = rng.normal(size=(3 * groups, 2, 3, 2))
    x, w = T.dtensor4("x"), T.dtensor4("w")
    f = function([x, w], conv2d(x, w, **kwargs), backend=backend)
    ek = [(k - 1) * d + 1 for k, d in zip(wv.shape[2:], dil)]
    expected = loop_conv(xv, wv, pads(ek), kwargs.get("subsample", (1, 1)), dil, groups,
                         kwargs.get("filter_flip", True))
    np.testing.assert_allclose(f(xv[:, :, ::-1].copy()[:, :, ::-1], wv), expected, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_float32_strided_input(backend, rng):
    xv = rng.normal(size=(3, 4, 13, 11)).astype("float32")
    wv = rng.normal(size=(6, 2, 4, 3)).astype("float32")
    x, w = T.ftensor4("x"), T.ftensor4("w")
    f = function([x, w], conv2d(x, w, border_mode=(1, 2), subsample=(2, 1), num_groups=2),
                 backend=backend)
    view = xv[:, :, ::-1, ::2]
    got = f(view, wv)
    assert got.dtype == np.float32
    expected = loop_conv(view.astype(float), wv.astype(float), ((1, 1), (2, 2)), (2, 1),
                         groups=2)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_functions_are_the_adjoints_of_conv2d(backend, rng):
    """<conv(x, w), t> = <x, grad_inputs(t, w)> = <w, grad_weights(x, t)> for every geometry."""
    geometry = dict(border_mode=(1, 0), subsample=(2, 2), filter_dilation=(1, 2))
    xv, wv = rng.normal(size=(2, 3, 10, 9)), rng.normal(size=(4, 3, 3, 2))
    x, w, t = T.dtensor4("x"), T.dtensor4("w"), T.dtensor4("t")
    y = conv2d(x, w, **geometry)
    gi = conv2d_grad_wrt_inputs(t, w, (2, 3, 10, 9), **geometry)
    gw = conv2d_grad_wrt_weights(x, t, (4, 3, 3, 2), **geometry)
    f = function([x, w, t], [y, gi, gw], backend=backend, on_unused_input="ignore")
    yv = f(xv, wv, np.zeros((2, 4, 5, 4)))[0]
    tv = rng.normal(size=yv.shape)
    _, giv, gwv = f(xv, wv, tv)
    assert giv.shape == xv.shape and gwv.shape == wv.shape
    np.testing.assert_allclose(np.sum(yv * tv), np.sum(xv * giv), rtol=1e-12)
    np.testing.assert_allclose(np.sum(yv * tv), np.sum(wv * gwv), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kwargs", [dict(), dict(border_mode="full", subsample=(2, 1)),
                                    dict(border_mode="half", filter_dilation=(2, 1),
                                         filter_flip=False, num_groups=2)])
def test_conv2d_gradients_match_finite_differences(backend, kwargs, rng, device):
    device(backend)
    g = kwargs.get("num_groups", 1)
    pt = [rng.normal(size=(2, 2 * g, 6, 5)), rng.normal(size=(2 * g, 2, 3, 2))]
    verify_grad(lambda x, w: T.tanh(conv2d(x, w, **kwargs)), pt, rng=rng)


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_derivatives_match_finite_differences(backend, rng, device):
    """The gradient ops' own gradients (a gradient penalty differentiates conv2d twice)."""
    device(backend)

    def penalty(x, w):
        gx = T.grad(T.sum(T.tanh(conv2d(x, w, subsample=(2, 1), border_mode=1))), x)
        return T.sum(gx ** 2)

    pt = [rng.normal(size=(2, 2, 5, 6)), rng.normal(size=(3, 2, 2, 3))]
    verify_grad(penalty, pt, rng=rng)


def test_output_shapes_follow_theanos_convolution_arithmetic():
    """The shapes of Theano's 'Convolution arithmetic' tutorial (5x5 input, 3x3 kernel)."""
    cases = {("valid", (1, 1)): 3, ("full", (1, 1)): 7, ("half", (1, 1)): 5,
             (1, (2, 2)): 3, (2, (1, 1)): 7, ("valid", (2, 2)): 2}
    for (border, sub), n in cases.items():
        assert get_conv_output_shape((1, 1, 5, 5), (1, 1, 3, 3), border, sub) == (1, 1, n, n)
    # 6x6 input, 3x3 kernel, pad 1, stride 2 ('half' with stride); dilation 2 makes a 5x5 kernel
    assert get_conv_output_shape((2, 3, 6, 6), (4, 3, 3, 3), 1, (2, 2)) == (2, 4, 3, 3)
    assert get_conv_output_shape((2, 3, 7, 7), (4, 3, 3, 3), "valid", (1, 1),
                                 (2, 2)) == (2, 4, 3, 3)
    assert get_conv_output_shape((None, 3, 7, None), (4, 3, 3, 3), "valid",
                                 (1, 1)) == (None, 4, 5, None)
    x = T.tensor("float64", shape=(None, 3, 28, 28), name="x")
    y = conv2d(x, T.dtensor4("w"), filter_shape=(20, 3, 5, 5))
    assert y.type.shape == (None, 20, 24, 24)


def test_shape_hints_are_checked(rng):
    x, w = T.dtensor4("x"), T.dtensor4("w")
    f = function([x, w], conv2d(x, w, input_shape=(2, 1, 6, 6), filter_shape=(3, 1, 3, 3)))
    assert f(rng.normal(size=(2, 1, 6, 6)), rng.normal(size=(3, 1, 3, 3))).shape == (2, 3, 4, 4)
    with pytest.raises(Exception, match="shape"):
        f(rng.normal(size=(2, 1, 7, 6)), rng.normal(size=(3, 1, 3, 3)))


def _raises_here(match: str):
    """The error names the problem and points at this test file (the user's line)."""
    return pytest.raises(GraphError, match=f"(?s){match}.*test_conv.py")


def test_build_errors_name_the_argument_and_the_users_line():
    x4 = T.tensor("float64", shape=(None, 3, 8, 8), name="x")
    w4 = T.tensor("float64", shape=(5, 2, 3, 3), name="w")
    with _raises_here("input has 3 channels but the filters have 2"):
        conv2d(x4, w4)
    w_big = T.tensor("float64", shape=(5, 3, 9, 3), name="w")
    with _raises_here("kernel has 9 rows .* input has only 8 rows"):
        conv2d(x4, w_big)
    conv2d(x4, w_big, border_mode="full")  # fine with padding
    with _raises_here("border_mode must be 'valid', 'full', 'half'.*'same'"):
        conv2d(x4, T.dtensor4("w"), border_mode="same")
    with _raises_here("subsample must be a pair of ints >= 1, got \\(0, 1\\)"):
        conv2d(x4, T.dtensor4("w"), subsample=(0, 1))
    with _raises_here("input must be a 4-d tensor .* 3 dims"):
        conv2d(T.dtensor3("x"), T.dtensor4("w"))
    with _raises_here("filters must be a 4-d tensor .* 2 dims"):
        conv2d(x4, T.dmatrix("w"))
    with _raises_here("input_shape=.* static shape"):
        conv2d(x4, T.dtensor4("w"), input_shape=(None, 4, 8, 8))
    with _raises_here("num_groups"):
        conv2d(x4, T.dtensor4("w"), num_groups=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_time_shape_errors(backend, rng):
    x, w = T.dtensor4("x"), T.dtensor4("w")
    f = function([x, w], conv2d(x, w), backend=backend)
    with pytest.raises(ValueError, match="(?s)3 channels .* filters have shape \\(2, 2, 3, 3\\)"
                                         ".*test_conv.py"):
        f(rng.normal(size=(1, 3, 5, 5)), rng.normal(size=(2, 2, 3, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        f(rng.normal(size=(1, 2, 2, 5)), rng.normal(size=(2, 2, 3, 3)))


def _fused_ops(f) -> list[str]:
    from theanine.graph.traversal import toposort
    from theanine.tensor.nnet.conv_fused import Conv2dBiasAct

    return [n.op.activation for n in toposort(f.maker.fgraph.outputs)
            if isinstance(n.op, Conv2dBiasAct)]


def test_c_fuses_bias_and_activation_into_the_convolution(rng):
    from theanine.tensor.nnet import relu, sigmoid

    x, w, b = T.ftensor4("x"), T.ftensor4("w"), T.fvector("b")
    bias = b.dimshuffle("x", 0, "x", "x")
    outs = [relu(conv2d(x, w) + bias), T.tanh(conv2d(x, w, border_mode="half") + bias),
            sigmoid(bias + conv2d(x, w, subsample=(2, 2))), conv2d(x, w, border_mode=1) + bias]
    fc = function([x, w, b], outs, backend="c")
    assert sorted(_fused_ops(fc)) == ["identity", "relu", "sigmoid", "tanh"]
    fr = function([x, w, b], outs, backend="numpy")
    assert _fused_ops(fr) == []
    args = [rng.normal(size=(3, 2, 9, 8)).astype("f"), rng.normal(size=(4, 2, 3, 3)).astype("f"),
            rng.normal(size=4).astype("f")]
    for got, want in zip(fc(*args), fr(*args)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    # the convolution read elsewhere too: no fusion, the same numbers
    y = conv2d(x, w)
    f2 = function([x, w, b], [relu(y + bias), y], backend="c")
    assert _fused_ops(f2) == []
    np.testing.assert_allclose(f2(*args)[0], fr(*args)[0], rtol=2e-5, atol=2e-5)
