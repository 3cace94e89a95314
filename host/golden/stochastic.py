"""Golden *stochastic* greedy facility location (bit-exact contract of ``nessa_greedy`` mode 1).

Same similarity rows, cover vector, gains, tie rule and weights as :mod:`host.golden.greedy`;
only the candidate set per step differs:

* PRNG: xorshift32 (Marsaglia 2003, shifts 13/17/5) on a ``uint32`` state seeded by
  ``seed_state(seed) = (seed * 0x9E3779B1 + 0x6D2B79F5) mod 2**32``, replaced by 1 if 0.
* A pool holds the unselected candidates (initially ``0..n-1`` in order), ``m`` of them.
* Step t: ``s = min(sample_size, m)``. Partial Fisher-Yates: for ``r`` in ``0..s-1``,
  ``x = next()``, ``p = r + x % (m - r)``, swap ``pool[r]`` and ``pool[p]``. The candidates are
  ``pool[0..s)``. The winner is the candidate with the largest exact gain, ties to the lowest
  candidate *index* (not pool position). The winner is removed by swapping its pool slot with
  ``pool[m-1]`` and ``m -= 1``; the cover is updated as in exact mode.
* ``sample_size`` is computed by the host, never in the kernel (no floats on chip):
  ``stochastic_sample_size(n, k, epsilon) = min(n, ceil(n / k * ln(1 / epsilon)))``
  (Mirzasoleiman et al. 2015).
"""

from __future__ import annotations

import math

import numpy as np

from host.golden.greedy import GreedyResult

__all__ = ["seed_state", "xorshift32", "stochastic_sample_size", "greedy_stochastic_fixed"]

_M32 = 0xFFFFFFFF


def seed_state(seed: int) -> int:
    """Initial xorshift32 state for an integer seed (any int; reduced mod 2**32)."""
    s = ((int(seed) & _M32) * 0x9E3779B1 + 0x6D2B79F5) & _M32
    return s or 1


def xorshift32(state: int) -> int:
    """One xorshift32 step; returns the new state (which is also the output)."""
    state ^= (state << 13) & _M32
    state ^= state >> 17
    state ^= (state << 5) & _M32
    return state


def stochastic_sample_size(n: int, k: int, epsilon: float) -> int:
    """Candidates per step: ``min(n, ceil(n / k * ln(1 / epsilon)))``, at least 1."""
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    return max(1, min(n, math.ceil(n / k * math.log(1.0 / epsilon))))


def greedy_stochastic_fixed(sim: np.ndarray, k: int, seed: int, sample_size: int) -> GreedyResult:
    """Stochastic greedy over integer similarity rows (see module docstring)."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square matrix, got shape {sim.shape}")
    if not np.issubdtype(sim.dtype, np.unsignedinteger):
        raise ValueError(f"sim must be unsigned integers, got {sim.dtype}")
    n = sim.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if sample_size < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size}")
    s = sim.astype(np.int64)
    cover = np.zeros(n, dtype=np.int64)
    pool = list(range(n))
    m = n
    state = seed_state(seed)
    ids = np.empty(k, dtype=np.int64)
    gains = np.empty(k, dtype=np.uint64)
    for t in range(k):
        cnt = min(sample_size, m)
        for r in range(cnt):
            state = xorshift32(state)
            p = r + state % (m - r)
            pool[r], pool[p] = pool[p], pool[r]
        cand = np.array(pool[:cnt], dtype=np.int64)
        g = np.maximum(s[cand] - cover[None, :], 0).sum(axis=1)
        best = g.max()
        j = int(cand[g == best].min())  # ties to the lowest candidate index
        ids[t] = j
        gains[t] = best
        pos = pool.index(j, 0, cnt)
        pool[pos], pool[m - 1] = pool[m - 1], pool[pos]
        m -= 1
        np.maximum(cover, s[j], out=cover)
    order = np.sort(ids)
    assigned = order[np.argmax(s[order], axis=0)]
    counts = np.bincount(assigned, minlength=n)
    return GreedyResult(ids=ids, gains=gains, weights=counts[ids].astype(np.int64), objective=int(cover.sum()))
