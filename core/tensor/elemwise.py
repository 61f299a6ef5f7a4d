"""Elementwise operations with NumPy broadcasting, and DimShuffle (transpose / add / drop
broadcastable axes).

An `Elemwise` wraps a `ScalarOp`: the scalar op says what one element means (NumPy callable,
dtype rule, derivative); Elemwise handles ranks, static shapes and broadcasting. Backends fuse
chains of Elemwise nodes into one kernel when they have a kernel for the scalar op itself (its
identity, not its name: see `theanine.codegen.scalar_kernels.kernel_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from theanine.graph.basic import Apply, Op, graph_error
from theanine.tensor.type import DISCRETE_DTYPES, TensorType, format_shape


class ScalarOp:
    """What an elementwise op does to one element.

    name: what printing and error messages call the op; two ops may share a name.
    impl: NumPy callable taking arrays, broadcasting like a ufunc.
    dtype_rule: input dtypes -> output dtype.
    grad: (inputs, output, gz) -> list of input gradients (None = zero/disconnected); written
          with tensor operations so gradients are graphs too.
    symbol/precedence: infix printing for `pp` (None = function-call style).
    identity: what makes two ScalarOps the same op (equal and merged by the rewrites); by
          default the name together with nin, impl, dtype_rule and grad, so ops that share
          a name but compute something else stay apart. theanine's own ops pass
          ("theanine", name), which a copy of one (made by pickling) shares.
    """

    __slots__ = ("name", "nin", "impl", "dtype_rule", "grad", "symbol", "precedence",
                 "commutative", "associative", "identity")

    def __init__(self, name: str, nin: int, impl: Callable, dtype_rule: Callable,
                 grad: Callable | None, symbol: str | None = None, precedence: int = 0,
                 commutative: bool = False, associative: bool = False,
                 identity: Hashable | None = None):
        self.identity = (name, nin, impl, dtype_rule, grad) if identity is None else identity
        self.name = name
        self.nin = nin
        self.impl = impl
        self.dtype_rule = dtype_rule
        self.grad = grad
        self.symbol = symbol
        self.precedence = precedence
        self.commutative = commutative
        self.associative = associative

    def __eq__(self, other):
        return self is other or (isinstance(other, ScalarOp)
                                 and self.identity == other.identity)

    def __hash__(self):
        return hash(self.identity)

    def __repr__(self):
        return self.name

    def __reduce__(self):
        """Built-in ops pickle as a lookup by name; other ops pickle their fields, so their
        callables must be module-level functions or picklable objects (not lambdas or
        closures). See scalar_ops.reduce_scalar_op."""
        from theanine.tensor.scalar_ops import reduce_scalar_op

        return reduce_scalar_op(self)

    def __copy__(self):
        # copy.copy makes a new op field by field, as it did before __reduce__ existed
        new = object.__new__(type(self))
        for field in ScalarOp.__slots__:
            setattr(new, field, getattr(self, field))
        return new


def broadcast_static_shapes(shapes: Sequence[tuple], names: Sequence[str]) -> tuple:
    """NumPy broadcasting on static shapes (None = unknown); raises on a definite mismatch."""
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(ndim):
        dims = [s[axis] for s in padded]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            desc = ", ".join(f"{n} with shape {format_shape(s)}" for n, s in zip(names, shapes))
            raise graph_error(f"Shapes cannot be broadcast together on axis {axis}: {desc}")
        if known:
            out.append(known.pop())
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(None)
    return tuple(out)


class Elemwise(Op):
    """Apply a ScalarOp to every element of broadcast inputs."""

    __props__ = ("scalar_op",)

    def __init__(self, scalar_op: ScalarOp):
        self.scalar_op = scalar_op

    def __str__(self):
        return self.scalar_op.name

    def make_node(self, *inputs) -> Apply:
        from theanine.tensor.basic import as_tensor_variable

        sop = self.scalar_op
        if len(inputs) != sop.nin:
            raise graph_error(f"{sop.name} takes {sop.nin} inputs, got {len(inputs)}")
        inputs = [as_tensor_variable(x) for x in inputs]
        # checked on the user's variables (names and shapes), before rank padding
        shape = broadcast_static_shapes([x.type.shape for x in inputs], [str(x) for x in inputs])
        ndim = len(shape)
        inputs = [x if x.ndim == ndim else
                  dimshuffle(x, ("x",) * (ndim - x.ndim) + tuple(range(x.ndim)))
                  for x in inputs]
        try:
            dtype = sop.dtype_rule(*[x.dtype for x in inputs])
        except TypeError as e:
            kinds = ", ".join(f"{x} ({x.dtype})" for x in inputs)
            raise graph_error(f"{sop.name} does not support inputs {kinds}: {e}") from None
        return Apply(self, inputs, [TensorType(dtype, shape)()])

    def perform(self, node, inputs):
        # the same computation as the executor's (py_fn), so constant folding and DebugMode
        # agree with run time to the last bit
        out = self.py_fn(node)(*inputs)
        return (np.asarray(out, dtype=node.outputs[0].type.numpy_dtype),)

    def py_fn(self, node):
        """The scalar op's ufunc computing directly in the output dtype (NumPy's own loop may
        be narrower: exp(int8) is float16 in NumPy, float32 here)."""
        impl = self.scalar_op.impl
        dtype = node.outputs[0].type.numpy_dtype
        if isinstance(impl, np.ufunc) and impl.nout == 1:
            try:
                natural = impl.resolve_dtypes(tuple(i.type.numpy_dtype for i in node.inputs)
                                              + (None,))[-1]
            except (TypeError, np.exceptions.DTypePromotionError):
                natural = None
            if natural == dtype:
                return impl
            return lambda *args: impl(*args, dtype=dtype)
        return lambda *args: np.asarray(impl(*args), dtype=dtype)

    def pullback(self, node, inputs, outputs, output_grads):
        sop = self.scalar_op
        if sop.grad is None:
            raise NotImplementedError(f"{sop.name} has no gradient")
        grads = sop.grad(inputs, outputs[0], output_grads[0])
        result = []
        for k, (x, g) in enumerate(zip(inputs, grads)):
            if g is None or x.dtype in DISCRETE_DTYPES:
                result.append(None)
            elif _never_broadcast(x, [v for j, v in enumerate(inputs) if j != k]):
                result.append(_as_dtype(g, x.dtype))
            else:
                result.append(reduce_to_shape_of(g, x))
        return result

    def infer_shape(self, node, input_shapes):
        """Per axis, the first candidate length that is not 1 (NumPy broadcasting; lengths 1
        and 0 give 0). Incompatible lengths are not detected here: the op itself raises."""
        from theanine.tensor.math import eq, switch

        out_shape = []
        static = node.outputs[0].type.shape
        for axis in range(node.outputs[0].ndim):
            if static[axis] is not None:
                out_shape.append(static[axis])
                continue
            cands = [s[axis] for x, s in zip(node.inputs, input_shapes)
                     if x.type.shape[axis] != 1]
            dim = cands[0]
            for c in cands[1:]:
                dim = switch(eq(dim, 1), c, dim)
            out_shape.append(dim)
        return [tuple(out_shape)]


def _never_broadcast(x, others) -> bool:
    """True if static shapes prove `x` has the full broadcast shape: on every axis its length
    is known not to be 1, or every other input's length is known to be 1."""
    return all(s is not None and s != 1 or all(o.type.shape[a] == 1 for o in others)
               for a, s in enumerate(x.type.shape))


