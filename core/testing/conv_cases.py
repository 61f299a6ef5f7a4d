"""Conformance cases for convolutional networks: conv2d in each geometry (valid, full, half,
explicit and asymmetric padding, strides, dilation, groups, correlation), its two gradient
functions, pool_2d in every mode and border rule (padding, overlapping and partial windows),
max pooling's second derivative, and batch normalization. Gradients are checked through the
case machinery, which covers the gradient ops. Shapes are tied by hand so every geometry is
valid, with odd sizes; inputs come in every layout the strategies draw (transposed, strided,
reversed, broadcast)."""

from __future__ import annotations

import importlib

from theanine.testing.cases import FLOAT, Arg, Case, free, register, sized
from theanine.testing.elemwise_cases import TIES
from theanine.testing.strategies import Domain

# moderate values: sums of a few dozen products stay well inside float32's precision
SMALL = Domain(-2.0, 2.0)
POOLED = ("int32", "float32", "float64")


def _nnet():
    return importlib.import_module("theanine.tensor.nnet")


def _pool():
    return importlib.import_module("theanine.tensor.signal.pool")


def _conv_case(name: str, groups: int = 1, **geometry) -> Case:
    """conv2d(x, w, **geometry) over shapes tied so the output has at least one pixel."""
    sub = geometry.get("subsample", (1, 1))
    dil = geometry.get("filter_dilation", (1, 1))
    full = geometry.get("border_mode") == "full"

    def shapes(n, c, f, kh, kw, a, b):
        # (inputs smaller than the kernel where the border allows it)
        extent = [1, 1] if full else [(k - 1) * d + 1 for k, d in zip((kh, kw), dil)]
        h, w = extent[0] + (a - 1) * sub[0], extent[1] + (b - 1) * sub[1] + 1
        return [(n, c * groups, h, w), (f * groups, c, kh, kw)]

    return Case(name, lambda x, w: _nnet().conv2d(x, w, num_groups=groups, **geometry),
                (free(4, domain=SMALL, name="x"), free(4, domain=SMALL, name="w")), FLOAT,
                functions=("conv2d",), shapes=sized(7, shapes, min_side=1), accumulates=True,
                extended=False)


for _case in [
    _conv_case("conv2d"),
    _conv_case("conv2d_full_strided_correlation", border_mode="full", subsample=(2, 3),
               filter_flip=False),
    _conv_case("conv2d_half_dilated", border_mode="half", subsample=(1, 2),
               filter_dilation=(2, 1)),
    _conv_case("conv2d_padded_groups", groups=2, border_mode=((1, 2), (0, 1)),
               subsample=(2, 1)),
    _conv_case("conv2d_int_pad", border_mode=(1, 2), filter_dilation=(1, 2)),
]:
    register(_case)


def _fused(x, w, b):
    """The convolution with its bias and activation fused (the C backend's epilogue rewrite
    makes this op from conv2d + bias and an activation)."""
    from theanine.tensor.nnet.conv_fused import Conv2dBiasAct
    from theanine.tensor.nnet.conv_ops import ConvGeometry

    g = ConvGeometry.build(border_mode="half", subsample=(2, 1))
    return [Conv2dBiasAct(g, act)(x, w, b) for act in ("identity", "relu", "tanh", "sigmoid")]


register(Case("conv2d_bias_activation", _fused,
              (free(4, domain=SMALL, name="x"), free(4, domain=SMALL, name="w"),
               free(1, name="b")), FLOAT, accumulates=True, extended=False,
              shapes=sized(5, lambda n, c, f, k, a: [(n, c, k + a, k + 2), (f, c, k, k), (f,)],
                           min_side=1)))


def _conv_grads(x, w, top):
    nnet = _nnet()
    geometry = dict(border_mode=1, subsample=(2, 2))
    return [nnet.conv2d_grad_wrt_inputs(top, w, x.shape, **geometry),
            nnet.conv2d_grad_wrt_weights(x, top, w.shape, **geometry)]


