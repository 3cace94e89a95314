"""GreeDi (Mirzasoleiman et al. 2013): facility location for classes too large for one matrix.

A class whose ``n x n`` float32 distance matrix exceeds the memory budget is split at random
into parts that fit; each part selects ``min(k, |part|)`` candidates with the backend's greedy;
the union is reselected by :func:`greedi_merge`, a *weighted* facility location in which each
candidate stands for the part members it covered (its weight), so the merge optimises an
estimate of the whole class's objective rather than the candidates' alone. As in GreeDi, the
merged set is compared with the best single part's set on the full class, and the better one
is kept. A union that itself exceeds the budget is merged recursively.

:func:`greedi_merge` takes nothing but candidate features and weights, so the same call merges
candidates that several storage hosts selected from their own shards.

Degenerate case: when ``k`` is so large that no part can shrink (``min(k, |part|) = |part|``
for every part), the budget is split over the parts in proportion to their sizes and the
parts' selections are returned as they are (no merge can be held in memory then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from host._distances import distances_to, matrix_bytes
from host.facility_location import DEFAULT_EPSILON, Optimizer, facility_location, nearest, objective

__all__ = ["GreediResult", "greedi", "greedi_merge", "part_size", "max_pairwise_distance", "split_budget"]

#: backend greedy: (features, k, *, optimizer, seed, epsilon, max_dist) -> (ids, counts, objective)
GreedyFn = Callable[..., tuple[np.ndarray, np.ndarray, float]]


@dataclass(frozen=True)
class GreediResult:
    ids: np.ndarray  # int64 [k], local to the features passed in
    weights: np.ndarray  # float64 [k], (weighted) member counts over the whole input
    objective: float
    parts: int  # number of parts at the top level (1: no partitioning)
    merged: bool  # False when a single part's set (or the proportional split) won


def part_size(memory_budget_bytes: int) -> int:
    """Largest class size whose float32 distance matrix fits ``memory_budget_bytes``."""
    p = int(math.isqrt(max(0, int(memory_budget_bytes)) // 4))
    if p < 2:
        raise ValueError(f"memory_budget_bytes={memory_budget_bytes} is too small (needs >= 16 bytes)")
    return p


def max_pairwise_distance(x: np.ndarray, *, block_bytes: int = 256 << 20) -> float:
    """Largest pairwise distance among the rows of ``x``, in blocks of at most ``block_bytes``."""
    n = x.shape[0]
    rows = max(1, block_bytes // max(1, 4 * n))
    mx = 0.0
    for r0 in range(0, n, rows):
        mx = max(mx, float(distances_to(x, x[r0 : r0 + rows]).max()))
    return mx


def split_budget(k: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``k`` over groups in proportion to ``sizes`` (largest remainder, capped by size,
    ties to the lower group index); sums to ``min(k, sizes.sum())``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    k = min(int(k), total)
    if total == 0:
        return np.zeros_like(sizes)
    exact = sizes * (k / total)
    out = np.minimum(np.floor(exact).astype(np.int64), sizes)
    rest = k - int(out.sum())
    order = np.lexsort((np.arange(len(sizes)), -(exact - out)))
    while rest > 0:
        for g in order:
            if rest == 0:
                break
            if out[g] < sizes[g]:
                out[g] += 1
                rest -= 1
    return out


def greedi_merge(
    candidates: np.ndarray,
    candidate_weights: np.ndarray,
    k: int,
    *,
    optimizer: str | Optimizer = Optimizer.LAZY,
    seed: int = 0,
    epsilon: float = DEFAULT_EPSILON,
    max_dist: float | None = None,
    memory_budget_bytes: int = 2 << 30,
) -> GreediResult:
    """Select ``k`` of ``candidates`` (features ``[u, d]``, each standing for
    ``candidate_weights[u]`` members) by weighted facility location; ``ids`` index
    ``candidates``, ``weights`` are the re-assigned candidate weights (sum preserved)."""
    x = np.ascontiguousarray(candidates, dtype=np.float32)
    w = np.ascontiguousarray(candidate_weights, dtype=np.float64)
    if x.ndim != 2 or w.shape != (x.shape[0],):
        raise ValueError(f"candidates [u, d] and candidate_weights [u] disagree: {x.shape} vs {w.shape}")
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be in [1, {x.shape[0]}] candidates, got {k}")
    if matrix_bytes(x.shape[0]) <= memory_budget_bytes:
        r = facility_location(x, k, optimizer=optimizer, seed=seed, epsilon=epsilon, max_dist=max_dist, member_weights=w)
        return GreediResult(ids=r.ids, weights=r.weights, objective=r.objective, parts=1, merged=True)
    if max_dist is None:
        max_dist = max_pairwise_distance(x)
    return _greedi(x, w, k, None, optimizer, seed, epsilon, max_dist, memory_budget_bytes)


def greedi(
    features: np.ndarray,
    k: int,
    *,
    greedy: GreedyFn | None = None,
    optimizer: str | Optimizer = Optimizer.LAZY,
    seed: int = 0,
    epsilon: float = DEFAULT_EPSILON,
    max_dist: float | None = None,
    memory_budget_bytes: int = 2 << 30,
) -> GreediResult:
    """Partitioned greedy for one (unweighted) class; ``greedy`` is the backend's per-part
    greedy (CPU when None). ``max_dist`` defaults to the class's largest pairwise distance."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be in [1, {x.shape[0] if x.ndim == 2 else 0}] for features [n, d] of shape {x.shape}, got {k}")
    if max_dist is None:
        max_dist = max_pairwise_distance(x)
    return _greedi(x, None, k, greedy, optimizer, seed, epsilon, max_dist, memory_budget_bytes)


