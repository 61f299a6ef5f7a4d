/* theanine cpu_c runtime: iteration over strided, broadcast operands with OpenMP threads.
 *
 * A kernel is an inner-loop function over a run of `n` elements (NumPy's ufunc model); this
 * file walks the loop space and calls it once per run. Operand 0.. are outputs, then inputs;
 * strides are in bytes, 0 along broadcast axes. Axes of extent 1 are dropped and adjacent axes
 * that are contiguous for every operand are merged, so contiguous arrays become one long run.
 */
#include <stdint.h>
#include <string.h>
#include <omp.h>

/* TH_MAXDIMS (axes) and TH_MAXOPS (arrays per kernel) come from limits.py, which keeps
 * programs within them */
#if !defined(TH_MAXDIMS) || !defined(TH_MAXOPS)
#error "define TH_MAXDIMS and TH_MAXOPS (theanine.backends.cpu_c.limits) before runtime.h"
#endif

typedef void (*th_inner_fn)(int64_t n, char **ptrs, const int64_t *strides, const void *params);

typedef struct {
    int nop, ndim;
    int64_t shape[TH_MAXDIMS];
    int64_t strides[TH_MAXOPS][TH_MAXDIMS];
    char *base[TH_MAXOPS];
} th_space;

/* Drop extent-1 axes and merge axes that are contiguous for all operands. Returns the number
 * of elements (0 means nothing to do). */
static int64_t th_simplify(th_space *sp)
{
    int nd = 0;
    int64_t total = 1;
    for (int d = 0; d < sp->ndim; ++d) {
        total *= sp->shape[d];
        if (sp->shape[d] == 1) continue;
        sp->shape[nd] = sp->shape[d];
        for (int o = 0; o < sp->nop; ++o) sp->strides[o][nd] = sp->strides[o][d];
        ++nd;
    }
    if (total == 0) return 0;
    int merged = 0;
    for (int d = 1; d < nd; ++d) {
        int ok = 1;
        for (int o = 0; o < sp->nop && ok; ++o)
            ok = sp->strides[o][merged] == sp->strides[o][d] * sp->shape[d];
        if (ok) {
            sp->shape[merged] *= sp->shape[d];
            for (int o = 0; o < sp->nop; ++o) sp->strides[o][merged] = sp->strides[o][d];
        } else {
            ++merged;
            sp->shape[merged] = sp->shape[d];
            for (int o = 0; o < sp->nop; ++o) sp->strides[o][merged] = sp->strides[o][d];
        }
    }
    sp->ndim = nd ? merged + 1 : 0;
    if (sp->ndim == 0) {  /* a single element: one run of length 1 */
        sp->ndim = 1;
        sp->shape[0] = 1;
        for (int o = 0; o < sp->nop; ++o) sp->strides[o][0] = 0;
    }
    return total;
}

/* Reorder axes so that operand `op`'s strides decrease (its innermost axis has the smallest
 * stride): reductions then read their input in memory order whatever its layout. */
static void th_sort_axes(th_space *sp, int op)
{
    for (int i = 1; i < sp->ndim; ++i) {
        for (int j = i; j > 0; --j) {
            int64_t a = sp->strides[op][j - 1], b = sp->strides[op][j];
            if ((a < 0 ? -a : a) >= (b < 0 ? -b : b)) break;
            int64_t t = sp->shape[j]; sp->shape[j] = sp->shape[j - 1]; sp->shape[j - 1] = t;
            for (int o = 0; o < sp->nop; ++o) {
                t = sp->strides[o][j]; sp->strides[o][j] = sp->strides[o][j - 1];
                sp->strides[o][j - 1] = t;
            }
        }
    }
}

/* Visit the box lo[d] <= i[d] < hi[d] in C order, one inner-axis run per call. Runs along the
 * second-innermost axis advance the pointers by a stride instead of recomputing them, since
 * short runs (a 256-element row added into an output row) are common in reductions. */