def _conv_grads_shapes(n, c, f, kh, kw, a, b):
    # pad 1, stride 2: rows h give (h + 2 - kh) // 2 + 1 outputs; h = kh + a - 2 + odd extra
    h, w = kh + a - 1, kw + b
    return [(n, c, h, w), (f, c, kh, kw), (n, f, (h + 2 - kh) // 2 + 1, (w + 2 - kw) // 2 + 1)]


register(Case("conv2d_grad_functions", _conv_grads,
              (free(4, domain=SMALL, name="x"), free(4, domain=SMALL, name="w"),
               free(4, domain=SMALL, name="top")), FLOAT,
              functions=("conv2d_grad_wrt_inputs", "conv2d_grad_wrt_weights"),
              shapes=sized(7, _conv_grads_shapes, min_side=1), accumulates=True,
              extended=False))


def _pool_case(name: str, dtypes, domain: Domain, variants: list[dict]) -> Case:
    """pool_2d of a 4-d input and of a 3-d one (pooling only the last two axes), once per
    variant of pool_2d's arguments."""

    def build(x, v):
        pool = _pool()
        return [pool.pool_2d(a, **kw) for kw in variants for a in (x, v)]

    return Case(name, build, (free(4, domain=domain, name="x"),
                              free(3, domain=domain, name="v")), tuple(dtypes),
                functions=("pool_2d",), min_side=1, accumulates=True, extended=False,
                shapes=sized(6, lambda n, c, h, w, a, b: [(n, c, h + a, w + b), (c, h + b, w)]))


for _case in [
    _pool_case("pool_2d_max", POOLED, TIES, [
        dict(ws=(2, 2), ignore_border=True),
        dict(ws=(3, 2), ignore_border=False, stride=(1, 2)),
        dict(ws=(2, 3), ignore_border=True, stride=(2, 1), pad=(1, 2)),
    ]),
    _pool_case("pool_2d_sum", POOLED, SMALL, [
        dict(ws=(2, 2), ignore_border=False, mode="sum"),
        dict(ws=(3, 3), ignore_border=True, stride=(1, 2), pad=(1, 1), mode="sum"),
    ]),
    _pool_case("pool_2d_average", FLOAT, SMALL, [
        dict(ws=(2, 3), ignore_border=True, pad=(1, 1), mode="average_inc_pad"),
        dict(ws=(2, 2), ignore_border=True, stride=(1, 1), pad=(1, 0),
             mode="average_exc_pad"),
        dict(ws=(3, 3), ignore_border=False, stride=(2, 2), mode="average_exc_pad"),
        dict(ws=(3, 2), ignore_border=False, stride=(2, 1), mode="average_inc_pad"),
    ]),
]:
    register(_case)


def _pool_gradient_ops(x, gg):
    """The second derivative of max pooling (MaxPoolGradGrad) and average pooling's gradient
    through their ops, and max_pool_2d_same_size (a MaxPoolGrad)."""
    pool = _pool()
    g = pool.pool_geometry((2, 2), True, (1, 2), (1, 0), "max")
    avg = pool.pool_geometry((3, 2), True, (2, 1), (1, 1), "average_exc_pad")
    return [pool.MaxPoolGradGrad(g)(x, pool.Pool(g)(x), gg),
            pool.AveragePoolGrad(avg)(x, pool.Pool(avg)(gg)),
            pool.max_pool_2d_same_size(x, (2, 3))]


register(Case("pool_gradient_ops", _pool_gradient_ops,
              (free(4, domain=TIES, name="x"), free(4, domain=SMALL, name="gg")), FLOAT,
              functions=("max_pool_2d_same_size",), min_side=1, extended=False,
              shapes=sized(4, lambda n, c, h, w: [(n, c, h + 1, w + 1)] * 2, min_side=1)))


def _bn_train(x, gamma, beta, rm, rv, x2, g2):
    bn = _nnet().bn
    # epsilon 1: a constant input (variance 0) must not magnify the rounding of x - mean,
    # which differs between backends, into the gradients
    out = bn.batch_normalization_train(x, gamma, beta, "spatial", 1.0, 0.3, rm, rv)
    out2 = bn.batch_normalization_train(x2, g2, g2 * 0.5, "per-activation", 1.0)
    return [*out, *out2]


def _bn_test(x, gamma, beta, mean, var):
    bn = _nnet().bn
    return [bn.batch_normalization_test(x, gamma, beta, mean, var, "spatial"),
            bn.batch_normalization(x, *(p.dimshuffle("x", 0, "x", "x")
                                        for p in (gamma, beta, mean, var + 1)))]


POSITIVE = Domain(0.5, 2.0)
register(Case("batch_normalization_train", _bn_train,
              (free(4, domain=SMALL, name="x"), free(1, name="gamma"), free(1, name="beta"),
               free(1, name="running_mean"), Arg((None,), domain=POSITIVE, name="running_var"),
               free(2, domain=SMALL, name="x2"), free(1, name="g2")), FLOAT,
              functions=("batch_normalization_train",), accumulates=True, extended=False,
              shapes=sized(4, lambda n, c, h, w: [(n + 1, c, h, w), (c,), (c,), (c,), (c,),
                                                  (n + 1, w), (w,)], min_side=1)))
register(Case("batch_normalization_test", _bn_test,
              (free(4, domain=SMALL, name="x"), free(1, name="gamma"), free(1, name="beta"),
               free(1, name="mean"), Arg((None,), domain=POSITIVE, name="var")), FLOAT,
              functions=("batch_normalization_test", "batch_normalization"), extended=False,
              shapes=sized(4, lambda n, c, h, w: [(n, c, h, w), (c,), (c,), (c,), (c,)],
                           min_side=1)))
