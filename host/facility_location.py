"""Greedy facility location for one class on the CPU (float32 distances, float64 gains).

Semantics (DESIGN.md, "Selection semantics"):

* ``s(i, j) = max_dist - ||g_i - g_j||`` (plain, not squared, Euclidean distance).
  ``max_dist`` defaults to the class's largest pairwise distance, as in CRAIG, so every
  similarity is >= 0. The greedy *set* does not depend on ``max_dist`` as long as it bounds
  every distance (only the first pick sees it, and there it adds the same ``n * max_dist`` to
  every gain); the *objective value* does. A smaller ``max_dist`` is allowed: negative
  similarities then count as 0 (a member farther than ``max_dist`` from every selected
  element contributes nothing), like the golden model's cover that starts at 0.
* ``F(S) = sum_i w_i max(0, max_{j in S} s(i, j))`` with member weights ``w`` (1 by default;
  GreeDi's merge uses the counts that each candidate stands for).
* Optimizers (:class:`Optimizer`): ``naive`` re-evaluates every candidate each step;
  ``lazy`` (Minoux) gives bit for bit the naive result (same set, same order, ties to the
  lowest index, see :mod:`host._fl_kernels`); ``stochastic`` (Mirzasoleiman et al. 2015)
  takes the best of ``ceil(n / k * ln(1 / epsilon))`` random candidates per step, which is
  ``(1 - 1/e - epsilon)``-optimal in expectation.
* Weight of selected ``j``: the (weighted) number of members whose closest selected element is
  ``j``, ties to the lowest index; weights sum to ``n`` (to ``sum(w)`` when weighted).

Memory: the class's ``n x n`` float32 distance matrix (``4 n^2`` bytes); the selection driver
switches to GreeDi above its memory budget.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from host import _fl_kernels as _k
from host._distances import distances_to, pairwise_distances

__all__ = [
    "Optimizer",
    "DEFAULT_EPSILON",
    "FLResult",
    "facility_location",
    "objective",
    "stochastic_sample_size",
]

#: Default epsilon of the stochastic greedy. At a 10 % budget it samples ceil(10 * ln 100) = 47
#: candidates per step (about 0.47 n evaluations per pick in total, still far below naive's
#: n). apricot's / DeepCore's 0.9 gives ceil(10 * 0.105) = 2 (apricot truncates to 1): the best
#: of one or two random candidates, i.e. essentially a random subset.
DEFAULT_EPSILON = 0.01


class Optimizer(str, enum.Enum):
    """Greedy optimizers (the value is the API / CLI name)."""

    LAZY = "lazy"
    STOCHASTIC = "stochastic"
    NAIVE = "naive"


@dataclass(frozen=True)
class FLResult:
    """One class's greedy outcome; ids are class-local, in selection order."""

    ids: np.ndarray  # int64 [k]
    gains: np.ndarray  # float64 [k], marginal gain of each pick
    weights: np.ndarray  # float64 [k], (weighted) member counts, aligned with ids
    objective: float  # F(S) = sum of gains
    max_dist: float
    evaluations: int  # gain evaluations (naive: about k * n)


def parse_optimizer(optimizer: str | Optimizer) -> Optimizer:
    try:
        return Optimizer(optimizer)
    except ValueError:
        names = ", ".join(o.value for o in Optimizer)
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {names}") from None


def check_epsilon(epsilon: float) -> float:
    eps = float(epsilon)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
    return eps


def stochastic_sample_size(n: int, k: int, epsilon: float = DEFAULT_EPSILON) -> int:
    """Candidates sampled per step: ``ceil(n / k * ln(1 / epsilon))``, within ``[1, n]``."""
    eps = check_epsilon(epsilon)
    return int(min(n, max(1, math.ceil(n / k * math.log(1.0 / eps)))))


def _check_features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array [n, d], got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"features contain NaN or infinite values (first at row {bad})")
    return x


