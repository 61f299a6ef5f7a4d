"""Indexing tensors as NumPy does: basic indexing (`Subtensor`, a view), integer-array and
boolean-mask indexing (`AdvancedSubtensor`, a copy), and `set_subtensor` / `inc_subtensor`
(`IncSubtensor`, `AdvancedIncSubtensor`: copy x, then assign or add).

An index is kept in `idx_list` (part of `__props__`, so it is hashable): an int, None (newaxis),
"..." (an ellipsis; advanced indexing only), a (start, stop, step) tuple for a slice, and "?"
wherever the value is the next node input (after x, and after y for the increment ops).
"""

from __future__ import annotations

import operator

import numpy as np

from theanine.graph.basic import Apply, GraphError, Op, graph_error
from theanine.tensor.basic import as_tensor_variable, constant, weak_constant
from theanine.tensor.elemwise import broadcast_static_shapes, reduce_to_shape_of
from theanine.tensor.shape_ops import Shape, const_int, entry_op, entry_variable, shape_tuple
from theanine.tensor.type import DISCRETE_DTYPES, INT_DTYPES, TensorType, format_shape
from theanine.tensor.variable import TensorConstant, TensorVariable

SYM, ELLIPSIS = "?", "..."
_FULL = (None, None, None)


# -- parsing a Python index ----------------------------------------------------------------------
def _slice_part(c, x):
    if c is None:
        return None
    if isinstance(c, TensorVariable) and c.ndim == 0 and c.dtype in INT_DTYPES:
        known = const_int(c)
        return c if known is None else known
    if isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)):
        return int(c)
    raise graph_error(f"Cannot index {x}: slice bounds must be integers, integer scalars or "
                      f"None, got {type(c).__name__} {c!r}")


def _parse(e, x) -> tuple:
    """One index item as (kind, value): kind is new, ell, slice, int, scalar, array or mask."""
    if e is None:
        return ("new", None)
    if e is Ellipsis:
        return ("ell", None)
    if isinstance(e, slice):
        return ("slice", tuple(_slice_part(c, x) for c in (e.start, e.stop, e.step)))
    if isinstance(e, (bool, np.bool_)):
        return ("mask", constant(np.bool_(e)))
    if isinstance(e, (int, np.integer)):
        return ("int", int(e))
    if isinstance(e, (list, tuple)) and any(isinstance(t, TensorVariable) for t in e):
        e = as_tensor_variable(e)
    elif isinstance(e, (list, tuple, np.ndarray)):
        arr = np.asarray(e)
        if arr.size == 0 and not isinstance(e, np.ndarray):
            arr = arr.astype(np.int64)  # NumPy reads an empty list as an integer index
        e = constant(arr)
    if isinstance(e, TensorVariable):
        if e.dtype == "bool":
            return ("mask", e)
        if e.dtype not in INT_DTYPES:
            raise graph_error(f"Cannot index {x} with {e} of dtype {e.dtype}: indices must be "
                              "integers or booleans")
        if e.ndim == 0:
            known = const_int(e)
            return ("scalar", e) if known is None else ("int", known)
        return ("array", e)
    raise graph_error(f"Cannot index {x} with {type(e).__name__} {e!r}: use ints, slices, None, "
                      "..., integer or boolean arrays, or integer/boolean tensors")


def _ndims(kind: str, v) -> int:
    if kind == "mask":
        return v.ndim
    return 0 if kind in ("new", "ell") else 1


def getitem(x, index) -> TensorVariable:
    """x[index] with NumPy's rules (what TensorVariable.__getitem__ calls)."""
    x = as_tensor_variable(x)
    items = index if isinstance(index, tuple) else (index,)
    if x.owner is not None and isinstance(x.owner.op, Shape) and len(items) == 1 \
            and isinstance(items[0], (int, np.integer)) and not isinstance(items[0], bool):
        inner = x.owner.inputs[0]
        if not -inner.ndim <= items[0] < inner.ndim:
            raise graph_error(f"index {items[0]} is out of bounds for the shape of {inner}, "
                              f"which has {inner.ndim} entries")
        return entry_variable(shape_tuple(inner)[int(items[0]) % inner.ndim])
    parsed = [_parse(e, x) for e in items]
    kinds = [k for k, _ in parsed]
    if kinds.count("ell") > 1:
        raise graph_error(f"Cannot index {x}: an index can only have a single ellipsis ('...')")
    consumed = sum(_ndims(k, v) for k, v in parsed)
    if consumed > x.ndim:
        raise graph_error(f"too many indices for {x}: it has {x.ndim} dims ({x.type}) but "
                          f"{consumed} were indexed")
    advanced = "array" in kinds or "mask" in kinds
    idx_list, inputs = [], []
    for kind, v in parsed:
        if kind == "ell":
            idx_list.extend([ELLIPSIS] if advanced else [_FULL] * (x.ndim - consumed))
        elif kind == "slice":
            idx_list.append(tuple(SYM if isinstance(c, TensorVariable) else c for c in v))
            inputs.extend(c for c in v if isinstance(c, TensorVariable))
        elif kind in ("new", "int"):
            idx_list.append(v)
        else:
            idx_list.append(SYM)
            inputs.append(v)
    op = AdvancedSubtensor(idx_list) if advanced else Subtensor(idx_list)
    return op(x, *inputs)


