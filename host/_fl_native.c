/* host/_fl_native.c -- inner loops of the CPU selection backend (float greedy facility location).
 *
 * Built by pip as the (optional) extension ``host._fl_native`` and called through ctypes from
 * host/_fl_kernels.py, which documents the math and the exactness argument. Plain C, no Python
 * API: the file is a shared library that happens to be installed where Python keeps extensions.
 * Why C and not a JIT: the selection process then carries no compiler runtime (a JIT's import plus
 * its first dispatch cost ~125 MiB of resident memory, more than a 2,000-member class's matrix).
 *
 *   features --[numpy SGEMM, 32 MiB row blocks]--> Gram block --[nessa_distance_block]--> D block
 *   (d <= 16: features --[nessa_direct_block]--> D block)
 *   D (n x n), dc = max_dist --[nessa_greedy_weights: naive | lazy | stochastic]--> ids, gains, weights
 *
 * Contract (all arrays C-contiguous, checked by the Python side):
 *   D / block: float32 rows of length ld (= n), D[j][i] = ||x_j - x_i||; dc: float32[n], in/out;
 *   w: float64[n] member weights when weighted != 0 (else ignored); ids: int64[k]; gains,
 *   weights: float64[k]. Return values < 0 are errors (NESSA_ENOMEM, NESSA_EARG).
 *
 * Exactness: every gain is computed by the one function gain(), called from one site, so a row's
 * gain for a given dc is the same bits whichever optimizer asks (lazy == naive bit for bit). The
 * reassociation flags (setup: -fassociative-math ...) let the compiler vectorise its reduction;
 * the summation tree is then fixed per process (one ISA clone is chosen at load time).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NESSA_ENOMEM (-1)
#define NESSA_EARG (-2)

/* Hot loops get AVX-512 / AVX2 clones chosen at load time (GCC/clang ifunc on x86-64 Linux):
 * a portable build then still runs at the host's vector width, as a JIT would. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(NESSA_NO_CLONES)
#define NESSA_SIMD __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NESSA_SIMD
#endif

enum { MODE_NAIVE = 0, MODE_LAZY = 1, MODE_STOCHASTIC = 2 };

/* ------------------------------------------------------------------------- gains and cover */

/* sum_i w_i * max(0, dc[i] - row[i]): float32 terms, float64 accumulation. noinline + a single
 * call site (evaluate) keep one summation tree for every optimizer. */
NESSA_SIMD __attribute__((noinline)) static double gain(const float *row, const float *dc, const double *w,
                                                        int weighted, int64_t n)
{
    double s = 0.0;
    if (weighted) {
    weighted_terms:
        for (int64_t i = 0; i < n; i++) {
            float t = dc[i] - row[i];
            s += w[i] * (double)(t > 0.0f ? t : 0.0f);
        }
    } else {
    plain_terms:
        for (int64_t i = 0; i < n; i++) {
            float t = dc[i] - row[i];
            s += (double)(t > 0.0f ? t : 0.0f);
        }
    }
    return s;
}

static void evaluate(const float *D, int64_t n, const int64_t *cands, int64_t m, const float *dc, const double *w,
                     int weighted, double *out)
{
candidates:
    for (int64_t a = 0; a < m; a++)
        out[a] = gain(D + cands[a] * n, dc, w, weighted, n);
}

NESSA_SIMD static void update_cover(const float *row, float *dc, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dc[i] = row[i] < dc[i] ? row[i] : dc[i];
}

/* ------------------------------------------------------------------------- lazy heap */

/* Heap order: larger gain first, then lower index (ties go to the lowest index, as naive's argmax). */
static inline int before(double ga, int64_t ia, double gb, int64_t ib)
{
    return ga > gb || (ga == gb && ia < ib);
}

static void sift_down(double *hg, int64_t *hi, int64_t pos, int64_t size)
{
    for (;;) {
        int64_t left = 2 * pos + 1, best, right = left + 1;
        if (left >= size)
            return;
        best = left;
        if (right < size && before(hg[right], hi[right], hg[left], hi[left]))
            best = right;
        if (!before(hg[best], hi[best], hg[pos], hi[pos]))
            return;
        double g = hg[pos];
        int64_t i = hi[pos];
        hg[pos] = hg[best];
        hi[pos] = hi[best];
        hg[best] = g;
        hi[best] = i;
        pos = best;
    }
}

/* ------------------------------------------------------------------------- stochastic draws */

