"""Random draws in C-style kernels: Philox4x32-10 and the words-to-value conversions of
`theanine.tensor.philox`, printed for every dialect.

A draw `random_<kind>_<dtype>(key, counter, index)` is rendered as a helper computing element
`index`'s block and turning its words into the value, so it fuses like any scalar op;
`random_binomial` walks the inverse CDF from one float64 uniform. The C
backend's contiguous loops take a faster route: `th_philox_fill` (backends/cpu_c/philox.h)
computes a stretch's words a block, four words, at a time.
"""

from __future__ import annotations

from theanine.codegen.ir import Call, Index
from theanine.tensor.philox import M0, M1, W0, W1, WORDS
from theanine.tensor.random_ops import TAIL_SDS

DRAW_OPS = {f"random_{kind}_{dt}": (kind, dt) for kind, dt in WORDS}
_TWO_PI = {"float32": "6.2831855f", "float64": "6.283185307179586"}


def words_per_element(op: str) -> int:
    return WORDS[DRAW_OPS[op]]


def _rule(r, e: Call, args: list[str]) -> str:
    key, ctr, index = (r.cast(a, x.dtype, "uint64") for a, x in zip(args, e.args))
    return f"th_{e.op}({key}, {ctr}, {index})"


RULES = {op: _rule for op in DRAW_OPS}


def _binomial_rule(r, e, args: list[str]) -> str:
    key, ctr, index = (r.cast(a, x.dtype, "uint64") for a, x in zip(args[:3], e.args[:3]))
    n = r.cast(args[3], e.args[3].dtype, "int64")
    p = r.cast(args[4], e.args[4].dtype, "float64")
    return (f"th_binomial_from_uniform(th_random_uniform_float64({key}, {ctr}, {index}), "
            f"{n}, {p})")


RULES["random_binomial"] = _binomial_rule


def fast_draw(e) -> bool:
    """True for a draw whose element index is a loop's flat index (`Index`), which a C loop can
    compute block by block."""
    return isinstance(e, Call) and e.op in DRAW_OPS and isinstance(e.args[2], Index)


def prelude(d, float_dtypes: tuple[str, ...]) -> str:
    """The Philox block function and one helper per draw op, for dialect `d` (only the float
    dtypes it has)."""
    u32, u64 = d.type("uint32"), d.type("uint64")
    fn = d.fn_qualifier
    lines = [f"#define TH_PHILOX_M0 {M0}u", f"#define TH_PHILOX_M1 {M1}u",
             f"#define TH_PHILOX_W0 {W0}u", f"#define TH_PHILOX_W1 {W1}u",
        f"{fn} void th_philox_block({u64} key, {u64} ctr, {u64} block, {u32} *x)",
        "{",
        f"    {u32} x0 = ({u32})block, x1 = ({u32})(block >> 32), x2 = ({u32})ctr, "
        f"x3 = ({u32})(ctr >> 32);",
        f"    {u32} k0 = ({u32})key, k1 = ({u32})(key >> 32);",
        "    for (int r = 0; r < 10; ++r) {",
        f"        const {u64} p0 = ({u64})x0 * TH_PHILOX_M0, p1 = ({u64})x2 * TH_PHILOX_M1;",
        f"        const {u32} y0 = ({u32})(p1 >> 32) ^ x1 ^ k0, y2 = ({u32})(p0 >> 32) ^ x3 ^ k1;",
        f"        x1 = ({u32})p1; x3 = ({u32})p0; x0 = y0; x2 = y2;",
        "        k0 += TH_PHILOX_W0; k1 += TH_PHILOX_W1;",
        "    }",
        "    x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;",
        "}",
    ]
    for dt in float_dtypes:
        t = d.type(dt)
        lines += _word_helpers(d, dt, t, u32)
        for kind in ("uniform", "normal"):
            w = WORDS[(kind, dt)]
            args = ", ".join(f"x[lane + {j}]" for j in range(w))
            lines += [f"{fn} {t} th_random_{kind}_{dt}({u64} key, {u64} ctr, {u64} index)",
                      "{",
                      f"    {u32} x[4]; const {u64} first = index * {w}u;",
                      "    th_philox_block(key, ctr, first >> 2, x);",
                      "    const int lane = (int)(first & 3u);",
                      f"    return th_{kind}_{dt}_words({args});",
                      "}"]
    return "\n".join(lines)


def _word_helpers(d, dt: str, t: str, u32: str) -> list[str]:
    fn = d.fn_qualifier
    sqrt, log, cos = (d.math(f, dt) for f in ("sqrt", "log", "cos"))
    if dt == "float32":
        uniform = [f"{fn} float th_uniform_float32_words({u32} w0)",
                   "{ return (float)(w0 >> 8) * 5.9604644775390625e-08f; }"]
        normal = [f"{fn} float th_normal_float32_words({u32} w0, {u32} w1)",
                  "{",
                  "    const float u1 = 1.0f - th_uniform_float32_words(w0);",
                  "    const float u2 = th_uniform_float32_words(w1);",
                  f"    return {sqrt}(-2.0f * {log}(u1)) * {cos}({_TWO_PI[dt]} * u2);",
                  "}"]
    else:
        uniform = [f"{fn} double th_uniform_float64_words({u32} w0, {u32} w1)",
                   "{ return ((double)(w0 >> 5) * 67108864.0 + (double)(w1 >> 6)) * "
                   "1.1102230246251565e-16; }"]
        normal = [f"{fn} double th_normal_float64_words({u32} w0, {u32} w1, {u32} w2, "
                  f"{u32} w3)",
                  "{",
                  "    const double u1 = 1.0 - th_uniform_float64_words(w0, w1);",
                  "    const double u2 = th_uniform_float64_words(w2, w3);",
                  f"    return {sqrt}(-2.0 * {log}(u1)) * {cos}({_TWO_PI[dt]} * u2);",
                  "}"]
    return uniform + normal


def binomial_prelude(d) -> str:
    """`th_binomial_from_uniform(u, n, p)` for dialect `d`: Binomial(n, p) from a float64
    uniform u, the smallest k with P(X <= k) > u (random_ops.binomial_from_uniform), with
    the reference's float64 operations in its order, so counts differ from NumPy's only
    where lgamma/exp/log round differently on a CDF boundary."""
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