# -- output shapes -------------------------------------------------------------------------------
def _resolve(idx_list: tuple, index_inputs, x_ndim: int, advanced: bool) -> list[tuple]:
    """(kind, value, axis, position) per index item, the ellipsis expanded into full slices and
    the axes left over appended as full slices."""
    it = iter(index_inputs)
    items = []
    for pos, e in enumerate(idx_list):
        if e is None:
            items.append(("new", None, pos))
        elif isinstance(e, tuple):
            items.append(("slice", tuple(next(it) if c == SYM else c for c in e), pos))
        elif e == ELLIPSIS:
            items.append(("ell", None, pos))
        elif e == SYM:
            v = next(it)
            kind = "mask" if v.dtype == "bool" else "array" if advanced else "scalar"
            items.append((kind, v, pos))
        else:
            items.append(("int", e, pos))
    free = x_ndim - sum(_ndims(k, v) for k, v, _ in items)
    out, axis = [], 0
    for kind, v, pos in items:
        if kind == "ell":
            out.extend(("slice", _FULL, axis + k, pos) for k in range(free))
            axis += free
        else:
            out.append((kind, v, None if kind == "new" else axis, pos))
            axis += _ndims(kind, v)
    out.extend(("slice", _FULL, a, len(idx_list)) for a in range(axis, x_ndim))
    return out


def _layout(resolved, dims, slice_len, adv_shape, broadcast) -> tuple:
    """NumPy's output layout: sliced and new axes in order, with the broadcast shape of the
    advanced indices in place of them when they are adjacent, else in front."""
    has_adv = any(k in ("array", "mask") for k, _, _, _ in resolved)
    before, after, adv, positions = [], [], [], []
    for kind, v, axis, pos in resolved:
        if kind == "new":
            piece = [1]
        elif kind == "slice":
            piece = [slice_len(dims[axis], v)]
        elif kind == "scalar" or (kind == "int" and not has_adv):
            piece = []
        else:
            adv.append(adv_shape(kind, v, axis))
            positions.append(pos)
            continue
        (after if adv else before).extend(piece)
    if not adv:
        return tuple(before)
    bshape = list(broadcast(adv))
    if positions == list(range(positions[0], positions[0] + len(positions))):
        return tuple(before + bshape + after)
    return tuple(bshape + before + after)


def _static_slice_len(n, comps):
    start, stop, step = comps
    if isinstance(step, int) and step == 0:
        raise graph_error("slice step cannot be zero")
    if n is not None and not any(isinstance(c, TensorVariable) for c in comps):
        return len(range(*slice(start, stop, step).indices(n)))
    if start is None and stop is None and step in (None, 1, -1):
        return n
    return None


def _static_shape(x, idx_list, index_inputs, advanced: bool) -> tuple:
    xs = x.type.shape
    resolved = _resolve(idx_list, index_inputs, x.ndim, advanced)

    def adv_shape(kind, v, axis):
        if kind == "mask":
            for k, m in enumerate(v.type.shape):
                if m is not None and xs[axis + k] is not None and m != xs[axis + k]:
                    raise graph_error(
                        f"boolean index {v} of shape {format_shape(v.type.shape)} does not match "
                        f"{x} of shape {format_shape(xs)} on axis {axis + k}")
            return (int(v.data.sum()) if isinstance(v, TensorConstant) else None,)
        data = np.asarray(v) if kind == "int" else \
            v.data if isinstance(v, TensorConstant) else None
        n = xs[axis]
        if data is not None and n is not None and data.size and \
                (data.max() >= n or data.min() < -n):
            bad = data.max() if data.max() >= n else data.min()
            raise graph_error(f"index {bad} is out of bounds for axis {axis} of {x} with size "
                              f"{n} (static shape {format_shape(xs)})")
        return () if kind == "int" else v.type.shape

    def broadcast(shapes):
        try:
            return broadcast_static_shapes(shapes, [f"index {i}" for i in range(len(shapes))])
        except GraphError:
            raise graph_error(f"Cannot index {x}: the integer/boolean indices have shapes "
                              f"{', '.join(map(format_shape, shapes))}, which do not broadcast "
                              "together") from None

    for kind, v, axis, _ in resolved:  # bounds of plain ints in basic indexing
        if kind == "int" and not advanced:
            adv_shape(kind, v, axis)
    return _layout(resolved, xs, _static_slice_len, adv_shape, broadcast)


