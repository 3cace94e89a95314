"""Numba kernels for float greedy facility location over a distance matrix (CPU backend).

The greedy works on the class's distance matrix ``D`` (float32, ``D[j, i] = ||g_j - g_i||``)
and the vector ``dc[i] = min(max_dist, min_{j in S} D[j, i])`` (distance of member ``i`` to
its closest selected element, ``max_dist`` while nothing covers it). With the similarity
``s(i, j) = max_dist - D[j, i]`` and ``cover[i] = max(0, max_{j in S} s(i, j)) = max_dist - dc[i]``::

    gain[j] = sum_i w_i * max(0, s(i, j) - cover[i]) = sum_i w_i * max(0, dc[i] - D[j, i])

so the similarity matrix is never materialised and ``max_dist`` only enters through the
initial ``dc``. ``objective = sum_i w_i * (max_dist - dc[i])``.

Exactness (why lazy == naive bit for bit): every gain, in every optimizer, is computed by
``_gain`` below: ``v = dc[i] - D[j, i]`` in float32, clipped at 0, accumulated in float64
into 8 lanes in a fixed order, lanes summed in a fixed order. No fastmath, so LLVM may not
reorder it whatever it inlines into. Since ``dc`` only decreases, each term only decreases,
and rounded addition is monotone, so a computed gain never exceeds an earlier computed gain
of the same candidate: stale heap entries are true upper bounds of what naive would compute.
The heap orders by (gain desc, index asc) and only a freshly evaluated top is selected, so
ties go to the lowest index exactly as in naive's ``argmax``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__: list[str] = []  # internal module

_JIT = dict(cache=True, nogil=True)


@nb.njit(**_JIT)
def _gain(row, dc, w, weighted):
    """sum_i w_i * max(0, dc[i] - row[i]) with a fixed evaluation order (see module doc)."""
    n = row.shape[0]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    n8 = n - n % 8
    zero = np.float32(0.0)
    if weighted:
        for i in range(0, n8, 8):
            a0 += w[i] * max(dc[i] - row[i], zero)
            a1 += w[i + 1] * max(dc[i + 1] - row[i + 1], zero)
            a2 += w[i + 2] * max(dc[i + 2] - row[i + 2], zero)
            a3 += w[i + 3] * max(dc[i + 3] - row[i + 3], zero)
            a4 += w[i + 4] * max(dc[i + 4] - row[i + 4], zero)
            a5 += w[i + 5] * max(dc[i + 5] - row[i + 5], zero)
            a6 += w[i + 6] * max(dc[i + 6] - row[i + 6], zero)
            a7 += w[i + 7] * max(dc[i + 7] - row[i + 7], zero)
        for i in range(n8, n):
            a0 += w[i] * max(dc[i] - row[i], zero)
    else:
        for i in range(0, n8, 8):
            a0 += max(dc[i] - row[i], zero)
            a1 += max(dc[i + 1] - row[i + 1], zero)
            a2 += max(dc[i + 2] - row[i + 2], zero)
            a3 += max(dc[i + 3] - row[i + 3], zero)
            a4 += max(dc[i + 4] - row[i + 4], zero)
            a5 += max(dc[i + 5] - row[i + 5], zero)
            a6 += max(dc[i + 6] - row[i + 6], zero)
            a7 += max(dc[i + 7] - row[i + 7], zero)
        for i in range(n8, n):
            a0 += max(dc[i] - row[i], zero)
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@nb.njit(**_JIT)
def _update(row, dc):
    for i in range(dc.shape[0]):
        if row[i] < dc[i]:
            dc[i] = row[i]


@nb.njit(**_JIT)
def _all_gains(D, dc, w, weighted, selected, out):
    for j in range(D.shape[0]):
        out[j] = -1.0 if selected[j] else _gain(D[j], dc, w, weighted)


@nb.njit(**_JIT)
def naive_greedy(D, k, dc, w, weighted):
    """Re-evaluate every unselected candidate each step. ``dc`` is updated in place."""
    n = D.shape[0]
    ids = np.empty(k, np.int64)
    gains = np.empty(k, np.float64)
    selected = np.zeros(n, np.bool_)
    g = np.empty(n, np.float64)
    for t in range(k):
        _all_gains(D, dc, w, weighted, selected, g)
        j = 0
        best = -2.0
        for c in range(n):  # strict '>' keeps the lowest index on ties
            if g[c] > best:
                best = g[c]
                j = c
        ids[t] = j
        gains[t] = g[j]
        selected[j] = True
        _update(D[j], dc)
    return ids, gains


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


@nb.njit(**_JIT)
def lazy_greedy(D, k, dc, w, weighted):
    """Minoux's lazy greedy; returns (ids, gains, evaluations). Same result as naive_greedy."""
    n = D.shape[0]
    ids = np.empty(k, np.int64)
    gains = np.empty(k, np.float64)
    hg = np.empty(n, np.float64)
    hi = np.arange(n).astype(np.int64)
    stamp = np.zeros(n, np.int64)  # step at which the bound was last evaluated
    selected = np.zeros(n, np.bool_)
    _all_gains(D, dc, w, weighted, selected, hg)
    evals = n
    for pos in range(n // 2 - 1, -1, -1):
        _sift_down(hg, hi, pos, n)
    size = n
    for t in range(k):
        while True:
            j = hi[0]
            if stamp[j] == t:
                break
            hg[0] = _gain(D[j], dc, w, weighted)
            stamp[j] = t
            evals += 1
            _sift_down(hg, hi, 0, size)
        ids[t] = j
        gains[t] = hg[0]
        size -= 1
        hg[0] = hg[size]
        hi[0] = hi[size]
        _sift_down(hg, hi, 0, size)
        _update(D[j], dc)
        # Bounds evaluated at step t are stale from step t+1 on (stamp t != t+1).
    return ids, gains, evals


@nb.njit(**_JIT)
def stochastic_greedy(D, k, dc, w, weighted, sample_size, seed):
    """Stochastic greedy (Mirzasoleiman et al. 2015): best of a random sample per step.

    The sample is drawn without replacement from the unselected candidates (a partial
    Fisher-Yates shuffle over the pool); ties within a sample go to the lowest index.
    """
    n = D.shape[0]
    np.random.seed(seed)
    ids = np.empty(k, np.int64)
    gains = np.empty(k, np.float64)
    pool = np.arange(n).astype(np.int64)
    remaining = n
    for t in range(k):
        s = min(sample_size, remaining)
        best = -1.0
        best_pos = -1
        for a in range(s):
            b = a + np.random.randint(0, remaining - a)
            pool[a], pool[b] = pool[b], pool[a]
            c = pool[a]
            g = _gain(D[c], dc, w, weighted)
            if g > best or (g == best and c < pool[best_pos]):
                best = g
                best_pos = a
        j = pool[best_pos]
        ids[t] = j
        gains[t] = best
        remaining -= 1
        pool[best_pos] = pool[remaining]
        pool[remaining] = j
        _update(D[j], dc)
    return ids, gains


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


@nb.njit(parallel=True, cache=True, nogil=True)
def finish_distances(block, sq_rows, sq_all, row0):
    """In place: block[r, i] = sqrt(max(sq_rows[r] + sq_all[i] - 2 * block[r, i], 0)), where
    ``block`` holds the Gram rows ``X[row0:row0+b] @ X.T``; the diagonal is set to 0 exactly.
    Returns the block's maximum."""
    b, n = block.shape
    mx = np.zeros(b, np.float32)
    for r in nb.prange(b):
        m = np.float32(0.0)
        sr = sq_rows[r]
        for i in range(n):
            v = sr + sq_all[i] - np.float32(2.0) * block[r, i]
            v = np.float32(np.sqrt(v)) if v > 0 else np.float32(0.0)
            block[r, i] = v
            if v > m:
                m = v
        block[r, row0 + r] = 0.0
        mx[r] = m
    return mx.max() if b > 0 else np.float32(0.0)