def _member_weights(member_weights: np.ndarray | None, n: int) -> tuple[np.ndarray, bool]:
    if member_weights is None:
        return np.ones(1, np.float64), False
    w = np.ascontiguousarray(member_weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"member_weights must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("member_weights must be finite and >= 0")
    return w, True


def _check_max_dist(max_dist: float | None, default: float) -> float:
    if max_dist is None:
        return float(default)
    m = float(max_dist)
    if not math.isfinite(m) or m < 0:
        raise ValueError(f"max_dist must be finite and >= 0, got {max_dist!r}")
    return m


def facility_location(
    features: np.ndarray,
    k: int,
    *,
    optimizer: str | Optimizer = Optimizer.LAZY,
    seed: int = 0,
    epsilon: float = DEFAULT_EPSILON,
    max_dist: float | None = None,
    member_weights: np.ndarray | None = None,
) -> FLResult:
    """Greedy facility location over the rows of ``features`` (one class), budget ``k``."""
    x = _check_features(features)
    n = x.shape[0]
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must be in [1, {n}] for a class of {n}, got {k}")
    k = int(k)
    opt = parse_optimizer(optimizer)
    eps = check_epsilon(epsilon)
    w, weighted = _member_weights(member_weights, n)
    D, dmax = pairwise_distances(x)
    m = _check_max_dist(max_dist, dmax)
    dc = np.full(n, np.float32(m), dtype=np.float32)
    mode = {Optimizer.NAIVE: _k.NAIVE, Optimizer.LAZY: _k.LAZY, Optimizer.STOCHASTIC: _k.STOCHASTIC}[opt]
    size = stochastic_sample_size(n, k, eps) if opt is Optimizer.STOCHASTIC else n
    ids, gains, evals, counts = _k.greedy_weights(D, k, dc, w, weighted, mode, size, int(seed) & 0xFFFFFFFF)
    # sum_i w_i (m - dc_i) is the objective; summing the gains gives the same up to rounding.
    obj = float(np.dot(w, (np.float64(m) - dc.astype(np.float64)))) if weighted else float(
        np.sum(np.float64(m) - dc.astype(np.float64))
    )
    return FLResult(ids=ids, gains=gains, weights=counts, objective=obj, max_dist=m, evaluations=int(evals))


def objective(
    features: np.ndarray,
    ids: np.ndarray,
    *,
    max_dist: float,
    member_weights: np.ndarray | None = None,
) -> float:
    """``F(S)`` for selected rows ``ids`` of ``features`` without the ``n x n`` matrix."""
    x = _check_features(features)
    ids = np.asarray(ids, dtype=np.int64)
    w, weighted = _member_weights(member_weights, x.shape[0])
    if ids.size == 0:
        return 0.0
    dc = np.full(x.shape[0], np.inf, np.float32)
    for c0 in range(0, ids.size, 1024):
        np.minimum(dc, distances_to(x, x[ids[c0 : c0 + 1024]]).min(axis=0), out=dc)
    cover = np.maximum(np.float64(max_dist) - dc.astype(np.float64), 0.0)
    return float(np.dot(w, cover)) if weighted else float(cover.sum())


def nearest(features: np.ndarray, centre_rows: np.ndarray) -> np.ndarray:
    """Index into ``centre_rows`` of each row's closest centre (ties to the lowest row id)."""
    x = _check_features(features)
    rows = np.asarray(centre_rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    best = np.full(x.shape[0], np.inf, np.float32)
    owner = np.zeros(x.shape[0], np.int64)
    for c0 in range(0, rows.size, 1024):
        sel = order[c0 : c0 + 1024]
        d = distances_to(x, x[rows[sel]])
        arg = d.argmin(axis=0)  # first minimum: lowest id within the block (sel is ascending)
        val = d[arg, np.arange(x.shape[0])]
        better = val < best  # strict: earlier (lower-id) blocks win ties
        best[better] = val[better]
        owner[better] = sel[arg[better]]
    return owner