def _as_dtype(g, dtype: str):
    from theanine.tensor.math import cast

    return cast(g, dtype) if g.dtype != dtype else g


def reduce_to_shape_of(g, x):
    """Sum gradient `g` (broadcast output shape) down to the shape of input `x`."""
    from theanine.tensor.basic import as_tensor_variable

    g = as_tensor_variable(g)
    if g.dtype != x.dtype and x.dtype not in DISCRETE_DTYPES:
        from theanine.tensor.math import cast

        g = cast(g, x.dtype)
    gs, xs = g.type.shape, x.type.shape
    if len(gs) == len(xs) and all(a is not None and a == b for a, b in zip(gs, xs)):
        return g
    return SumToShapeOf()(g, x)


class SumToShapeOf(Op):
    """sum_to_shape_of(g, x): sum g over the axes along which x was broadcast to reach g's shape.

    Emitted by elementwise gradients when static shapes cannot prove whether broadcasting
    happened; a no-op at run time when the shapes already agree (so it may return g itself).
    With `from_shape`, x is the target shape itself (an int64 vector): a loop's gradient uses it
    to avoid recomputing a forward value only to read its shape.
    """

    __props__ = ("from_shape",)
    view_of = {0: 0}

    def __init__(self, from_shape: bool = False):
        self.from_shape = bool(from_shape)

    def make_node(self, g, x):
        if self.from_shape:
            if x.ndim != 1 or x.dtype != "int64" or x.type.shape[0] is None:
                raise graph_error(f"sum_to_shape_of: the target shape {x} must be an int64 "
                                  f"vector of static length, got {x.type}")
            shape = (None,) * x.type.shape[0]
        else:
            shape = x.type.shape
        if g.ndim < len(shape):
            raise graph_error(f"sum_to_shape_of: {g} has fewer dims than {x}")
        return Apply(self, [g, x], [TensorType(g.dtype, shape)()])

    def target(self, x) -> tuple:
        """The shape to sum down to, from the second input's value."""
        return tuple(int(s) for s in x) if self.from_shape else np.shape(x)

    def perform(self, node, inputs):
        return (sum_to_shape(inputs[0], self.target(inputs[1])),)

    def py_fn(self, node):
        target = self.target
        return lambda g, x: sum_to_shape(g, target(x))

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.math import second

        return [second(inputs[0], output_grads[0]), None]

    def infer_shape(self, node, input_shapes):
        if self.from_shape:
            return [tuple(node.inputs[1][i] for i in range(node.inputs[1].type.shape[0]))]
        return [input_shapes[1]]