def _as_entry(v):
    return v if v is None or isinstance(v, int) else entry_variable(v)


def _bound(v, n, default, lo, hi):
    """A slice bound normalised as Python does for a slice of length n, clipped to [lo, hi]."""
    from theanine.tensor.math import lt, switch

    if v is None:
        return default
    if isinstance(v, int):
        v = entry_op("add", v, n) if v < 0 else v
    else:
        v = switch(lt(v, 0), v + n, v)
    return entry_op("minimum", entry_op("maximum", v, lo), hi)


def _slice_len_sym(n, comps):
    """The length of x[start:stop:step] along an axis of length n, as a shape entry."""
    start, stop, step = (_as_entry(c) for c in comps)
    step = 1 if step is None else step
    if isinstance(n, int) and all(c is None or isinstance(c, int) for c in (start, stop, step)):
        return len(range(*slice(start, stop, step).indices(n)))
    last = entry_op("sub", n, 1)

    def forward():
        s, e = _bound(start, n, 0, 0, n), _bound(stop, n, n, 0, n)
        span = entry_op("maximum", entry_op("sub", e, s), 0)
        return entry_op("int_div", entry_op("add", span, entry_op("sub", step, 1)), step)

    def backward():
        s, e = _bound(start, n, last, -1, last), _bound(stop, n, -1, -1, last)
        span = entry_op("maximum", entry_op("sub", s, e), 0)
        neg = entry_op("mul", step, -1)
        return entry_op("int_div", entry_op("add", span, entry_op("sub", neg, 1)), neg)

    if isinstance(step, int):
        return forward() if step > 0 else backward()
    from theanine.tensor.math import gt, switch

    return switch(gt(step, 0), forward(), backward())


def _broadcast_sym(shapes):
    nd = max(len(s) for s in shapes)
    padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(nd):
        dims = [s[axis] for s in padded if not (isinstance(s[axis], int) and s[axis] == 1)]
        dim = dims[0] if dims else 1
        for d in dims[1:]:
            dim = entry_op("maximum", dim, d)
        out.append(dim)
    return out


def _infer_shape(node, input_shapes, advanced: bool) -> tuple:
    x, index_inputs = node.inputs[0], node.inputs[1:]
    shapes = dict(zip(map(id, node.inputs), input_shapes, strict=True))

    def adv_shape(kind, v, axis):
        if kind == "int":
            return ()
        if kind == "array":
            return tuple(shapes[id(v)])
        if isinstance(v, TensorConstant):
            return (int(v.data.sum()),)
        from theanine.tensor.math import cast
        from theanine.tensor.reduction import sum as sum_

        return (sum_(cast(v, "int64")),)

    resolved = _resolve(node.op.idx_list, index_inputs, x.ndim, advanced)
    out = _layout(resolved, input_shapes[0], _slice_len_sym, adv_shape, _broadcast_sym)
    static = node.outputs[0].type.shape
    return tuple(s if s is not None else e for s, e in zip(static, out, strict=True))


# -- run time ------------------------------------------------------------------------------------
def _make_index(idx_list: tuple, args, basic: bool) -> tuple:
    it = iter(args)
    out = []
    for e in idx_list:
        if isinstance(e, tuple):
            out.append(slice(*(operator.index(next(it)) if c == SYM else c for c in e)))
        elif e == SYM:
            out.append(operator.index(next(it)) if basic else next(it))
        else:
            out.append(Ellipsis if e == ELLIPSIS else e)
    return tuple(out)


def _index_fn(idx_list: tuple, basic: bool):
    """args -> NumPy index tuple; the tuple is built once when nothing in it is symbolic."""
    if any(e == SYM or (isinstance(e, tuple) and SYM in e) for e in idx_list):
        return lambda args: _make_index(idx_list, args, basic)
    fixed = _make_index(idx_list, (), basic)
    return lambda args: fixed


