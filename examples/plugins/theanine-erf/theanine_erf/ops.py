"""The ops: what one element means (NumPy reference), the dtype rule and the derivative.

The references evaluate Python's `math.erf` / `math.erfc` (correctly rounded to about one ulp
of float64) element by element, then round to the output dtype; no scipy needed.
"""

from __future__ import annotations

import math

import numpy as np

import theanine.tensor as T
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.elemwise import Elemwise, ScalarOp
from theanine.tensor.scalar_ops import real_rule
from theanine.tensor.variable import TensorVariable

SQRT1_2 = math.sqrt(0.5)
TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)

_erf64 = np.vectorize(math.erf, otypes=[np.float64])
_erfc64 = np.vectorize(math.erfc, otypes=[np.float64])


def erf_reference(x) -> np.ndarray:
    """erf of every element, computed in float64."""
    return _erf64(np.asarray(x, dtype=np.float64))


def erfc_reference(x) -> np.ndarray:
    """erfc (1 - erf, without the cancellation) of every element, computed in float64."""
    return _erfc64(np.asarray(x, dtype=np.float64))


def gelu_reference(x) -> np.ndarray:
    """x * Phi(x) = x/2 * erfc(-x / sqrt 2) in float64 (erfc: no cancellation for x < 0);
    gelu(-inf) is -0.0, its limit."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = 0.5 * x * erfc_reference(-x * SQRT1_2)
    return np.where(np.isneginf(x), -0.0, out)


def _erf_grad(inputs, out, gz):
    (x,) = inputs
    return [gz * TWO_OVER_SQRT_PI * T.exp(-(x * x))]


def _erfc_grad(inputs, out, gz):
    (x,) = inputs
    return [-gz * TWO_OVER_SQRT_PI * T.exp(-(x * x))]


def _gelu_grad(inputs, out, gz):
    (x,) = inputs
    # d/dx x*Phi(x) = Phi(x) + x*phi(x); x*phi(x) -> 0 at +-inf, where inf*0 would be NaN
    cdf = 0.5 * erfc(-x * SQRT1_2)
    x_pdf = T.switch(T.isinf(x), 0, x * INV_SQRT_2PI * T.exp(-0.5 * (x * x)))
    return [gz * (cdf + x_pdf)]


# dtype rule as exp's: floats keep their dtype, integers become float32 (int8, int16) or
# float64; complex inputs are refused when the graph is built
_RULE = real_rule(np.exp)
ERF = Elemwise(ScalarOp("erf", 1, erf_reference, _RULE, _erf_grad))
ERFC = Elemwise(ScalarOp("erfc", 1, erfc_reference, _RULE, _erfc_grad))
GELU = Elemwise(ScalarOp("gelu", 1, gelu_reference, _RULE, _gelu_grad))


def erf(x) -> TensorVariable:
    """The error function of every element."""
    return ERF(as_tensor_variable(x))


def erfc(x) -> TensorVariable:
    """The complementary error function 1 - erf(x) of every element, accurate for large x."""
    return ERFC(as_tensor_variable(x))


def gelu(x) -> TensorVariable:
    """The Gaussian error linear unit x * Phi(x), Phi the standard normal CDF."""
    return GELU(as_tensor_variable(x))
