"""Conformance cases for shape queries and shape-changing ops, joining and splitting, filling
(alloc, zeros, arange) and indexing (basic, advanced, set/inc_subtensor)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from theanine.testing.cases import Arg, Case, free, register, sized
from theanine.testing.elemwise_cases import RS
from theanine.testing.strategies import Domain, lengths

MOVE = ("bool", "int16", "float32", "float64")
NUMERIC_MOVE = ("int8", "int16", "float32", "float64")
SHAPE_ONLY = ("bool", "float64")


def _T(name: str):
    import theanine.tensor as T

    return getattr(T, name)


def _typed(value, like):
    return _T("constant")(np.asarray(value, dtype=like.dtype))


# -- shapes --------------------------------------------------------------------------------------
register(Case("shape", lambda x: [_T("shape")(x), x.shape[1]], (free(3, name="x"),), SHAPE_ONLY,
              functions=("shape",), grad=False))
register(Case("shape_tuple", lambda x: list(_T("shape_tuple")(x)), (free(2, name="x"),),
              SHAPE_ONLY, functions=("shape_tuple",), grad=False))
register(Case("size", lambda x: _T("size")(x), (free(3, name="x"),), SHAPE_ONLY,
              functions=("size",), grad=False))


def _reshape(x):
    r = _T("reshape")
    return [r(x, (-1,)), r(x, (x.shape[1], x.shape[0])), r(x, (1, -1)),
            x.reshape((x.shape[0], x.shape[1], 1))]


register(Case("reshape", _reshape, (free(2, domain=RS, name="x"),), MOVE,
              functions=("reshape",)))
register(Case("flatten", lambda x: [_T("flatten")(x), _T("flatten")(x, 2), _T("flatten")(x, 3)],
              (free(3, domain=RS, name="x"),), MOVE, functions=("flatten",)))
register(Case("transpose", lambda x: [_T("transpose")(x), _T("transpose")(x, (1, 0, 2)), x.T],
              (free(3, domain=RS, name="x"),), MOVE, functions=("transpose",)))
register(Case("squeeze",
              lambda x, y: [_T("squeeze")(x), _T("squeeze")(x, 1), _T("squeeze")(y, 0)],
              (Arg((None, 1, None), domain=RS, name="x"), free(2, domain=RS, name="y")), MOVE,
              functions=("squeeze",), shapes=sized(2, lambda a, c: [(a, 1, c), (1, c)])))
register(Case("expand_dims",
              lambda x: [_T("expand_dims")(x, 0), _T("expand_dims")(x, (1, 3)),
                         _T("expand_dims")(x, -1)],
              (free(2, domain=RS, name="x"),), MOVE, functions=("expand_dims",)))
register(Case("specify_shape",
              lambda x, y: [_T("specify_shape")(x, (y.shape[0], None)) * 2],
              (free(2, domain=RS, name="x"), free(1, domain=RS, name="y")), NUMERIC_MOVE,
              functions=("specify_shape",), shapes=sized(2, lambda a, b: [(a, b), (a,)])))


# -- joining and splitting -----------------------------------------------------------------------
def _concatenate(x, y, z):
    c = _T("concatenate")
    return [c([x, y]), c([x, z], axis=1), c([x, y, x], axis=-2)]


register(Case("concatenate", _concatenate,
              (free(2, domain=RS, name="x"), free(2, domain=RS, name="y"),
               free(2, domain=RS, name="z")), MOVE, functions=("concatenate",),
              shapes=sized(4, lambda a, b, c, d: [(a, b), (c, b), (a, d)])))


def _stack(x, y, s, t):
    stack = _T("stack")
    return [stack([x, y]), stack([x, y], axis=2), stack([s, t]), stack([s, t, s], axis=-1),
            stack((x, y), -1), _T("stacklists")([[x, y], [y, x]]), _T("join")(1, x, y, x)]


register(Case("stack", _stack,
              (free(2, domain=RS, name="x"), free(2, domain=RS, name="y"),
               free(0, domain=RS, name="s"), free(0, domain=RS, name="t")), MOVE,
              functions=("stack", "stacklists", "join"),
              shapes=sized(2, lambda a, b: [(a, b), (a, b), (), ()])))


def _split(x):
    split, half = _T("split"), x.shape[0] // 2
    return [*split(x, [half, x.shape[0] - half], 2, axis=0),
            *split(x, [x.shape[1], 0], 2, axis=1)]


register(Case("split", _split, (free(2, domain=RS, name="x"),), MOVE, functions=("split",)))


# -- filling -------------------------------------------------------------------------------------
# a value v (length b, or 1), the frame x (a, b) it fills, and a 0-d value
_value_and_frame = sized(3, lambda a, b, one: [(b if one % 2 else 1,), (a, b), ()])


def _alloc(v, x, s):
    alloc = _T("alloc")
    return [alloc(v, x.shape[0], x.shape[1]), alloc(s, 2, 3), alloc(s, x.shape[1])]


register(Case("alloc", _alloc,
              (free(1, domain=RS, name="v"), free(2, domain=RS, name="x"),
               free(0, domain=RS, name="s")), MOVE, functions=("alloc",), shapes=_value_and_frame))


def _broadcast_to(v, x, s):
    b = _T("broadcast_to")
    return [b(v, x.shape), b(s, (2, x.shape[0]))]


register(Case("broadcast_to", _broadcast_to,
              (free(1, domain=RS, name="v"), free(2, domain=RS, name="x"),
               free(0, domain=RS, name="s")), MOVE, functions=("broadcast_to",),
              shapes=_value_and_frame))


def _filled(name: str) -> Case:
    fn = _T(name)
    return Case(name, lambda x: [fn(x.shape, dtype=x.dtype), fn((2, x.shape[0]), x.dtype)],
                (free(2, name="x"),), MOVE, functions=(name,), grad=False)


register(_filled("zeros"))
register(_filled("ones"))


def _arange(start, stop, step):
    arange = _T("arange")
    return [arange(start, stop, step), arange(stop), arange(stop, start, -step)]


register(Case("arange", _arange,
              (free(0, domain=Domain(-5, 5), name="start"),
               free(0, domain=Domain(-5, 5), name="stop"),
               free(0, domain=Domain(0.5, 3), name="step")),
              ("int32", "int64", "float32", "float64"), functions=("arange",)))


# -- indexing ------------------------------------------------------------------------------------
def _basic_index(x):
    return [x[0], x[:, 1:3], x[::-1, :, ::2], x[None, ..., -1], x[x.shape[0] - 1],
            x[1:x.shape[1], ::-1], x[:, x.shape[1] // 2]]


register(Case("getitem[basic]", _basic_index, (free(3, domain=RS, name="x"),), MOVE,
              functions=("getitem",), min_side=1, label="getitem (basic)"))


def _in_range(shapes):
    n = shapes[0][0]
    return Domain(-n, n - 1)


def _advanced_index(x, i):
    return [x[[0, -1, 0]], x[:, [-1, 0]], x[x > 0], x[[0, -1], :, [0, 0]], x[i], x[i, 0]]


register(Case("getitem[advanced]", _advanced_index,
              (free(3, domain=RS, name="x"), Arg((None,), "int64", _in_range, "i")), MOVE,
              functions=("getitem",), label="getitem (advanced)",
              shapes=lambda: st.tuples(lengths(3, 1), lengths(1, 0, 5)).map(list)))


def _set_or_inc(fn_name: str):
    fn = _T(fn_name)

    def build(x, y, i):
        return [fn(x[1:], y), fn(x[:, 0], y), fn(x[[0, -1, 0]], y), fn(x[i], y),
                fn(x[x > 0], _typed(1, x))]

    return build


for _name, _dtypes in (("set_subtensor", MOVE), ("inc_subtensor", NUMERIC_MOVE)):
    register(Case(_name, _set_or_inc(_name),
                  (free(3, domain=RS, name="x"), free(1, domain=RS, name="y"),
                   Arg((None,), "int64", _in_range, "i")), _dtypes, functions=(_name,),
                  shapes=lambda: st.tuples(lengths(3, 1), st.booleans(), lengths(1, 0, 5)).map(
                      lambda d: [d[0], (d[0][2] if d[1] else 1,), d[2]])))

__all__ = ["MOVE", "NUMERIC_MOVE", "SHAPE_ONLY"]