def _fmt_index(idx_list: tuple) -> str:
    def one(e):
        if isinstance(e, tuple):
            text = ":".join("" if c is None else str(c) for c in e)
            return text[:-1] if text.endswith(":") else text
        return "newaxis" if e is None else str(e)

    return "[" + ", ".join(one(e) for e in idx_list) + "]"


class Subtensor(Op):
    """x[idx] for basic indices (ints, slices, newaxis): a view of x."""

    __props__ = ("idx_list",)
    view_of = {0: 0}
    advanced = False

    def __init__(self, idx_list):
        self.idx_list = tuple(idx_list)

    def __str__(self):
        return f"{type(self).__name__}{_fmt_index(self.idx_list)}"

    def make_node(self, x, *index_inputs):
        x = as_tensor_variable(x)
        index_inputs = [as_tensor_variable(v) for v in index_inputs]
        allowed = INT_DTYPES + ("bool",) if self.advanced else INT_DTYPES
        for v in index_inputs:
            if v.dtype not in allowed or (v.ndim and not self.advanced):
                raise graph_error(f"Cannot index {x} with {v} of type {v.type}: indices must be "
                                  "integer scalars" + (" or integer/boolean arrays"
                                                       if self.advanced else ""))
        if self.advanced and not any(v.ndim or v.dtype == "bool" for v in index_inputs):
            # NumPy indexes with ints and slices alone as basic indexing: a view, not the copy
            # that view_of = {} promises
            raise graph_error(f"{self} of {x} needs an integer-array or boolean index input; "
                              "for ints and slices only use Subtensor")
        shape = _static_shape(x, self.idx_list, index_inputs, self.advanced)
        return Apply(self, [x, *index_inputs], [TensorType(x.dtype, shape)()])

    def perform(self, node, inputs):
        return (np.asarray(self.py_fn(node)(*inputs)),)

    def py_fn(self, node):
        index = _index_fn(self.idx_list, not self.advanced)
        label = f"{self} of {node.inputs[0]}"

        def subtensor(x, *args):
            try:
                return x[index(args)]
            except IndexError as e:
                raise IndexError(f"{label} (shape {np.shape(x)}): {e}") from None

        return subtensor

    def pullback(self, node, inputs, outputs, output_grads):
        x, index_inputs = inputs[0], inputs[1:]
        gx = None
        if x.dtype not in DISCRETE_DTYPES:
            from theanine.tensor.math import zeros_like

            inc = AdvancedIncSubtensor if self.advanced else IncSubtensor
            gx = inc(self.idx_list, False)(zeros_like(x), output_grads[0], *index_inputs)
        return [gx] + [None] * len(index_inputs)

    def infer_shape(self, node, input_shapes):
        return [_infer_shape(node, input_shapes, self.advanced)]


class AdvancedSubtensor(Subtensor):
    """x[idx] where idx has integer arrays or boolean masks (NumPy advanced indexing): a copy.
    The length taken by a boolean mask is unknown statically unless the mask is a constant."""

    view_of = {}
    advanced = True