/* splitmix64: a seeded, portable stream (the draw is part of the result, so no platform RNG). */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound), bound >= 1, unbiased (Lemire's multiply-shift with rejection). */
static uint64_t below(uint64_t *state, uint64_t bound)
{
    unsigned __int128 p = (unsigned __int128)next_u64(state) * bound;
    uint64_t lo = (uint64_t)p;
    if (lo < bound) {
        uint64_t floor = (0 - bound) % bound;
        while (lo < floor) {
            p = (unsigned __int128)next_u64(state) * bound;
            lo = (uint64_t)p;
        }
    }
    return (uint64_t)(p >> 64);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------- greedy + weights */

static int64_t greedy(const float *D, int64_t n, int64_t k, float *dc, const double *w, int weighted, int mode,
                      int64_t sample_size, uint64_t seed, int64_t *ids, double *gains, int64_t *pool, double *hg,
                      int64_t *stamp)
{
    uint64_t rng = seed;
    int64_t remaining = n, size = n, evals = 0, t = 0, one = 0;
    double val = 0.0;
    int initialised = 0;
    for (int64_t c = 0; c < n; c++) {
        pool[c] = c;
        stamp[c] = -1;
    }
steps:
    while (t < k) {
        /* 1. which candidates to evaluate now */
        const int64_t *cands;
        int64_t m;
        double *out;
        if (mode == MODE_LAZY && initialised) {
            one = pool[0];
            cands = &one, m = 1, out = &val;
        } else if (mode == MODE_STOCHASTIC) {
            m = sample_size < remaining ? sample_size : remaining;
        draws: /* partial Fisher-Yates over the unselected pool[:remaining] */
            for (int64_t a = 0; a < m; a++) {
                int64_t b = a + (int64_t)below(&rng, (uint64_t)(remaining - a));
                int64_t tmp = pool[a];
                pool[a] = pool[b];
                pool[b] = tmp;
            }
            cands = pool, out = hg;
        } else { /* naive step, or lazy's first full pass */
            cands = pool, m = remaining, out = hg;
        }
        /* 2. the one and only evaluation site */
        evaluate(D, n, cands, m, dc, w, weighted, out);
        evals += m;
        /* 3. act on the values */
        int64_t j;
        if (mode == MODE_LAZY) {
            if (!initialised) {
                for (int64_t c = 0; c < n; c++)
                    stamp[c] = 0;
                for (int64_t pos = n / 2 - 1; pos >= 0; pos--)
                    sift_down(hg, pool, pos, n);
                initialised = 1;
            } else {
                hg[0] = val;
                stamp[pool[0]] = t;
                sift_down(hg, pool, 0, size);
            }
            j = pool[0];
            if (stamp[j] != t)
                continue; /* top is stale: evaluate it next round */
            ids[t] = j;
            gains[t] = hg[0];
            size -= 1;
            hg[0] = hg[size];
            pool[0] = pool[size];
            sift_down(hg, pool, 0, size);
        } else {
            int64_t best = 0;
        argmax:
            for (int64_t a = 1; a < m; a++)
                if (out[a] > out[best] || (out[a] == out[best] && cands[a] < cands[best]))
                    best = a;
            j = cands[best];
            ids[t] = j;
            gains[t] = out[best];
            remaining -= 1;
            pool[best] = pool[remaining];
            pool[remaining] = j;
            if (mode == MODE_NAIVE) /* keep the pool ascending so argmax ties stay lowest-index-first */
                qsort(pool, (size_t)remaining, sizeof(int64_t), cmp_i64);
        }
        update_cover(D + j * n, dc, n);
        t += 1;
    }
    return evals;
}

NESSA_SIMD static void claim_row(const float *row, int64_t r, float *best, int64_t *owner, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int closer = row[i] < best[i];
        best[i] = closer ? row[i] : best[i];
        owner[i] = closer ? r : owner[i];
    }
}

/* Weight of each selected element: (weighted) count of members whose closest selected element it
 * is; ties to the lowest index (not selection order). Aligned with ids. */
static int assign_counts(const float *D, int64_t n, const int64_t *ids, int64_t k, const double *w, int weighted,
                         double *out)
{
    int64_t *order = malloc((size_t)k * sizeof *order), *owner = malloc((size_t)n * sizeof *owner);
    float *best = malloc((size_t)n * sizeof *best);
    double *counts = calloc((size_t)k, sizeof *counts);
    if (!order || !owner || !best || !counts) {
        free(order), free(owner), free(best), free(counts);
        return NESSA_ENOMEM;
    }
    memcpy(order, ids, (size_t)k * sizeof *order);
    qsort(order, (size_t)k, sizeof *order, cmp_i64);
    for (int64_t i = 0; i < n; i++)
        best[i] = INFINITY, owner[i] = 0;
owners: /* ascending ids + strict '<': ties keep the lower id */
    for (int64_t r = 0; r < k; r++)
        claim_row(D + order[r] * n, r, best, owner, n);
    for (int64_t i = 0; i < n; i++)
        counts[owner[i]] += weighted ? w[i] : 1.0;
    for (int64_t t = 0; t < k; t++) {
        int64_t *hit = bsearch(&ids[t], order, (size_t)k, sizeof *order, cmp_i64);
        out[t] = counts[hit - order];
    }
    free(order), free(owner), free(best), free(counts);
    return 0;
}

/* greedy (mode NAIVE / LAZY / STOCHASTIC) then assign_counts. Returns the gain evaluations. */
int64_t nessa_greedy_weights(const float *D, int64_t n, int64_t k, float *dc, const double *w, int32_t weighted,
                             int32_t mode, int64_t sample_size, uint64_t seed, int64_t *ids, double *gains,
                             double *weights)
{
    if (n < 1 || k < 1 || k > n || mode < MODE_NAIVE || mode > MODE_STOCHASTIC ||
        (mode == MODE_STOCHASTIC && sample_size < 1))
        return NESSA_EARG;
    int64_t *pool = malloc((size_t)n * sizeof *pool), *stamp = malloc((size_t)n * sizeof *stamp);
    double *hg = malloc((size_t)n * sizeof *hg);
    int64_t evals = NESSA_ENOMEM;
    if (pool && stamp && hg) {
        evals = greedy(D, n, k, dc, w, weighted, mode, sample_size, seed, ids, gains, pool, hg, stamp);
        if (assign_counts(D, n, ids, k, w, weighted, weights) != 0)
            evals = NESSA_ENOMEM;
    }
    free(pool), free(stamp), free(hg);
    return evals;
}

/* ------------------------------------------------------------------------- distances */

/* D is symmetric, so each row block computes only its upper part (columns >= the block's first
 * row: half the GEMM and finishing work) and nessa_mirror_lower copies the rest. The copy also
 * makes D exactly symmetric, which the two halves of a full GEMM are not (rounding). */

/* In place: row[i] = sqrt(max(s + sq_all[i] - 2 * row[i], 0)) for a Gram row. */
NESSA_SIMD static void finish_row(float *row, float s, const float *sq_all, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = s + sq_all[i] - 2.0f * row[i];
        row[i] = sqrtf(v > 0.0f ? v : 0.0f);
    }
}