def _part_select(xp, wp, kp, greedy, optimizer, seed, epsilon, max_dist):
    """(ids local to the part, weights) with the backend greedy when unweighted."""
    if wp is None and greedy is not None:
        ids, counts, _ = greedy(xp, kp, optimizer=optimizer, seed=seed, epsilon=epsilon, max_dist=max_dist)
        return np.asarray(ids, np.int64), np.asarray(counts, np.float64)
    r = facility_location(xp, kp, optimizer=optimizer, seed=seed, epsilon=epsilon, max_dist=max_dist, member_weights=wp)
    return r.ids, r.weights


def _greedi(x, w, k, greedy, optimizer, seed, epsilon, max_dist, budget) -> GreediResult:
    n = x.shape[0]
    p = part_size(budget)
    rng = np.random.default_rng(seed)
    m = math.ceil(n / p)
    parts = np.array_split(rng.permutation(n), m)
    sizes = np.array([len(q) for q in parts])
    per_part = np.minimum(sizes, k)
    proportional = int(per_part.sum()) >= n  # no part can shrink: split k instead
    if proportional:
        per_part = split_budget(k, sizes)
    cand: list[np.ndarray] = []
    cand_w: list[np.ndarray] = []
    for i, (q, kp) in enumerate(zip(parts, per_part)):
        if kp == 0:
            continue
        ids, wts = _part_select(x[q], None if w is None else w[q], int(kp), greedy, optimizer, seed + i, epsilon, max_dist)
        cand.append(q[ids])
        cand_w.append(wts)
    if proportional:
        chosen = np.concatenate(cand)
        merged = False
    else:
        union = np.concatenate(cand)
        uw = np.concatenate(cand_w)
        r = greedi_merge(x[union], uw, k, optimizer=optimizer, seed=seed, epsilon=epsilon, max_dist=max_dist, memory_budget_bytes=budget)
        chosen = union[r.ids]
        merged = True
        # GreeDi keeps the better of the merged set and the best single part's set.
        best = objective(x, chosen, max_dist=max_dist, member_weights=w)
        for c in cand:
            if len(c) == k:
                f = objective(x, c, max_dist=max_dist, member_weights=w)
                if f > best:
                    best, chosen, merged = f, c, False
    owner = nearest(x, chosen)
    weights = np.bincount(owner, weights=w, minlength=len(chosen)).astype(np.float64)
    obj = objective(x, chosen, max_dist=max_dist, member_weights=w)
    return GreediResult(ids=np.asarray(chosen, np.int64), weights=weights, objective=obj, parts=m, merged=merged)
