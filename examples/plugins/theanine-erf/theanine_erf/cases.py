"""Conformance cases: each op on a matrix and a 0-d input, over special values (inf, NaN,
signed zeros) and the dtypes of theanine's own math cases, forward and gradient; and gelu
written out, so every backend also runs the graph the rewrite produces."""

from __future__ import annotations

import math

from theanine.testing.cases import Case, free
from theanine.testing.strategies import Domain
from theanine_erf.ops import erf, erfc, gelu

DTYPES = ("float32", "float64", "int8", "int32")
VALUES = Domain(-12, 12, specials=True)


def _unary(name: str, fn) -> Case:
    return Case(name, lambda x, s: [fn(x), fn(s)],
                (free(2, domain=VALUES, name="x"), free(0, domain=VALUES, name="s")), DTYPES,
                functions=(name,))


def _gelu_written_out(x):
    return [gelu(x), 0.5 * x * (1 + erf(x / math.sqrt(2)))]


CASES = [
    _unary("erf", erf),
    _unary("erfc", erfc),
    _unary("gelu", gelu),
    Case("gelu[pattern]", _gelu_written_out, (free(2, domain=VALUES, name="x"),),
         ("float32", "float64"), functions=("gelu", "erf"), label="gelu (written out)"),
]
