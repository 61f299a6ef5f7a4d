"""Hypothesis strategies for conformance tests: dtypes, mutually broadcastable shapes, arrays
with controlled value domains and memory layouts (strided, reversed, transposed, zero-stride),
and random expression graphs with their NumPy reference values (`expression_graphs`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

DEFAULT_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float32", "float64")
EXTENDED_DTYPES = ("float16", "complex64", "complex128")
FLOATS = ("float32", "float64")
INTS = ("int8", "int16", "int32", "int64", "uint8")
LAYOUTS = ("C", "F", "strided", "reversed", "broadcast")
SPECIAL_FLOATS = (math.nan, math.inf, -math.inf, -0.0)
LARGE = 2048  # arrays with more elements are filled by NumPy from a drawn seed
Shape = tuple[int, ...]


def dtypes(*, with_bool: bool = True, with_ints: bool = True, with_floats: bool = True,
           with_float16: bool = False, with_complex: bool = False) -> st.SearchStrategy[str]:
    """Dtype names: bool, int8..int64, uint8, float32, float64; float16 and complex64/128 only
    when asked for (backends often run those as library calls, or not at all)."""
    names = [d for d in DEFAULT_DTYPES
             if (d == "bool" and with_bool) or (d in INTS and with_ints)
             or (d in FLOATS and with_floats)]
    names += ["float16"] * with_float16 + ["complex64", "complex128"] * with_complex
    if not names:
        raise ValueError("dtypes(): every dtype family is switched off")
    return st.sampled_from(names)


@dataclass(frozen=True)
class Domain:
    """The values an input may take: [lo, hi] (rounded inward for integers), optionally mixed
    with NaN/inf/-0.0 (`specials`, floats only), without zero (`nonzero`), or mixed with whole and
    half-integer values (`ties`) so that equalities, max/min ties and rounding halves occur.
    `min_abs` rounds nonzero float magnitudes below it up to it: products of many elements
    then cannot underflow, which would make 0 * inf (NaN) or inf depend on the order of
    multiplication rather than on the backend being right."""

    lo: float = -10.0
    hi: float = 10.0
    specials: bool = False
    nonzero: bool = False
    ties: bool = False
    min_abs: float = 0.0

    def elements(self, dtype: str) -> st.SearchStrategy:
        """A strategy for one element of `dtype` in this domain."""
        dt = np.dtype(dtype)
        if dt.kind == "b":
            return st.just(True) if self.nonzero or self.lo > 0 else st.booleans()
        if dt.kind in "iu":
            info = np.iinfo(dt)
            lo, hi = max(math.ceil(self.lo), int(info.min)), min(math.floor(self.hi), int(info.max))
            if lo > hi or (self.nonzero and lo == hi == 0):
                raise ValueError(f"{self} holds no {dtype} value")
            ints = st.integers(lo, hi)
            return ints.filter(bool) if self.nonzero else ints
        if dt.kind == "c":
            part = Domain(self.lo, self.hi, self.specials, False, self.ties,
                          self.min_abs).elements(dt.type(0).real.dtype.name)
            values = st.builds(complex, part, part)
            return values.filter(bool) if self.nonzero else values
        width = dt.itemsize * 8
        lo, hi = _inward(self.lo, self.hi, dt)
        finite = st.floats(lo, hi, width=width)
        if self.min_abs:
            finite = finite.map(self._raise_tiny)
        if self.nonzero:
            finite = finite.filter(bool)
        extra = [float(v) / 2 for v in range(math.ceil(2 * lo), math.floor(2 * hi) + 1)
                 if v or not self.nonzero] if self.ties else []
        extra += list(SPECIAL_FLOATS) if self.specials else []
        if not extra:
            return finite
        return st.one_of(finite, finite, finite, st.sampled_from(extra))


    def _raise_tiny(self, v: float) -> float:
        return math.copysign(self.min_abs, v) if 0 < abs(v) < self.min_abs else v


def _inward(lo: float, hi: float, dt: np.dtype) -> tuple[float, float]:
    """[lo, hi] shrunk to bounds exactly representable in float dtype `dt`."""
    flo, fhi = dt.type(lo), dt.type(hi)
    if float(flo) < lo:
        flo = np.nextafter(flo, dt.type(np.inf))
    if float(fhi) > hi:
        fhi = np.nextafter(fhi, dt.type(-np.inf))
    return float(flo), float(fhi)


REAL = Domain()
REAL_SPECIAL = Domain(specials=True)


def sides(min_side: int = 1, max_side: int = 4) -> st.SearchStrategy[int]:
    """One axis length (hypothesis-chosen: small and boundary lengths come first)."""
    return st.integers(min_side, max_side)


def _rng(draw) -> np.random.Generator:
    """A NumPy generator seeded by hypothesis: shapes and layouts drawn from it are spread
    evenly, where hypothesis itself favours the smallest and repeats them."""
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _frame(rng: np.random.Generator, n: int, min_side: int, max_side: int) -> list[int]:
    """`n` lengths in [max(min_side, 1), max_side]; when min_side is 0, one of them is 0 in
    about one draw of eight."""
    out = [int(v) for v in rng.integers(max(min_side, 1), max_side, size=n, endpoint=True)]
    if min_side == 0 and n and rng.random() < 1 / 8:
        out[int(rng.integers(n))] = 0
    return out


@st.composite
def lengths(draw, n: int, min_side: int = 0, max_side: int = 4) -> tuple[int, ...]:
    """`n` axis lengths spread evenly over [1, max_side], one of them 0 now and then when
    min_side is 0 (for cases whose inputs' shapes are tied by hand, like dot's)."""
    return tuple(_frame(_rng(draw), n, min_side, max_side))


@st.composite
def broadcast_shapes(draw, patterns: Sequence[Sequence[int | None]], min_side: int = 0,
                     max_side: int = 4) -> list[Shape]:
    """Run-time shapes for inputs with static shapes `patterns` (ints where fixed, None where
    free) that broadcast together as NumPy does: a common frame of lengths (one of them 0 now
    and then when min_side is 0), with free axes of some inputs set to 1."""
    rng = _rng(draw)
    nd = max((len(p) for p in patterns), default=0)
    fixed = {nd - len(p) + i: s for p in patterns for i, s in enumerate(p)
             if s is not None and s != 1}
    frame = _frame(rng, nd, min_side if not fixed else max(min_side, 1), max_side)
    frame = [fixed.get(a, v) for a, v in enumerate(frame)]
    return [tuple(s if s is not None else 1 if rng.random() < 1 / 3 else
                  frame[nd - len(p) + i] for i, s in enumerate(p)) for p in patterns]


@st.composite
def arrays(draw, dtype: str, shape: Shape, domain: Domain = REAL,
           layouts: Sequence[str] = LAYOUTS) -> np.ndarray:
    """An array of `dtype` and `shape` with elements in `domain` (specials in about a third of
    the arrays of a domain that allows them), in one of `layouts`: 'C' (contiguous), 'F' (a
    transposed view), 'strided' (every other element, offset by one), 'reversed' (negative
    strides on every axis) or 'broadcast' (read-only, zero strides)."""
    shape = tuple(shape)
    rng = _rng(draw)
    if domain.specials and rng.random() >= 1 / 3:
        domain = replace(domain, specials=False)  # most arrays stay finite
    elements = domain.elements(dtype)
    layout = layouts[int(rng.integers(len(layouts)))] if shape else "C"

    def base(shp):
        if math.prod(shp) > LARGE:
            return random_fill(rng, dtype, shp, domain)
        return draw(hnp.arrays(np.dtype(dtype), tuple(shp), elements=elements))

    if layout == "F":
        return base(shape[::-1]).T
    if layout == "strided":
        return base(tuple(2 * s + 1 for s in shape))[(slice(1, None, 2),) * len(shape)]
    if layout == "reversed":
        return base(shape)[(slice(None, None, -1),) * len(shape)]
    if layout == "broadcast":
        small = tuple(1 if rng.random() < .5 else s for s in shape)
        return np.broadcast_to(base(small), shape)
    return base(shape)


def random_fill(rng: np.random.Generator, dtype: str, shape: Shape,
                domain: Domain) -> np.ndarray:
    """A large array of `dtype` in `domain` from a NumPy generator (drawing it element by element
    through hypothesis would be slow); specials land at a few random positions."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        out = np.ones(shape, bool) if domain.nonzero or domain.lo > 0 else rng.random(shape) < .5
        return out
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(math.ceil(domain.lo), int(info.min)), min(math.floor(domain.hi), int(info.max))
        out = rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)
        if domain.nonzero:
            out[out == 0] = hi
        return out
    out = rng.uniform(domain.lo, domain.hi, size=shape)
    if domain.min_abs:
        out = np.where(np.abs(out) < domain.min_abs, np.copysign(domain.min_abs, out), out)
    if dt.kind == "c":
        out = out + 1j * rng.uniform(domain.lo, domain.hi, size=shape)
    out = out.astype(dt)
    if domain.specials and out.size:
        flat = out.reshape(-1)
        picks = rng.integers(0, flat.size, size=min(8, flat.size))
        flat[picks] = rng.choice(np.array(SPECIAL_FLOATS), size=picks.size)
    if domain.nonzero:
        out[out == 0] = domain.hi
    return out


