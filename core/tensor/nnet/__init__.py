"""Neural-network functions (`theanine.tensor.nnet`, Theano's `T.nnet`): activations, softmax
and log-softmax ops, and cross-entropy losses; convolutions (`conv2d`, from `abstract_conv`)
and batch normalization (`bn`) in submodules.

Softmax and log-softmax are ops of their own (max-shifted, so large inputs do not overflow) with
symbolic gradients; the stabilize rewrites turn `log(softmax(x))` into `log_softmax(x)`.
"""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.math import cast, clip, exp, log, maximum, neg, sigmoid, softplus, switch
from theanine.tensor.scalar_ops import ufunc_rule
from theanine.tensor.type import DISCRETE_DTYPES, INT_DTYPES, TensorType
from theanine.tensor.variable import TensorVariable

_float_rule = ufunc_rule(np.exp)


def _as_float(x) -> TensorVariable:
    """x, cast to the float dtype NumPy's exp would give it (ints become floats)."""
    x = as_tensor_variable(x)
    return cast(x, _float_rule(x.dtype))


def _normalize_axis(axis: int, x: TensorVariable, fname: str) -> int:
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise graph_error(f"{fname}: axis {axis!r} is out of range for {x} with {x.ndim} dims")
    return int(axis) % x.ndim


class _SoftmaxBase(Op):
    """Shared make_node / infer_shape for the softmax family (one float input, same shape)."""

    __props__ = ("axis",)
    fname = "softmax"

    def __init__(self, axis: int):
        self.axis = axis

    def __str__(self):
        return f"{self.fname}{{axis={self.axis}}}"

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.ndim == 0 or x.dtype not in ("float16", "float32", "float64"):
            raise graph_error(f"{self.fname} expects a float tensor with at least 1 dim, got {x} "
                              f"of type {x.type}")
        if self.axis >= x.ndim:
            raise graph_error(f"{self.fname}: axis {self.axis} is out of range for {x} with "
                              f"{x.ndim} dims")
        return Apply(self, [x], [x.type.clone()()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(inputs[0]),)

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0]]


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """x minus its max along `axis` (so exp never overflows); empty axes stay empty."""
    if x.shape[axis] == 0:
        return x
    m = np.max(x, axis=axis, keepdims=True)
    return x - np.where(np.isfinite(m), m, 0)


class Softmax(_SoftmaxBase):
    """softmax(x)[i] = exp(x[i]) / sum_j exp(x[j]) along `axis`."""

    fname = "softmax"

    def py_fn(self, node):
        axis = self.axis

        def softmax(x):
            e = np.exp(_shifted(np.asarray(x), axis))
            return e / e.sum(axis=axis, keepdims=True)

        return softmax

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.reduction import sum as sum_

        sm, g = outputs[0], output_grads[0]
        return [(g - sum_(g * sm, axis=self.axis, keepdims=True)) * sm]


class LogSoftmax(_SoftmaxBase):
    """log_softmax(x) = x - max(x) - log(sum(exp(x - max(x)))) along `axis`."""

    fname = "log_softmax"

    def py_fn(self, node):
        axis = self.axis

        def log_softmax(x):
            z = _shifted(np.asarray(x), axis)
            return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))

        return log_softmax

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.reduction import sum as sum_

        lsm, g = outputs[0], output_grads[0]
        return [g - exp(lsm) * sum_(g, axis=self.axis, keepdims=True)]


def softmax(x, axis: int | None = None) -> TensorVariable:
    """exp(x) / sum(exp(x)) along `axis`, computed max-shifted. Without `axis`, along the last
    one, and a vector comes back as one row of shape (1, n), as Theano's softmax returns it
    (Theano programs index its result as a matrix: rnnslu's `s[:, 0, :]`)."""
    x = _as_float(x)
    if axis is None:
        axis = -1
        if x.ndim == 1:
            x = x.dimshuffle("x", 0)
    return Softmax(_normalize_axis(axis, x, "softmax"))(x)


