"""Workload (3): sums of a cube over every axis set, on a contiguous and a transposed input, and a
row softmax; target: at least PyTensor's C mode on each row."""

from __future__ import annotations

import itertools

import numpy as np
from harness import THEANINE, Row, Settings, Target, compare, fmt_time, tolerance
from rivals import NOTES, numexpr_module, pytensor_functions, pytensor_module

import theanine as th
import theanine.tensor as T

AXES = [ax for k in (1, 2, 3) for ax in itertools.combinations(range(3), k)]
SUMS = "(3) sum of a float64 cube over axes; row softmax float32"


def axis_sums(side: int, settings: Settings) -> list[Row]:
    """Time x.sum(axis) for every axis set, with x contiguous and with x.T (a strided view)."""
    rows = []
    NOTES.append("(3) numexpr has no multi-axis sum, so its column is left out for the sums; "
                 "'transposed' = x.T, a view with reversed strides")
    x = np.random.default_rng(2).uniform(size=(side,) * 3)
    layouts = {"contiguous": x, "transposed": x.T}
    X = T.dtensor3("X")
    pX = None
    if pytensor_module():
        import pytensor.tensor as pt

        pX = pt.tensor3("X", dtype="float64")
    for ax in AXES:
        f = th.function([X], T.sum(X, axis=ax), backend="c", trust_input=True)
        pt_fns = {}
        if pX is not None:
            pt_fns = pytensor_functions([pX], pX.sum(axis=ax))
        for layout, xv in layouts.items():
            calls = {THEANINE: lambda f=f, xv=xv: f(xv),
                     "numpy": lambda xv=xv, ax=ax: xv.sum(axis=ax)}
            for col, g in pt_fns.items():
                calls[col] = lambda g=g, xv=xv: g(xv)
            rows.append(compare(SUMS, f"{side}^3 sum{ax} {layout}", calls, xv.sum(axis=ax),
                                settings, rtol=1e-10))
    return rows


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def softmax_rows(side: int, settings: Settings) -> Row:
    """Time a row softmax of a side x side float32 matrix (NumPy: max-shifted exp / sum)."""
    xv = np.random.default_rng(3).normal(size=(side, side)).astype("float32")
    m = T.fmatrix("m")
    f = th.function([m], T.nnet.softmax(m), backend="c", trust_input=True)
    calls = {THEANINE: lambda: f(xv), "numpy": lambda: _np_softmax(xv)}
    ne = numexpr_module()
    if ne is not None:
        def ne_softmax():
            mx = xv.max(axis=1, keepdims=True)
            e = ne.evaluate("exp(x - mx)", local_dict={"x": xv, "mx": mx})
            s = e.sum(axis=1, keepdims=True)
            return ne.evaluate("e / s", local_dict={"e": e, "s": s}, out=e)

        calls["numexpr"] = ne_softmax
    if pytensor_module():
        import pytensor.tensor as pt
        from pytensor.tensor.special import softmax

        pm = pt.matrix("m", dtype="float32")
        for col, g in pytensor_functions([pm], softmax(pm, axis=-1)).items():
            calls[col] = lambda g=g: g(xv)
    want = _np_softmax(xv.astype(np.float64))
    return compare(SUMS, f"softmax rows {side}x{side} float32", calls, want, settings,
                   rtol=tolerance("float32"), atol=1e-7)


def targets(rows: list[Row]) -> list[Target]:
    """At least PyTensor's C mode's speed on every row of workload (3)."""
    out = []
    for r in rows:
        s = r.speedup("pt-c")
        if s is not None:
            out.append(Target(f"(3) {r.name}: >= PyTensor C", s >= 1,
                              f"{s:.2f}x vs pt-c ({fmt_time(r.others['pt-c'])})"))
    return out
