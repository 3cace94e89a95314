"""Mini-batch coresets from random pools: the selection math of NeSSA-PA and CREST.

    candidates --draw_pools--> R pools of P ids (disjoint while the candidates last)
        --features of the pools only--> per pool: facility location picks exactly b of P,
        split over the classes in proportion to their members in the pool (host.selection,
        Budget.GLOBAL), weights = cluster sizes normalised to sum b
    -> R ordered mini-batches of b (ids, weights)

A pool's weights are bounded by P / b-ish cluster sizes (a whole-class coreset's reach ~100x
its mean weight; a pool's cannot exceed P), and every mini-batch is a fresh draw: the two
reasons mini-batch coresets train better than one held whole-data coreset (CREST, NeSSA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["draw_pools", "minibatch_coresets", "losses_from_features", "MinibatchSelection"]


@dataclass(frozen=True)
class MinibatchSelection:
    """``ids``/``weights`` aligned, ``batch_size`` rows per mini-batch, in training order."""

    ids: np.ndarray  # int64 [R * b] ids of the candidates given (global ids)
    weights: np.ndarray  # float32 [R * b]
    batch_size: int
    num_batches: int
    objective: float


def draw_pools(candidates: np.ndarray, num_pools: int, pool_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``num_pools`` pools of ``pool_size`` distinct candidates each, disjoint while the
    candidates last (cut from one permutation; a new permutation when it runs out)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if num_pools < 1 or pool_size < 1:
        raise ValueError(f"need num_pools >= 1 and pool_size >= 1, got {num_pools} and {pool_size}")
    if len(candidates) == 0:
        raise ValueError("no candidates to draw pools from")
    pool_size = min(pool_size, len(candidates))
    pools, order, pos = [], rng.permutation(candidates), 0
    for _ in range(num_pools):
        if pos + pool_size > len(order):
            order, pos = rng.permutation(candidates), 0
        pools.append(order[pos : pos + pool_size])
        pos += pool_size
    return pools


def losses_from_features(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy loss per example from its gradient proxy ``softmax - onehot``: the true
    class's entry is ``p_y - 1``, so the loss ``-log p_y`` costs no extra forward pass."""
    labels = np.asarray(labels, dtype=np.int64)
    p_y = 1.0 + features[np.arange(len(labels)), labels].astype(np.float64)
    return (-np.log(np.clip(p_y, 1e-12, 1.0))).astype(np.float32)


def minibatch_coresets(features: np.ndarray, labels: np.ndarray, ids: np.ndarray, pools: list[np.ndarray],
                       batch_size: int, *, backend: str = "cpu", seed: int = 0) -> MinibatchSelection:
    """One weighted coreset of exactly ``min(batch_size, pool)`` per pool.

    ``features``/``labels`` are aligned with ``ids`` (the union of the pools, global ids);
    ``pools`` hold global ids. Each pool runs per-class lazy greedy on ``backend`` with one
    budget of ``batch_size`` split over the classes in proportion to their pool members.
    """
    from host.selection import Budget, select

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids = np.asarray(ids, dtype=np.int64)
    where = {int(g): i for i, g in enumerate(ids)}
    out_ids, out_w, objective = [], [], 0.0
    for p, pool in enumerate(pools):
        rows = np.fromiter((where[int(g)] for g in pool), dtype=np.int64, count=len(pool))
        b = min(batch_size, len(rows))
        if b == len(rows):  # nothing to choose: the pool is the batch
            out_ids.append(ids[rows])
            out_w.append(np.ones(b, np.float32))
            continue
        sel = select(features[rows], labels[rows], b / len(rows), budget=Budget.GLOBAL, backend=backend,
                     seed=seed * 1_000_003 + p, optimizer="lazy")
        local = np.asarray(sel.ids, dtype=np.int64)
        out_ids.append(ids[rows[local]])
        out_w.append(np.asarray(sel.weights, dtype=np.float32))
        objective += float(sel.objective)
    b = min(batch_size, min(len(p) for p in pools))
    return MinibatchSelection(np.concatenate(out_ids), np.concatenate(out_w), b, len(pools), objective)