def log_softmax(x, axis: int = -1) -> TensorVariable:
    """log(softmax(x)) along `axis`, computed without forming softmax (no log(0) = -inf)."""
    x = _as_float(x)
    return LogSoftmax(_normalize_axis(axis, x, "log_softmax"))(x)


def relu(x, alpha=0) -> TensorVariable:
    """Rectifier: x where x > 0, else alpha * x (alpha=0: max(x, 0); 0 < alpha < 1: leaky)."""
    x = as_tensor_variable(x)
    if isinstance(alpha, (int, float)) and alpha == 0:
        return maximum(x, 0)
    return switch(x > 0, x, alpha * x)


def hard_sigmoid(x) -> TensorVariable:
    """Piecewise-linear sigmoid: clip(0.2 * x + 0.5, 0, 1) (Theano's hard_sigmoid)."""
    x = _as_float(x)
    return clip(x * 0.2 + 0.5, 0, 1)


def binary_crossentropy(output, target) -> TensorVariable:
    """-(target * log(output) + (1 - target) * log(1 - output)), elementwise.

    When `output` is sigmoid(z), the stabilize rewrites make this exact for large |z|.
    """
    output, target = as_tensor_variable(output), as_tensor_variable(target)
    return neg(target * log(output) + (1 - target) * log(1 - output))


def sigmoid_binary_crossentropy(output, target) -> TensorVariable:
    """binary_crossentropy(sigmoid(output), target) computed from the logits `output` without
    forming the sigmoid: target * softplus(-output) + (1 - target) * softplus(output)."""
    output, target = _as_float(output), as_tensor_variable(target)
    return target * softplus(neg(output)) + (1 - target) * softplus(output)


