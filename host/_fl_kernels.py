"""Numba kernels for float greedy facility location over a distance matrix (CPU backend).

The greedy works on the class's distance matrix ``D`` (float32, ``D[j, i] = ||g_j - g_i||``)
and the vector ``dc[i] = min(max_dist, min_{j in S} D[j, i])`` (distance of member ``i`` to
its closest selected element, ``max_dist`` while nothing covers it). With the similarity
``s(i, j) = max_dist - D[j, i]`` and ``cover[i] = max(0, max_{j in S} s(i, j)) = max_dist - dc[i]``::

    gain[j] = sum_i w_i * max(0, s(i, j) - cover[i]) = sum_i w_i * max(0, dc[i] - D[j, i])

so the similarity matrix is never materialised and ``max_dist`` only enters through the
initial ``dc``. ``objective = sum_i w_i * (max_dist - dc[i])``.

Exactness (why lazy == naive bit for bit): every gain, in every optimizer, is computed by the
same machine code (``_gain``, reached from a single call site inside the one ``greedy``
kernel), so a row's gain for a given ``dc`` is the same bits whichever optimizer asks. Since
``dc`` only decreases, every term only decreases, and rounded addition is monotone for a
fixed summation tree, a recomputed gain never exceeds an earlier one of the same candidate:
stale heap entries are true upper bounds of what naive would compute now. The heap orders by
(gain desc, index asc) and only a freshly evaluated top is selected, so ties go to the lowest
index exactly as in naive's argmax.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__: list[str] = []  # internal module

_JIT = dict(cache=True, nogil=True)


@nb.njit(fastmath=True, cache=True, nogil=True)
def _gain(row, dc, w, weighted):
    """sum_i w_i * max(0, dc[i] - row[i]) (float32 terms, float64 accumulation, SIMD).

    fastmath lets LLVM vectorise the reduction, i.e. pick its own summation tree. That tree is
    a property of the compiled code, so this function is only ever called from one site
    (``_evaluate``, inside the single ``greedy`` kernel): every optimizer then evaluates a row
    with the very same instructions, which is what makes lazy == naive bit for bit.
    """
    s = 0.0
    zero = np.float32(0.0)
    if weighted:
        for i in range(row.shape[0]):
            s += w[i] * max(dc[i] - row[i], zero)
    else:
        for i in range(row.shape[0]):
            s += max(dc[i] - row[i], zero)
    return s


@nb.njit(**_JIT)
def _evaluate(D, cands, m, dc, w, weighted, out):
    for a in range(m):
        out[a] = _gain(D[cands[a]], dc, w, weighted)


@nb.njit(fastmath=True, cache=True, nogil=True)
def _update(row, dc):
    for i in range(dc.shape[0]):
        dc[i] = min(dc[i], row[i])


@nb.njit(**_JIT)
def _before(g_a, i_a, g_b, i_b):
    """Heap order: larger gain first, then lower index."""
    return g_a > g_b or (g_a == g_b and i_a < i_b)


@nb.njit(**_JIT)
def _sift_down(hg, hi, pos, size):
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        best = left
        right = left + 1
        if right < size and _before(hg[right], hi[right], hg[left], hi[left]):
            best = right
        if _before(hg[best], hi[best], hg[pos], hi[pos]):
            hg[pos], hg[best] = hg[best], hg[pos]
            hi[pos], hi[best] = hi[best], hi[pos]
            pos = best
        else:
            return


NAIVE, LAZY, STOCHASTIC = 0, 1, 2


@nb.njit(**_JIT)
def greedy(D, k, dc, w, weighted, mode, sample_size, seed):
    """All three optimizers; returns (ids, gains, evaluations); ``dc`` is updated in place.

    * NAIVE: every step evaluates all unselected candidates, argmax (first index on ties).
    * LAZY (Minoux): evaluate all once, heap of bounds ordered (gain desc, index asc); pop the
      top, re-evaluate it if its bound is from an earlier step, select it once it is fresh.
    * STOCHASTIC (Mirzasoleiman et al. 2015): evaluate ``sample_size`` candidates drawn without
      replacement from the unselected ones (partial Fisher-Yates), take the best (lowest
      index on ties).

    The loop is written so that ``_evaluate`` has exactly one call site (see ``_gain``).
    """
    n = D.shape[0]
    np.random.seed(seed)
    ids = np.empty(k, np.int64)
    gains = np.empty(k, np.float64)
    pool = np.arange(n).astype(np.int64)  # naive/stochastic: unselected first; lazy: heap ids
    hg = np.empty(n, np.float64)  # gains of evaluated candidates (lazy: heap keys)
    stamp = np.full(n, -1, np.int64)  # lazy: step at which a bound was evaluated
    remaining = n  # unselected candidates (naive/stochastic: pool[:remaining])
    size = n  # lazy heap size
    evals = 0
    t = 0
    one = np.empty(1, np.int64)
    val = np.empty(1, np.float64)
    initialised = False
    while t < k:
        # 1. which candidates to evaluate now
        if mode == LAZY and initialised:
            one[0] = pool[0]
            cands, m, out = one, 1, val
        elif mode == STOCHASTIC:
            m = min(sample_size, remaining)
            for a in range(m):
                b = a + np.random.randint(0, remaining - a)
                pool[a], pool[b] = pool[b], pool[a]
            cands, out = pool, hg
        else:  # naive step, or lazy's first full pass
            cands, m, out = pool, remaining, hg
        # 2. the one and only evaluation site
        _evaluate(D, cands, m, dc, w, weighted, out)
        evals += m
        # 3. act on the values
        if mode == LAZY:
            if not initialised:
                for c in range(n):
                    stamp[c] = 0
                for pos in range(n // 2 - 1, -1, -1):
                    _sift_down(hg, pool, pos, n)
                initialised = True
            else:
                hg[0] = val[0]
                stamp[pool[0]] = t
                _sift_down(hg, pool, 0, size)
            j = pool[0]
            if stamp[j] != t:
                continue  # top is stale: evaluate it next round
            ids[t] = j
            gains[t] = hg[0]
            size -= 1
            hg[0] = hg[size]
            pool[0] = pool[size]
            _sift_down(hg, pool, 0, size)
        else:
            best_pos = 0
            for a in range(1, m):
                if out[a] > out[best_pos] or (out[a] == out[best_pos] and cands[a] < cands[best_pos]):
                    best_pos = a
            j = cands[best_pos]
            ids[t] = j
            gains[t] = out[best_pos]
            remaining -= 1
            pool[best_pos] = pool[remaining]
            pool[remaining] = j
            if mode == NAIVE:  # keep the pool ascending so argmax ties stay lowest-index-first
                pool[:remaining].sort()
        _update(D[j], dc)
        t += 1
    return ids, gains, evals


@nb.njit(**_JIT)
def assign_counts(D, ids, w, weighted):
    """Weight of each selected element: (weighted) count of members whose closest selected
    element it is; ties to the lowest index (not selection order). Aligned with ``ids``."""
    n = D.shape[1]
    order = np.sort(ids)
    best = np.full(n, np.inf, np.float32)
    owner = np.zeros(n, np.int64)
    for r in range(order.shape[0]):  # ascending ids + strict '<': ties keep the lower id
        row = D[order[r]]
        for i in range(n):
            if row[i] < best[i]:
                best[i] = row[i]
                owner[i] = r
    counts = np.zeros(order.shape[0], np.float64)
    for i in range(n):
        counts[owner[i]] += w[i] if weighted else 1.0
    out = np.empty(ids.shape[0], np.float64)
    for t in range(ids.shape[0]):
        out[t] = counts[np.searchsorted(order, ids[t])]
    return out


@nb.njit(fastmath=True, cache=True, nogil=True)
def finish_distances(block, sq_rows, sq_all, row0):
    """In place: block[r, i] = sqrt(max(sq_rows[r] + sq_all[i] - 2 * block[r, i], 0)), where
    ``block`` holds the Gram rows ``X[row0:row0+b] @ X.T``; the diagonal is set to 0 exactly.
    (No max reduction in here: it stops LLVM from vectorising the loop; numpy's max is SIMD.)"""
    b, n = block.shape
    zero = np.float32(0.0)
    two = np.float32(2.0)
    for r in range(b):
        row = block[r]
        s = sq_rows[r]
        for i in range(n):
            row[i] = np.sqrt(max(s + sq_all[i] - two * row[i], zero))
        row[row0 + r] = zero


@nb.njit(fastmath=True, cache=True, nogil=True)
def _count_small(row, s, sq_all, rel):
    c = 0
    for i in range(row.shape[0]):
        c += row[i] * row[i] < rel * (s + sq_all[i])
    return c


@nb.njit(cache=True, nogil=True)
def refine_small(block, xr, x, sq_rows, sq_all, rel, row0):
    """Recompute, by direct differences, the entries where the Gram expansion cancels:
    ``d^2 < rel * (|a|^2 + |b|^2)``. There the float32 expansion's absolute error (a few ulps
    of ``|a|^2 + |b|^2``) is large relative to ``d``; near-duplicates are common in softmax
    features of confident examples. A vectorised count skips rows with nothing to fix (the
    diagonal, exactly 0, is flagged whenever ``|a| > 0``). Returns the entries recomputed."""
    b, n = block.shape
    d = x.shape[1]
    fixed = 0
    for r in range(b):
        row = block[r]
        s = sq_rows[r]
        diag = 1 if rel * (s + sq_all[row0 + r]) > 0 else 0
        if _count_small(row, s, sq_all, rel) <= diag:
            continue
        for i in range(n):
            v = row[i]
            if i != row0 + r and v * v < rel * (s + sq_all[i]):
                acc = np.float32(0.0)
                for t in range(d):
                    e = xr[r, t] - x[i, t]
                    acc += e * e
                row[i] = np.sqrt(acc)
                fixed += 1
    return fixed


@nb.njit(cache=True, nogil=True)
def distance_block(block, xr, x, sq_rows, sq_all, rel, row0):
    """Gram rows -> distances in place (``finish_distances``), then ``refine_small``; one
    dispatcher for both, so a process loads one compiled kernel for the distance pass."""
    finish_distances(block, sq_rows, sq_all, row0)
    return refine_small(block, xr, x, sq_rows, sq_all, rel, row0)


@nb.njit(cache=True, nogil=True)
def greedy_weights(D, k, dc, w, weighted, mode, sample_size, seed):
    """``greedy`` followed by ``assign_counts``: (ids, gains, evaluations, weights)."""
    ids, gains, evals = greedy(D, k, dc, w, weighted, mode, sample_size, seed)
    return ids, gains, evals, assign_counts(D, ids, w, weighted)


@nb.njit(fastmath=True, cache=True, nogil=True)
def direct_block(block, xr, xt, row0):
    """``block[r, i] = ||xr[r] - x[i]||`` by direct differences (``xt`` is ``x`` transposed,
    ``[d, n]``): no cancellation at all, and for small ``d`` faster than GEMM + refinement.
    (Indexing ``block[r, i]`` directly, not through a row view, is what lets LLVM vectorise.)"""
    b, n = block.shape
    d = xt.shape[0]
    zero = np.float32(0.0)
    for r in range(b):
        for i in range(n):
            block[r, i] = zero
        for t in range(d):
            a = xr[r, t]
            for i in range(n):
                e = a - xt[t, i]
                block[r, i] += e * e
        for i in range(n):
            block[r, i] = np.sqrt(block[r, i])
        block[r, row0 + r] = zero
