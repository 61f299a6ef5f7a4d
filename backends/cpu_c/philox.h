/* theanine cpu_c: the words of a random draw for a stretch of a contiguous loop (included after
 * the kernel prelude, whose th_philox_block it calls; see theanine.codegen.random_kernels). */
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