static void th_walk(const th_space *sp, const int64_t *lo, const int64_t *hi, th_inner_fn fn,
                    const void *params)
{
    int nd = sp->ndim, nop = sp->nop, last = nd - 1, mid = nd - 2;
    int64_t idx[TH_MAXDIMS], inner_strides[TH_MAXOPS];
    char *ptrs[TH_MAXOPS];
    for (int d = 0; d < nd; ++d) {
        idx[d] = lo[d];
        if (lo[d] >= hi[d]) return;
    }
    for (int o = 0; o < nop; ++o) inner_strides[o] = sp->strides[o][last];
    int64_t run = hi[last] - lo[last];
    int64_t rows = mid >= 0 ? hi[mid] - lo[mid] : 1;
    for (;;) {
        for (int o = 0; o < nop; ++o) {
            char *p = sp->base[o];
            for (int d = 0; d < nd; ++d) p += idx[d] * sp->strides[o][d];
            ptrs[o] = p;
        }
        for (int64_t r = 0;;) {
            fn(run, ptrs, inner_strides, params);
            if (++r == rows) break;
            for (int o = 0; o < nop; ++o) ptrs[o] += sp->strides[o][mid];
        }
        int d = mid - 1;
        for (; d >= 0; --d) {
            if (++idx[d] < hi[d]) break;
            idx[d] = lo[d];
        }
        if (d < 0) return;
    }
}

/* The axis to split among threads: the outermost one with enough work per thread. */
static int th_split_axis(const th_space *sp, int nthreads, const int *allowed)
{
    int best = -1;
    for (int d = 0; d < sp->ndim; ++d) {
        if (allowed && !allowed[d]) continue;
        if (sp->shape[d] >= 4 * nthreads) return d;
        if (best < 0 || sp->shape[d] > sp->shape[best]) best = d;
    }
    return best;
}

/* Run an elementwise kernel over the whole space. */
static void th_elementwise(th_space *sp, th_inner_fn fn, const void *params, int64_t grain)
{
    int64_t total = th_simplify(sp);
    if (total == 0) return;
    int64_t lo[TH_MAXDIMS], hi[TH_MAXDIMS];
    for (int d = 0; d < sp->ndim; ++d) { lo[d] = 0; hi[d] = sp->shape[d]; }
    int nthreads = total >= grain ? omp_get_max_threads() : 1;
    int axis = nthreads > 1 ? th_split_axis(sp, nthreads, NULL) : -1;
    if (axis < 0 || sp->shape[axis] < 2) {
        th_walk(sp, lo, hi, fn, params);
        return;
    }
    #pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t my_lo[TH_MAXDIMS], my_hi[TH_MAXDIMS];
        memcpy(my_lo, lo, sizeof(lo));
        memcpy(my_hi, hi, sizeof(hi));
        int64_t n = sp->shape[axis];
        my_lo[axis] = n * t / nt;
        my_hi[axis] = n * (t + 1) / nt;
        th_walk(sp, my_lo, my_hi, fn, params);
    }
}

/* The input operand that sets a reduction's loop order: the one broadcast along the fewest
 * axes (ties: the first). -1 when the kernel reads no array. */
static int th_lead(const th_space *sp, int first)
{
    int best = -1, best_n = -1;
    for (int o = first; o < sp->nop; ++o) {
        int n = 0;
        for (int d = 0; d < sp->ndim; ++d) n += sp->shape[d] > 1 && sp->strides[o][d] != 0;
        if (n > best_n) { best = o; best_n = n; }
    }
    return best;
}

/* Byte strides of a dense array over the kept axes `kept[0..nk)` of the loop space, laid out
 * in the memory order of the strides `ls` (largest outermost, ties in C order): NumPy's 'K'
 * order. A reduction of a transposed input then writes its output in the order it reads the
 * input, so kept axes stay contiguous runs instead of scattered single elements. */
static void th_kept_strides(int nk, const int *kept, const int64_t *shape, const int64_t *ls,
                            int64_t itemsize, int64_t *out_strides)
{
    int perm[TH_MAXDIMS];
    for (int j = 0; j < nk; ++j) {
        int i = j;
        int64_t a = ls[kept[j]] < 0 ? -ls[kept[j]] : ls[kept[j]];
        for (; i > 0; --i) {
            int64_t b = ls[kept[perm[i - 1]]];
            if ((b < 0 ? -b : b) >= a) break;
            perm[i] = perm[i - 1];
        }
        perm[i] = j;
    }
    int64_t step = itemsize;
    for (int i = nk - 1; i >= 0; --i) {
        out_strides[perm[i]] = step;
        step *= shape[kept[perm[i]]] > 1 ? shape[kept[perm[i]]] : 1;
    }
}