NESSA_SIMD static int64_t count_small(const float *row, float s, const float *sq_all, float rel, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        c += row[i] * row[i] < rel * (s + sq_all[i]);
    return c;
}

/* Rows row0 .. row0+b-1 of D (block, row stride n), columns row0 .. n-1, which hold the Gram
 * entries X[row0 + r] . X[i]: turn them into distances (diagonal exactly 0), then recompute by
 * direct differences the entries where the expansion cancels (d^2 < rel * (|a|^2 + |b|^2):
 * near-duplicates). Returns the entries recomputed. */
int64_t nessa_distance_block(float *block, int64_t b, int64_t n, const float *xr, const float *x, int64_t d,
                             const float *sq_rows, const float *sq_all, float rel, int64_t row0)
{
    int64_t fixed = 0, c0 = row0, w = n - row0;
rows:
    for (int64_t r = 0; r < b; r++) {
        float *row = block + r * n, s = sq_rows[r];
        finish_row(row + c0, s, sq_all + c0, w);
        row[row0 + r] = 0.0f;
        int64_t diag = rel * (s + sq_all[row0 + r]) > 0.0f ? 1 : 0;
        if (count_small(row + c0, s, sq_all + c0, rel, w) <= diag)
            continue; /* nothing to fix in this row (the common case) */
    refine:
        for (int64_t i = c0; i < n; i++) {
            float v = row[i];
            if (i != row0 + r && v * v < rel * (s + sq_all[i])) {
                float acc = 0.0f;
                for (int64_t t = 0; t < d; t++) {
                    float e = xr[r * d + t] - x[i * d + t];
                    acc += e * e;
                }
                row[i] = sqrtf(acc);
                fixed += 1;
            }
        }
    }
    return fixed;
}

/* Rows row0 .. row0+b-1 of D, columns row0 .. n-1: ||xr[r] - x[i]|| by direct differences
 * (xt = x transposed, d x n): no cancellation, and for small d faster than GEMM + refinement. */
NESSA_SIMD void nessa_direct_block(float *block, int64_t b, int64_t n, const float *xr, const float *xt, int64_t d,
                                   int64_t row0)
{
rows:
    for (int64_t r = 0; r < b; r++) {
        float *row = block + r * n;
        for (int64_t i = row0; i < n; i++)
            row[i] = 0.0f;
    dims:
        for (int64_t t = 0; t < d; t++) {
            float a = xr[r * d + t];
            const float *col = xt + t * n;
            for (int64_t i = row0; i < n; i++) {
                float e = a - col[i];
                row[i] += e * e;
            }
        }
        for (int64_t i = row0; i < n; i++)
            row[i] = sqrtf(row[i]);
        row[row0 + r] = 0.0f;
    }
}

/* D[i][j] = D[j][i] for rows i in [i0, i1) and every j < i (rows j < i1 must hold their upper
 * part). 64 x 64 tiles, contiguous writes along row i; the tile's 64 source rows stay in cache. */
void nessa_mirror_lower(float *D, int64_t n, int64_t i0, int64_t i1)
{
    enum { T = 64 };
tiles_i:
    for (int64_t ib = i0; ib < i1; ib += T) {
        int64_t ie = ib + T < i1 ? ib + T : i1;
    tiles_j:
        for (int64_t jb = 0; jb < ie; jb += T) {
            int64_t je = jb + T < ie ? jb + T : ie;
            for (int64_t i = ib; i < ie; i++) {
                float *dst = D + i * n;
                for (int64_t j = jb; j < (je < i ? je : i); j++)
                    dst[j] = D[j * n + i];
            }
        }
    }
}
