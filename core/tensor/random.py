"""Random draws as graph operations: counter-based, so a draw is an elementwise function of a
generator state (key, counter) and each element's flat index.

`uniform01(state, size, dtype)` is `Elemwise(random_uniform_<dtype>)(key, counter,
FlatIndex(size))`: the backends fuse it with the elementwise graph around it, and a fused
kernel never stores the index (it is the position in the loop: `theanine.codegen.ir.Index`).
The state is a uint64 vector [key, counter] (`theanine.random_streams` keeps it in a shared
variable); the numbers are `theanine.tensor.philox`'s. Draws have no gradient with respect to
the state; scaling and shifting them are ordinary elementwise ops, whose gradients flow.
"""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.elemwise import Elemwise
from theanine.tensor.scalar_ops import SCALAR_OPS
from theanine.tensor.shape_ops import MakeVector, entry_variable, shape_entries
from theanine.tensor.type import TensorType
from theanine.tensor.variable import TensorVariable

STATE_DTYPE = "uint64"  # [key, counter]
DRAW_DTYPES = ("float32", "float64")


class FlatIndex(Op):
    """The C-order flat index of every element of an array of shape `size` (uint64). Inside a
    fused kernel it costs nothing: it is the loop position."""

    __props__ = ("shape",)

    def __init__(self, shape: tuple):
        self.shape = tuple(shape)

    def make_node(self, size) -> Apply:
        size = as_tensor_variable(size)
        if size.ndim != 1 or size.dtype != "int64" or size.type.shape[0] != len(self.shape):
            raise graph_error(f"FlatIndex: expected an int64 vector of {len(self.shape)} "
                              f"lengths, got {size} of type {size.type}")
        return Apply(self, [size], [TensorType("uint64", self.shape)()])

    def do_constant_folding(self, node) -> bool:
        """Never: a constant index array would replace the loop position a fused draw uses."""
        return False

    def perform(self, node, inputs):
        shape = check_size(inputs[0])
        n = int(np.prod(shape, dtype=np.int64))
        return (np.arange(n, dtype=np.uint64).reshape(shape),)

    def pullback(self, node, inputs, outputs, output_grads):
        return [None]

    def infer_shape(self, node, input_shapes):
        size = node.inputs[0]
        return [tuple(s if s is not None else size[i] for i, s in enumerate(self.shape))]


def check_size(size) -> tuple:
    """`size` (the run-time value of a draw's size) as a shape; a ValueError naming the
    argument when a length is negative."""
    shape = tuple(int(s) for s in np.asarray(size).reshape(-1))
    if any(s < 0 for s in shape):
        raise ValueError(f"random draw: size must not have negative lengths, got {shape}")
    return shape


def as_size(size) -> TensorVariable:
    """A draw's `size` (ints, scalars, a tuple of them or an int vector such as `x.shape`) as
    an int64 vector; negative constant lengths are refused here, when the graph is built."""
    entries = shape_entries(size, "random draw: size")
    for e in entries:
        if isinstance(e, int) and e < 0:
            raise graph_error(f"random draw: size must not have negative lengths, got "
                              f"{tuple(entries)}")
    if entries and all(isinstance(e, int) for e in entries):
        return as_tensor_variable(np.array(entries, dtype=np.int64))
    if not entries:
        return as_tensor_variable(np.zeros(0, dtype=np.int64))
    return MakeVector("int64")(*[entry_variable(e) for e in entries])


def static_shape(size: TensorVariable) -> tuple:
    """What the graph knows of the lengths in the int64 vector `size`."""
    data = getattr(size, "data", None)
    if data is not None:
        return tuple(int(s) for s in data)
    if size.owner is not None and isinstance(size.owner.op, MakeVector):
        return tuple(int(v.data) if getattr(v, "data", None) is not None else None
                     for v in size.owner.inputs)
    return (None,) * size.type.shape[0]


def check_state(state) -> TensorVariable:
    state = as_tensor_variable(state)
    if state.dtype != STATE_DTYPE or state.ndim != 1:
        raise graph_error(f"random draw: the generator state must be a uint64 vector "
                          f"[key, counter], got {state} of type {state.type}")
    return state


def draw(kind: str, state, size, dtype: str) -> TensorVariable:
    """`kind` ("uniform": [0, 1); "normal": standard normal) numbers of `dtype` (float32 or
    float64) with shape `size`, from generator state `state`."""
    if dtype not in DRAW_DTYPES:
        raise graph_error(f"random draw: dtype must be one of {DRAW_DTYPES}, got {dtype!r}")
    state = check_state(state)
    size = as_size(size)
    index = FlatIndex(static_shape(size))(size)
    return Elemwise(SCALAR_OPS[f"random_{kind}_{dtype}"])(state[0], state[1], index)


def uniform01(state, size, dtype: str) -> TensorVariable:
    """Uniform numbers in [0, 1)."""
    return draw("uniform", state, size, dtype)


def standard_normal(state, size, dtype: str) -> TensorVariable:
    """Standard normal numbers."""
    return draw("normal", state, size, dtype)


def next_state(state) -> TensorVariable:
    """The state after one call: the same key, the counter advanced by one (each call reads a
    fresh 2**64 blocks of the key's stream)."""
    state = check_state(state)
    return state + as_tensor_variable(np.array([0, 1], dtype=np.uint64))