def describe_array(a: np.ndarray) -> str:
    """Dtype, shape, strides and layout flags of an array, as failure messages show them."""
    a = np.asarray(a)
    flags = "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "non-contiguous"
    ro = ", read-only" if not a.flags.writeable else ""
    return f"{a.dtype}{list(a.shape)} strides={a.strides} ({flags}{ro})"


# -- random expression graphs ------------------------------------------------------------------
@dataclass
class GraphExample:
    """A random expression: symbolic `inputs` and `outputs`, input `values`, the `expected`
    outputs computed directly with NumPy, and a readable `text` of the expression."""

    inputs: list
    outputs: list
    values: list[np.ndarray]
    expected: list[np.ndarray]
    text: str


_UNARY_GRAPH_OPS = {
    "neg": np.negative, "abs": np.abs, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sqr": np.square, "arctan": np.arctan,
    "sigmoid": lambda v: (1 / (1 + np.exp(-v.astype(np.float64)))).astype(v.dtype),
}
_BINARY_GRAPH_OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                     "maximum": np.maximum, "minimum": np.minimum}
_REDUCE_GRAPH_OPS = {"sum": np.sum, "max": np.max, "min": np.min, "mean": np.mean}


class _GraphBuilder:
    """Grows an expression top-down for a target shape, computing NumPy values alongside."""

    def __init__(self, draw, dtype: str, max_inputs: int, max_side: int):
        import theanine.tensor as T

        self.T, self.draw, self.dtype = T, draw, dtype
        self.max_inputs, self.max_side = max_inputs, max_side
        self.inputs, self.values = [], []

    def leaf(self, shape: Shape):
        if self.inputs and len(self.inputs) >= self.max_inputs:
            for var, val in zip(self.inputs, self.values):
                if val.shape == shape:
                    return var, val, var.name
        from theanine.tensor.type import TensorType

        name = f"x{len(self.inputs)}"
        var = TensorType(self.dtype, (None,) * len(shape))(name)
        val = self.draw(arrays(self.dtype, shape, Domain(-3, 3)))
        self.inputs.append(var)
        self.values.append(val)
        return var, val, name

    def build(self, depth: int, shape: Shape):
        kinds = ["leaf"] if depth == 0 else ["leaf", "unary", "binary", "binary", "reduce",
                                             "transpose", "dot"]
        kind = self.draw(st.sampled_from(kinds))
        T, draw = self.T, self.draw
        if kind == "unary":
            name = draw(st.sampled_from(sorted(_UNARY_GRAPH_OPS)))
            var, val, text = self.build(depth - 1, shape)
            return getattr(T, name)(var), _UNARY_GRAPH_OPS[name](val), f"{name}({text})"
        if kind == "binary":
            name = draw(st.sampled_from(sorted(_BINARY_GRAPH_OPS)))
            (a, av, at), (b, bv, bt) = self.build(depth - 1, shape), \
                self.build(depth - 1, self._broadcast_source(shape))
            if draw(st.booleans()):
                (a, av, at), (b, bv, bt) = (b, bv, bt), (a, av, at)
            return getattr(T, name)(a, b), _BINARY_GRAPH_OPS[name](av, bv), \
                f"{name}({at}, {bt})"
        if kind == "reduce" and len(shape) < 3:
            name = draw(st.sampled_from(sorted(_REDUCE_GRAPH_OPS)))
            axis = draw(st.integers(0, len(shape)))
            inner = shape[:axis] + (draw(sides(1, self.max_side)),) + shape[axis:]
            var, val, text = self.build(depth - 1, inner)
            out = np.asarray(_REDUCE_GRAPH_OPS[name](val, axis=axis)).astype(val.dtype)
            return getattr(T, name)(var, axis=axis), out, f"{name}({text}, axis={axis})"
        if kind == "transpose" and len(shape) >= 2:
            perm = draw(st.permutations(range(len(shape))))
            inv = tuple(int(i) for i in np.argsort(perm))
            var, val, text = self.build(depth - 1, tuple(shape[i] for i in inv))
            return T.transpose(var, perm), np.transpose(val, perm), f"transpose({text}, {perm})"
        if kind == "dot" and 1 <= len(shape) <= 2:
            k = draw(sides(1, self.max_side))
            a_shape = (shape[0], k)
            b_shape = (k, shape[1]) if len(shape) == 2 else (k,)
            (a, av, at), (b, bv, bt) = self.build(depth - 1, a_shape), \
                self.build(depth - 1, b_shape)
            return T.dot(a, b), np.dot(av, bv), f"dot({at}, {bt})"
        return self.leaf(shape)

    def _broadcast_source(self, shape: Shape) -> Shape:
        """A shape that broadcasts to `shape`: leading axes dropped, some lengths set to 1."""
        drop = self.draw(st.integers(0, len(shape)))
        return tuple(1 if self.draw(st.sampled_from([False, False, True])) else s
                     for s in shape[drop:])


@st.composite
def expression_graphs(draw, dtypes: Sequence[str] = FLOATS, max_depth: int = 4,
                      max_inputs: int = 3, max_side: int = 4) -> GraphExample:
    """A random expression over elementwise unary/binary ops (with broadcasting), reductions
    over an axis, transposes and dot, on inputs of one float dtype, with NumPy's values."""
    dtype = draw(st.sampled_from(tuple(dtypes)))
    ndim = draw(st.integers(0, 2))
    shape = tuple(draw(sides(1, max_side)) for _ in range(ndim))
    builder = _GraphBuilder(draw, dtype, max_inputs, max_side)
    out, expected, text = builder.build(draw(st.integers(1, max_depth)), shape)
    return GraphExample(builder.inputs, [out], builder.values,
                        [np.asarray(expected, dtype=out.dtype)], text)


__all__ = ["DEFAULT_DTYPES", "EXTENDED_DTYPES", "FLOATS", "INTS", "LAYOUTS", "Domain", "REAL",
           "REAL_SPECIAL", "GraphExample", "dtypes", "sides", "lengths", "broadcast_shapes",
           "arrays", "random_fill", "describe_array", "expression_graphs"]
