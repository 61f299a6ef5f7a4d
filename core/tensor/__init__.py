"""`theanine.tensor` (imported as T): variable constructors and the op library.

Functions contributed by op plugins (`theanine_register_ops`) appear here as attributes too.
"""

from theanine.tensor.allocation import *  # noqa: F403
from theanine.tensor.basic import *  # noqa: F403
from theanine.tensor.broadcasting import *  # noqa: F403
from theanine.tensor.elemwise import dimshuffle as dimshuffle
from theanine.tensor.join import *  # noqa: F403
from theanine.tensor.linalg import *  # noqa: F403
from theanine.tensor.math import *  # noqa: F403
from theanine.tensor.reduction import *  # noqa: F403
from theanine.tensor.shape_ops import *  # noqa: F403
from theanine.tensor.subtensor import *  # noqa: F403
from theanine.tensor.theano_names import *  # noqa: F403
from theanine.tensor.type import TensorType as TensorType
from theanine.tensor.variable import TensorConstant as TensorConstant
from theanine.tensor.variable import TensorVariable as TensorVariable

# isort: split
from typing import NamedTuple

from theanine.plugins.manager import PluginCollected

# isort: split
# after the op library: theanine.gradient and nnet build on it
from theanine.gradient import Lop as Lop
from theanine.gradient import Rop as Rop
from theanine.gradient import grad as grad
from theanine.gradient import hessian as hessian
from theanine.gradient import jacobian as jacobian
from theanine.tensor import elemwise as elemwise
from theanine.tensor import extra_ops as extra_ops
from theanine.tensor import nnet as nnet
from theanine.tensor import xlogx as xlogx
from theanine.tensor.extra_ops import *  # noqa: F403
from theanine.tensor.grids import mgrid as mgrid
from theanine.tensor.grids import ogrid as ogrid


def _op_key(op) -> str:
    """The conformance key of an Op instance or class, or a ScalarOp / Elemwise: the scalar
    op's name for elementwise ops, else the Op class name."""
    scalar = getattr(op, "scalar_op", op)
    if isinstance(scalar, elemwise.ScalarOp):
        return scalar.name
    return op.__name__ if isinstance(op, type) else type(op).__name__


class PluginOps(NamedTuple):
    """What op plugins registered: functions by name, the op keys each builds, and the
    ScalarOps they listed."""

    functions: dict
    keys: dict[str, set[str]]
    scalar_ops: tuple


def _collect_plugin_ops() -> PluginOps:
    from theanine.plugins.manager import call_hook

    found: dict = {}
    keys: dict[str, set[str]] = {}
    scalars: list = []

    def register(name: str, function, ops=()) -> None:
        if not name.isidentifier():
            raise ValueError(f"op plugin name {name!r} is not a Python identifier")
        if name in globals() or name in found:
            raise ValueError(f"op plugin function {name!r} would shadow "
                             f"theanine.tensor.{name}")
        if not callable(function):
            raise TypeError(f"register({name!r}, function): not callable: {function!r}")
        found[name] = function
        keys[name] = {_op_key(op) for op in ops}
        scalars.extend(s for s in (getattr(op, "scalar_op", op) for op in ops)
                       if isinstance(s, elemwise.ScalarOp))

    call_hook("theanine_register_ops", register)
    return PluginOps(found, keys, tuple(scalars))


_PLUGIN_OPS = PluginCollected(_collect_plugin_ops)


def plugin_ops() -> dict:
    """Functions registered by op plugins, by name (collected on first use)."""
    return _PLUGIN_OPS.get().functions


def plugin_scalar_ops() -> tuple:
    """The ScalarOps op plugins listed in `ops=` (the ones a plugin kernel of the same name
    applies to)."""
    return _PLUGIN_OPS.get().scalar_ops


def plugin_op_keys() -> dict[str, set[str]]:
    """For each plugin function, the op keys (scalar op names, Op class names) it builds."""
    return dict(_PLUGIN_OPS.get().keys)


def __getattr__(name: str):
    ops = plugin_ops()
    if name in ops:
        return ops[name]
    raise AttributeError(f"module 'theanine.tensor' has no attribute {name!r}")