class OneHot(Op):
    """to_one_hot(y, n): out[..., k] = (y[...] == k), of shape y.shape + (n,).

    `nb_class` is the class count; None takes it at run time from the last axis of a second
    input (used by categorical_crossentropy's gradient).
    """

    __props__ = ("nb_class", "dtype")

    def __init__(self, nb_class: int | None, dtype: str):
        self.nb_class = nb_class
        self.dtype = dtype

    def make_node(self, y, like=None):
        y = as_tensor_variable(y)
        if y.dtype not in INT_DTYPES:
            raise graph_error(f"to_one_hot: class indices must be integers, got {y} of type "
                              f"{y.type}")
        inputs = [y] if like is None else [y, as_tensor_variable(like)]
        n = self.nb_class if like is None else inputs[1].type.shape[-1]
        return Apply(self, inputs, [TensorType(self.dtype, y.type.shape + (n,))()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)

    def py_fn(self, node):
        nb_class, dtype = self.nb_class, node.outputs[0].type.numpy_dtype

        def one_hot(y, like=None):
            n = nb_class if like is None else np.shape(like)[-1]
            y = np.asarray(y)
            _check_labels(y, n)
            return (y[..., None] == np.arange(n)).astype(dtype)

        return one_hot

    def pullback(self, node, inputs, outputs, output_grads):
        return [None] * len(inputs)

    def infer_shape(self, node, input_shapes):
        n = self.nb_class if len(input_shapes) == 1 else input_shapes[1][-1]
        return [tuple(input_shapes[0]) + (n,)]


def _check_labels(y: np.ndarray, n: int) -> None:
    if y.size and (y.min() < 0 or y.max() >= n):
        bad = y.min() if y.min() < 0 else y.max()
        raise IndexError(f"class index {bad} is out of range for {n} classes")


def to_one_hot(y, nb_class: int, dtype: str = "float64") -> TensorVariable:
    """A one-hot matrix of shape y.shape + (nb_class,) from integer class indices y."""
    return OneHot(int(nb_class), dtype)(y)


class CrossentropyCategorical1Hot(Op):
    """out[...] = -log(coding[..., y[...]]): cross-entropy against integer class indices,
    reading one probability per row instead of forming a one-hot matrix."""

    def make_node(self, coding, y):
        coding, y = as_tensor_variable(coding), as_tensor_variable(y)
        if y.dtype not in INT_DTYPES or y.ndim != coding.ndim - 1:
            raise graph_error(f"categorical_crossentropy: class indices must be an integer "
                              f"tensor with one dim fewer than {coding} ({coding.ndim} dims), "
                              f"got {y} of type {y.type}")
        shape = []
        for a, b in zip(coding.type.shape[:-1], y.type.shape):
            if a is not None and b is not None and a != b:
                raise graph_error(f"categorical_crossentropy: {coding} has shape "
                                  f"{coding.type.shape} but the class indices {y} have shape "
                                  f"{y.type.shape}")
            shape.append(a if a is not None else b)
        return Apply(self, [coding, y], [TensorType(coding.dtype, shape)()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)

    def py_fn(self, node):
        def crossentropy(coding, y):
            coding, y = np.asarray(coding), np.asarray(y)
            if coding.shape[:-1] != y.shape:
                raise ValueError(f"categorical_crossentropy: probabilities of shape "
                                 f"{coding.shape} need class indices of shape "
                                 f"{coding.shape[:-1]}, got {y.shape}")
            _check_labels(y, coding.shape[-1])
            return -np.log(np.take_along_axis(coding, y[..., None], axis=-1)[..., 0])

        return crossentropy

    def pullback(self, node, inputs, outputs, output_grads):
        coding, y = inputs
        mask = OneHot(None, "bool")(y, coding)
        g = output_grads[0].dimshuffle(*range(coding.ndim - 1), "x")
        # the inner switch keeps unselected (possibly zero) entries out of the division, so
        # neither this gradient nor its own gradient produces 0 * inf = NaN
        return [switch(mask, neg(g) / switch(mask, coding, 1), 0), None]

    def infer_shape(self, node, input_shapes):
        return [tuple(input_shapes[0][:-1])]


def categorical_crossentropy(coding_dist, true_dist) -> TensorVariable:
    """-sum(true_dist * log(coding_dist), axis=-1): `true_dist` holds probabilities (same shape
    as coding_dist) or integer class indices (one dim fewer), as in Theano."""
    coding_dist, true_dist = as_tensor_variable(coding_dist), as_tensor_variable(true_dist)
    if true_dist.ndim == coding_dist.ndim - 1 and true_dist.dtype in DISCRETE_DTYPES:
        return CrossentropyCategorical1Hot()(coding_dist, true_dist)
    if true_dist.ndim != coding_dist.ndim:
        raise graph_error(f"categorical_crossentropy: true_dist {true_dist} must have the shape "
                          f"of coding_dist {coding_dist} ({coding_dist.ndim} dims) or be integer "
                          f"class indices with {coding_dist.ndim - 1} dims; got "
                          f"{true_dist.ndim} dims of dtype {true_dist.dtype}")
    from theanine.tensor.reduction import sum as sum_

    return neg(sum_(true_dist * log(coding_dist), axis=-1))


# the submodules build on the functions above
from theanine.tensor.nnet import abstract_conv as abstract_conv  # noqa: E402
from theanine.tensor.nnet import bn as bn  # noqa: E402
from theanine.tensor.nnet.abstract_conv import (  # noqa: E402
    conv2d,
    conv2d_grad_wrt_inputs,
    conv2d_grad_wrt_weights,
)

__all__ = ["conv2d", "conv2d_grad_wrt_inputs", "conv2d_grad_wrt_weights", "sigmoid", "softplus",
           "relu", "softmax", "log_softmax", "hard_sigmoid", "binary_crossentropy",
           "sigmoid_binary_crossentropy", "categorical_crossentropy", "to_one_hot", "Softmax",
           "LogSoftmax", "OneHot", "CrossentropyCategorical1Hot"]
