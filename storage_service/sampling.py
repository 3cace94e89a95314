"""Epoch orders, rank shares and offsets for StreamSamples, and the per-class random subset.

* ``epoch_order(n, seed, epoch)``: a permutation of ``0..n-1`` that depends only on
  ``(seed, epoch)`` (numpy PCG64 seeded by a SeedSequence of both), so every rank and every
  resumed stream computes the same order without talking to each other.
* ``rank_positions(n, rank, world_size)``: rank ``r`` of ``w`` takes positions ``r, r+w, ...``;
  shares are disjoint, together complete, and differ in size by at most one.
* ``batch_share(ids, weights, batch_size, rank, world_size)``: an ordered selection (mini-batch
  coresets in training order) is not shuffled; rank ``r`` of ``w`` takes whole mini-batches
  ``r, r+w, r+2w, ...`` in order, so every rank trains on whole coresets.
* ``start_offset`` counts rows within the rank's share; ``offset == len(share)`` is an empty
  (finished) stream, larger offsets are an error.
"""

from __future__ import annotations

import numpy as np

from host.budget import check_fraction, class_budget

__all__ = [
    "epoch_order",
    "rank_positions",
    "share",
    "batch_share",
    "class_budget",
    "random_subset",
    "rows_per_batch",
    "check_share",
    "MAX_BATCH_BYTES",
    "DEFAULT_BATCH_BYTES",
]

DEFAULT_BATCH_BYTES = 1 << 20
#: Server-side cap on one batch's sample bytes (the message limit is twice this).
MAX_BATCH_BYTES = 64 << 20
_ORDER_DOMAIN = 0x4E655353  # keeps order streams apart from other uses of the same seed
_SUBSET_DOMAIN = 0x52616E64


def check_share(rank: int, world_size: int) -> None:
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """Permutation (int64) of ``range(n)`` for this ``(seed, epoch)``."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([_ORDER_DOMAIN, int(seed), int(epoch)])))
    return rng.permutation(n).astype(np.int64, copy=False)


def rank_positions(n: int, rank: int, world_size: int) -> slice:
    """Positions of rank ``rank``'s share within an order of length ``n`` (a strided slice)."""
    check_share(rank, world_size)
    return slice(rank, n, world_size)


def share(ids: np.ndarray, weights: np.ndarray, *, seed: int, epoch: int, rank: int, world_size: int):
    """``(ids, weights)`` of this rank's share of the epoch's shuffled order."""
    if len(ids) != len(weights):
        raise ValueError(f"{len(ids)} ids but {len(weights)} weights")
    pick = epoch_order(len(ids), seed, epoch)[rank_positions(len(ids), rank, world_size)]
    return ids[pick], weights[pick]


def batch_share(ids: np.ndarray, weights: np.ndarray, *, batch_size: int, rank: int, world_size: int):
    """``(ids, weights)`` of this rank's whole mini-batches ``rank, rank + w, ...`` (file order)."""
    if len(ids) != len(weights):
        raise ValueError(f"{len(ids)} ids but {len(weights)} weights")
    if batch_size < 1 or len(ids) % batch_size:
        raise ValueError(f"{len(ids)} rows are not whole mini-batches of {batch_size}")
    check_share(rank, world_size)
    batches = np.arange(rank, len(ids) // batch_size, world_size, dtype=np.int64)
    pick = (batches[:, None] * batch_size + np.arange(batch_size, dtype=np.int64)).ravel()
    return ids[pick], weights[pick]


def random_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted ids: per class ``class_budget`` ids drawn uniformly without replacement."""
    fraction = check_fraction(fraction)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([_SUBSET_DOMAIN, int(seed)])))
    labels = np.asarray(labels)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.choice(members, size=class_budget(len(members), fraction), replace=False))
    out = np.concatenate(picked) if picked else np.empty(0, np.int64)
    return np.sort(out).astype(np.int64)


def rows_per_batch(row_bytes: int, batch_bytes: int) -> int:
    """Rows in one batch for a target of ``batch_bytes`` sample bytes (0 = default, capped)."""
    target = DEFAULT_BATCH_BYTES if batch_bytes <= 0 else min(int(batch_bytes), MAX_BATCH_BYTES)
    return max(1, target // max(1, int(row_bytes)))
