"""`theanine.tensor` (imported as T): variable constructors and the op library."""

from theanine.tensor.basic import *  # noqa: F403
from theanine.tensor.elemwise import dimshuffle
from theanine.tensor.math import *  # noqa: F403
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorConstant, TensorVariable