def sum_to_shape(g, shape: tuple) -> np.ndarray:
    """Sum array g down to `shape` (the inverse of NumPy broadcasting)."""
    g = np.asarray(g)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    out = g.sum(axis=axes, keepdims=True) if axes else g
    return out.reshape(shape)


class DimShuffle(Op):
    """Reorder axes, insert broadcastable axes ('x') and drop length-1 axes.

    `new_order` lists input axes (or 'x') in output order; input axes left out are dropped and
    must have static length 1.
    """

    __props__ = ("input_ndim", "new_order")
    view_of = {0: 0}

    def __init__(self, input_ndim: int, new_order: Sequence):
        self.input_ndim = input_ndim
        self.new_order = tuple(new_order)
        kept = [d for d in self.new_order if d != "x"]
        self.drop = tuple(i for i in range(input_ndim) if i not in kept)
        remaining = [i for i in range(input_ndim) if i not in self.drop]
        self.perm = tuple(remaining.index(d) for d in kept)
        self.expand = tuple(i for i, d in enumerate(self.new_order) if d == "x")

    def __str__(self):
        if self.new_order == tuple(reversed(range(self.input_ndim))) and self.input_ndim == 2:
            return "Transpose"
        return f"DimShuffle{{{','.join(map(str, self.new_order))}}}"

    def make_node(self, x):
        if x.ndim != self.input_ndim:
            raise graph_error(f"dimshuffle{self.new_order} expects a {self.input_ndim}-d input, "
                              f"got {x} with {x.ndim} dims")
        for d in self.drop:
            if x.type.shape[d] not in (1, None):
                raise graph_error(
                    f"dimshuffle{self.new_order} drops axis {d} of {x}, which has length "
                    f"{x.type.shape[d]} (static shape {format_shape(x.type.shape)}), not 1"
                )
        shape = tuple(1 if d == "x" else x.type.shape[d] for d in self.new_order)
        return Apply(self, [x], [TensorType(x.dtype, shape)()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(inputs[0]),)

    def py_fn(self, node):
        # Basic indexing does the drop (index 0) and the expand (None) without copies.
        drop_idx = tuple(0 if i in self.drop else slice(None) for i in range(self.input_ndim))
        in_shape = node.inputs[0].type.shape
        if any(in_shape[d] is None for d in self.drop):
            # a dropped axis of unknown length: squeeze checks at run time that it is 1
            drop, drop_idx = self.drop, None
        perm = None if self.perm == tuple(range(len(self.perm))) else self.perm
        expand_idx = tuple(None if d == "x" else slice(None) for d in self.new_order)
        if not self.drop and perm is None:
            return lambda x: np.asarray(x)[expand_idx]
        if not self.drop and not self.expand:
            return lambda x: np.asarray(x).transpose(perm)

        def shuffle(x):
            x = np.asarray(x)
            x = x[drop_idx] if drop_idx is not None else np.squeeze(x, axis=drop)
            if perm is not None:
                x = x.transpose(perm)
            return x[expand_idx]

        return shuffle

    def pullback(self, node, inputs, outputs, output_grads):
        gz = output_grads[0]
        # drop the inserted axes, undo the permutation, re-insert dropped axes
        kept_out = [i for i, d in enumerate(self.new_order) if d != "x"]
        kept_in = [self.new_order[i] for i in kept_out]
        squeezed = dimshuffle(gz, kept_out)
        order = ["x" if axis in self.drop else kept_in.index(axis)
                 for axis in range(self.input_ndim)]
        return [dimshuffle(squeezed, order)]

    def infer_shape(self, node, input_shapes):
        (shp,) = input_shapes
        return [tuple(1 if d == "x" else shp[d] for d in self.new_order)]


def dimshuffle(x, pattern: Sequence):
    """x.dimshuffle(pattern): see DimShuffle."""
    from theanine.tensor.basic import as_tensor_variable

    x = as_tensor_variable(x)
    pattern = tuple(pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    for d in pattern:
        if d != "x" and not (isinstance(d, (int, np.integer)) and 0 <= d < x.ndim):
            raise graph_error(f"dimshuffle pattern {pattern} has invalid entry {d!r} for {x} "
                              f"with {x.ndim} dims")
    kept = [d for d in pattern if d != "x"]
    if len(set(kept)) != len(kept):
        raise graph_error(f"dimshuffle pattern {pattern} repeats an axis")
    return DimShuffle(x.ndim, [d if d == "x" else int(d) for d in pattern])(x)
