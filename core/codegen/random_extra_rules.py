"""The C-style kernel of `random_binomial` (theanine.tensor.random_ops.binomial_draw), for
every dialect: the same inverse-CDF walk as the NumPy reference, on the element's float64
uniform, so it fuses with the graph around it.

`RULES` maps the scalar op's name to its rule `(renderer, call, arg texts) -> C text`, as the
entries of `cstyle._RULES`; `prelude(dialect)` is the helper the rule calls, to be printed
after random_kernels' prelude (it calls `th_random_uniform_float64`), only where the dialect
has float64. The walk's float64 operations are the reference's, in its order, so a count
differs from NumPy's only where lgamma/exp/log round differently on a CDF boundary.
"""

from __future__ import annotations

from theanine.tensor.random_ops import TAIL_SDS


def _binomial_rule(r, e, args: list[str]) -> str:
    key, ctr, index = (r.cast(a, x.dtype, "uint64") for a, x in zip(args[:3], e.args[:3]))
    n = r.cast(args[3], e.args[3].dtype, "int64")
    p = r.cast(args[4], e.args[4].dtype, "float64")
    return (f"th_binomial_from_uniform(th_random_uniform_float64({key}, {ctr}, {index}), "
            f"{n}, {p})")


RULES = {"random_binomial": _binomial_rule}


def prelude(d) -> str:
    """`th_binomial_from_uniform(u, n, p)` for dialect `d`: Binomial(n, p) from a float64
    uniform u, the smallest k with P(X <= k) > u (random_ops.binomial_from_uniform)."""
    i64, f64 = d.type("int64"), d.type("float64")

    def m(fn: str) -> str:
        return d.math(fn, "float64")

    sds = repr(float(TAIL_SDS))
    return "\n".join([
        f"{d.fn_qualifier} {i64} th_binomial_from_uniform({f64} u, {i64} n, {f64} p)",
        "{",
        "    if (p >= 1.0) return n > 0 ? n : 0;",
        "    if (!(p > 0.0) || n <= 0) return 0;",
        f"    const {f64} nf = ({f64})n, q = 1.0 - p, mu = nf * p, sd = {m('sqrt')}(mu * q);",
        f"    {f64} k = {m('fmax')}(0.0, {m('floor')}(mu - {sds} * sd));",
        f"    const {f64} kmax = {m('fmin')}(nf, {m('floor')}(mu + {sds} * sd) + 10.0);",
        f"    const {f64} logpmf = {m('lgamma')}(nf + 1.0) - {m('lgamma')}(k + 1.0)"
        f" - {m('lgamma')}(nf - k + 1.0) + k * {m('log')}(p) + (nf - k) * {m('log1p')}(-p);",
        f"    {f64} pmf = {m('exp')}(logpmf), cdf = pmf;",
        f"    const {f64} ratio = p / q;",
        "    while (cdf <= u && k < kmax) {",
        "        pmf = pmf * ((nf - k) / (k + 1.0) * ratio);",
        "        k = k + 1.0;",
        "        cdf = cdf + pmf;",
        "    }",
        f"    return ({i64})k;",
        "}",
    ])
