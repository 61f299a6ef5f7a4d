"""Random draws in C-style kernels: Philox4x32-10 and the words-to-value conversions of
`theanine.tensor.philox`, printed for every dialect.

A draw `random_<kind>_<dtype>(key, counter, index)` is rendered as a helper computing element
`index`'s block and turning its words into the value, so it fuses like any scalar op;
`random_binomial` walks the inverse CDF from one float64 uniform. The C
backend's contiguous loops take a faster route (`th_philox_fill`: a block's four words feed
four elements), through `fill_helpers`.
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


FILL = r"""
#if defined(__AVX2__)
#include <immintrin.h>
/* Eight consecutive blocks from `block` on, their words stored in order (32 words). Each
 * 32-bit word sits in the low half of a 64-bit lane, four blocks per vector, two vectors; the
 * high halves carry junk that the 32x32-bit multiplies never read, so a round is two
 * multiplies, two shifts and four xors per vector. */
static inline void th_philox_blocks8(uint64_t key, uint64_t ctr, uint64_t block, uint32_t *out)
{
    const __m256i low = _mm256_set1_epi64x(0xFFFFFFFFll);
    const __m256i m0 = _mm256_set1_epi64x(TH_PHILOX_M0), m1 = _mm256_set1_epi64x(TH_PHILOX_M1);
    __m256i a0 = _mm256_add_epi64(_mm256_set1_epi64x((long long)block),
                                  _mm256_setr_epi64x(0, 1, 2, 3));
    __m256i b0 = _mm256_add_epi64(a0, _mm256_set1_epi64x(4));
    __m256i a1 = _mm256_srli_epi64(a0, 32), b1 = _mm256_srli_epi64(b0, 32);
    __m256i a2 = _mm256_set1_epi64x((long long)(uint32_t)ctr), b2 = a2;
    __m256i a3 = _mm256_set1_epi64x((long long)(ctr >> 32)), b3 = a3;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; ++r) {
        const __m256i kk0 = _mm256_set1_epi64x(k0), kk1 = _mm256_set1_epi64x(k1);
        const __m256i pa0 = _mm256_mul_epu32(a0, m0), pa1 = _mm256_mul_epu32(a2, m1);
        const __m256i pb0 = _mm256_mul_epu32(b0, m0), pb1 = _mm256_mul_epu32(b2, m1);
        a0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa1, 32), a1), kk0);
        a2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa0, 32), a3), kk1);
        b0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb1, 32), b1), kk0);
        b2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb0, 32), b3), kk1);
        a1 = pa1; a3 = pa0; b1 = pb1; b3 = pb0;
        k0 += TH_PHILOX_W0; k1 += TH_PHILOX_W1;
    }
    /* per block, the 64-bit lanes (w0 | w1 << 32) and (w2 | w3 << 32), then blocks in order */
    const __m256i a01 = _mm256_or_si256(_mm256_and_si256(a0, low), _mm256_slli_epi64(a1, 32));
    const __m256i a23 = _mm256_or_si256(_mm256_and_si256(a2, low), _mm256_slli_epi64(a3, 32));
    const __m256i b01 = _mm256_or_si256(_mm256_and_si256(b0, low), _mm256_slli_epi64(b1, 32));
    const __m256i b23 = _mm256_or_si256(_mm256_and_si256(b2, low), _mm256_slli_epi64(b3, 32));
    const __m256i alo = _mm256_unpacklo_epi64(a01, a23), ahi = _mm256_unpackhi_epi64(a01, a23);
    const __m256i blo = _mm256_unpacklo_epi64(b01, b23), bhi = _mm256_unpackhi_epi64(b01, b23);
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(alo, ahi, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 8), _mm256_permute2x128_si256(alo, ahi, 0x31));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(blo, bhi, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 24), _mm256_permute2x128_si256(blo, bhi, 0x31));
}
#endif

/* Ask for the `bytes` from `p` on to be brought into the caches (a hint: never faults). */
static inline void th_prefetch(const void *p, int64_t bytes)
{
    for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch((const char *)p + off, 0, 3);
}

/* Words first .. first + count - 1 of stream (key, ctr) into dst: whole blocks eight at a
 * time with AVX2 where the compiler targets it, the rest one block at a time. */
static void th_philox_fill(uint32_t *dst, uint64_t key, uint64_t ctr, uint64_t first,
                           int64_t count)
{
    uint32_t x[4];
    int64_t done = 0;
    while (done < count && ((first + (uint64_t)done) & 3u)) {
        uint64_t j = first + (uint64_t)done;
        th_philox_block(key, ctr, j >> 2, x);
        dst[done++] = x[j & 3u];
    }
#if defined(__AVX2__)
    for (; count - done >= 32; done += 32)
        th_philox_blocks8(key, ctr, (first + (uint64_t)done) >> 2, dst + done);
#endif
    for (; count - done >= 4; done += 4)
        th_philox_block(key, ctr, (first + (uint64_t)done) >> 2, dst + done);
    while (done < count) {
        uint64_t j = first + (uint64_t)done;
        th_philox_block(key, ctr, j >> 2, x);
        dst[done++] = x[j & 3u];
    }
}
"""