/* Run a reduction kernel. Operand 0 is the output, with stride 0 along reduced axes and
 * already filled with the reduction's identity; operand `lead` (an input, or -1) sets the loop
 * order: axes are visited in its memory order. Simplification keeps reduced and kept axes
 * apart because the output's stride 0 on a reduced axis never matches a kept axis.
 *
 * Threads split the outermost large axis. A kept axis gives each thread its own outputs; a
 * reduced axis gives each thread a private copy of the output to accumulate into, merged by
 * `combine` at the end. A kept axis inside a reduced one is split only when each thread's
 * share of the output is large: otherwise both threads would stream the whole input, and
 * write neighbouring output lines on every row. */
typedef void (*th_combine_fn)(int64_t n, char *dst, const char *src);

#define TH_MIN_SHARE 32768  /* bytes of output per thread below which a split kept axis
                               inside a reduced axis is not worth it */

static int th_reduce(th_space *sp, int lead, th_inner_fn fn, const void *params, int64_t grain,
                     int64_t out_count, size_t out_itemsize, th_combine_fn combine)
{
    if (lead > 0) th_sort_axes(sp, lead);
    int64_t total = th_simplify(sp);
    if (total == 0) return 0;
    int64_t lo[TH_MAXDIMS], hi[TH_MAXDIMS];
    int kept[TH_MAXDIMS], reduced[TH_MAXDIMS];
    for (int d = 0; d < sp->ndim; ++d) {
        lo[d] = 0;
        hi[d] = sp->shape[d];
        reduced[d] = sp->strides[0][d] == 0;
        kept[d] = !reduced[d];
    }
    int nthreads = total >= grain ? omp_get_max_threads() : 1;
    if (nthreads <= 1) {
        th_walk(sp, lo, hi, fn, params);
        return 0;
    }
    int axis = th_split_axis(sp, nthreads, kept);
    int raxis = th_split_axis(sp, nthreads, reduced);
    int use_kept = axis >= 0 && sp->shape[axis] >= nthreads;
    if (use_kept && raxis >= 0 && raxis < axis && sp->shape[raxis] >= 4 * nthreads) {
        int64_t s = sp->strides[0][axis];
        int64_t share = (sp->shape[axis] / nthreads) * (s < 0 ? -s : s);
        use_kept = share >= TH_MIN_SHARE;
    }
    if (use_kept) {
        /* disjoint outputs per thread */
        #pragma omp parallel num_threads(nthreads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t my_lo[TH_MAXDIMS], my_hi[TH_MAXDIMS];
            memcpy(my_lo, lo, sizeof(lo));
            memcpy(my_hi, hi, sizeof(hi));
            int64_t n = sp->shape[axis];
            my_lo[axis] = n * t / nt;
            my_hi[axis] = n * (t + 1) / nt;
            th_walk(sp, my_lo, my_hi, fn, params);
        }
        return 0;
    }
    axis = raxis;
    if (axis < 0) {
        th_walk(sp, lo, hi, fn, params);
        return 0;
    }
    /* split a reduced axis: each thread reduces into a private copy of the output */
    size_t bytes = (size_t)out_count * out_itemsize;
    char *partials = (char *)malloc(bytes * (size_t)nthreads);
    if (!partials) return -1;
    char *out = sp->base[0];
    /* the output may be strided on kept axes; partial copies use the same layout offsets,
     * so give each thread a contiguous image of the output span */
    int64_t span_lo = 0, span_hi = 0;
    for (int d = 0; d < sp->ndim; ++d) {
        int64_t s = sp->strides[0][d] * (sp->shape[d] - 1);
        if (s < 0) span_lo += s; else span_hi += s;
    }
    size_t span = (size_t)(span_hi - span_lo) + out_itemsize;
    if (span > bytes) {
        free(partials);
        partials = (char *)malloc(span * (size_t)nthreads);
        if (!partials) return -1;
        bytes = span;
    }
    #pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        char *mine = partials + bytes * (size_t)t;
        memcpy(mine, out + span_lo, span);
        th_space local = *sp;
        local.base[0] = mine - span_lo;
        int64_t my_lo[TH_MAXDIMS], my_hi[TH_MAXDIMS];
        memcpy(my_lo, lo, sizeof(lo));
        memcpy(my_hi, hi, sizeof(hi));
        int64_t n = sp->shape[axis];
        my_lo[axis] = n * t / nt;
        my_hi[axis] = n * (t + 1) / nt;
        th_walk(&local, my_lo, my_hi, fn, params);
    }
    for (int t = 0; t < nthreads; ++t)
        combine((int64_t)span / (int64_t)out_itemsize, out + span_lo,
                partials + bytes * (size_t)t);
    free(partials);
    return 0;
}