class IncSubtensor(Op):
    """x with x[idx] set to y (`set_instead_of_inc`) or incremented by y; x itself is copied,
    never modified. y broadcasts to x[idx]'s shape and is cast to x's dtype (same kind only)."""

    __props__ = ("idx_list", "set_instead_of_inc")
    forward = Subtensor

    def __init__(self, idx_list, set_instead_of_inc: bool):
        self.idx_list = tuple(idx_list)
        self.set_instead_of_inc = bool(set_instead_of_inc)

    def __str__(self):
        kind = "Set" if self.set_instead_of_inc else "Inc"
        return f"{type(self).__name__.replace('Inc', kind)}{_fmt_index(self.idx_list)}"

    def make_node(self, x, y, *index_inputs):
        x, y = as_tensor_variable(x), as_tensor_variable(y)
        sub = self.forward(self.idx_list).make_node(x, *index_inputs)
        what = "set_subtensor" if self.set_instead_of_inc else "inc_subtensor"
        target = sub.outputs[0].type.shape
        if not np.can_cast(y.type.numpy_dtype, x.type.numpy_dtype, "same_kind"):
            raise graph_error(f"{what}: cannot store {y} of dtype {y.dtype} into {x} of dtype "
                              f"{x.dtype}; cast it first")
        bad = y.ndim > len(target) or any(
            t is not None and s is not None and s not in (1, t)
            for t, s in zip(target[len(target) - y.ndim:], y.type.shape, strict=True))
        if bad:
            raise graph_error(f"{what}: {y} of static shape {format_shape(y.type.shape)} cannot "
                              f"be broadcast to the indexed part of {x}, of shape "
                              f"{format_shape(target)}")
        return Apply(self, [x, y, *sub.inputs[1:]], [TensorType(x.dtype, x.type.shape)()])

    def perform(self, node, inputs):
        return (self.py_fn(node)(*inputs),)

    def py_fn(self, node):
        index = _index_fn(self.idx_list, not self.forward.advanced)
        set_ = self.set_instead_of_inc
        add_at = not set_ and self._may_repeat(node.inputs[2:])
        label = f"{self} of {node.inputs[0]}"

        def inc(x, y, *args):
            out = np.array(x)
            idx = index(args)
            try:
                if set_:
                    out[idx] = y
                elif add_at:
                    np.add.at(out, idx, y)
                else:
                    out[idx] += y
            except (IndexError, ValueError) as e:
                raise type(e)(f"{label} (x shape {out.shape}, y shape {np.shape(y)}): "
                              f"{e}") from None
            return out

        return inc

    def pullback(self, node, inputs, outputs, output_grads):
        x, y, index_inputs = inputs[0], inputs[1], inputs[2:]
        gz = output_grads[0]
        gx = gy = None
        if x.dtype not in DISCRETE_DTYPES:
            gx = gz
            if self.set_instead_of_inc:
                zero = constant(np.zeros((), dtype=gz.dtype))
                gx = type(self)(self.idx_list, True)(gz, zero, *index_inputs)
        if y.dtype not in DISCRETE_DTYPES:
            gy = self.forward(self.idx_list)(gz, *index_inputs)
            if self.set_instead_of_inc and self._may_repeat(index_inputs):
                from theanine.tensor.math import switch

                gy = switch(self._stored(gz, gy, index_inputs), gy, 0)
            gy = reduce_to_shape_of(gy, y)
        return [gx, gy] + [None] * len(index_inputs)

    def _may_repeat(self, index_inputs) -> bool:
        """True if the index may name an element twice (an integer array is involved)."""
        return self.forward.advanced and any(v.ndim and v.dtype != "bool" for v in index_inputs)

    def _stored(self, z, z_indexed, index_inputs):
        """Where a set with repeated indices kept the value (the last write wins), as a boolean
        tensor shaped like x[idx]: elements of y overwritten later get no gradient."""
        from theanine.tensor.allocation import alloc, arange
        from theanine.tensor.math import eq
        from theanine.tensor.shape_ops import reshape, size

        ids = reshape(arange(size(z_indexed)), shape_tuple(z_indexed))
        board = type(self)(self.idx_list, True)(alloc(np.int64(-1), *shape_tuple(z)), ids,
                                                *index_inputs)
        return eq(self.forward(self.idx_list)(board, *index_inputs), ids)

    def infer_shape(self, node, input_shapes):
        return [input_shapes[0]]


class AdvancedIncSubtensor(IncSubtensor):
    """set/inc through integer-array or boolean-mask indices. Increments add once per index
    occurrence (np.add.at), so repeated indices accumulate; a set keeps the last write."""

    forward = AdvancedSubtensor


def _inc(indexed, y, set_: bool) -> TensorVariable:
    what = "set_subtensor" if set_ else "inc_subtensor"
    node = getattr(indexed, "owner", None)
    if node is None or not isinstance(node.op, Subtensor):
        raise graph_error(f"{what}: the first argument must be the result of indexing, such as "
                          f"x[idx], got {indexed}")
    x, index_inputs = node.inputs[0], node.inputs[1:]
    y = weak_constant(y, x) if isinstance(y, (bool, int, float)) else as_tensor_variable(y)
    inc = AdvancedIncSubtensor if node.op.advanced else IncSubtensor
    return inc(node.op.idx_list, set_)(x, y, *index_inputs)


def set_subtensor(x_indexed, y) -> TensorVariable:
    """A copy of x with x[idx] = y, given x_indexed = x[idx] (Theano's set_subtensor)."""
    return _inc(x_indexed, y, True)


def inc_subtensor(x_indexed, y) -> TensorVariable:
    """A copy of x with x[idx] += y, given x_indexed = x[idx]; repeated integer indices add
    once per occurrence (Theano's inc_subtensor)."""
    return _inc(x_indexed, y, False)


__all__ = ["Subtensor", "AdvancedSubtensor", "IncSubtensor", "AdvancedIncSubtensor", "getitem",
           "set_subtensor", "inc_subtensor"]
