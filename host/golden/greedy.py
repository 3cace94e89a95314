"""Golden greedy facility location over an integer similarity matrix.

Semantics (the contract the HLS ``nessa_greedy`` kernel and the RTL engine implement):

* ``sim`` is an ``n x n`` unsigned integer matrix (``uint16`` on the device); row ``j`` holds
  ``s(j, i)`` for every class member ``i``. Similarity is symmetric in NeSSA, but the kernels
  stream *rows*, so the contract is written in rows.
* ``cover[i]`` starts at 0 (every ``s >= 0``, so 0 is "nothing selected yet").
* Step t: for every *unselected* candidate ``j``,
  ``gain[j] = sum_i max(0, sim[j, i] - cover[i])`` (exact, unbounded integer; a ``uint16``
  matrix with ``n <= 2**20`` fits 36 bits). The candidate with the largest gain wins; ties go
  to the lowest index ``j``. Then ``cover[i] = max(cover[i], sim[j*, i])``.
* After ``k`` steps, each member ``i`` is assigned to the selected ``j`` with the largest
  ``sim[j, i]``, ties to the lowest ``j`` (by index, not by selection order). ``weight[j]`` is
  the number of members assigned to ``j``; weights sum to ``n``.
* The objective is ``F(S) = sum_i cover[i]``, equal to the sum of the gains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GreedyResult", "greedy_fixed"]


@dataclass(frozen=True)
class GreedyResult:
    """Outcome of one greedy run over one class (indices are class-local)."""

    ids: np.ndarray  # int64 [k], in selection order
    gains: np.ndarray  # uint64 [k], marginal gain of each pick
    weights: np.ndarray  # int64 [k], aligned with ``ids``
    objective: int  # sum of gains == sum of the final cover vector


def greedy_fixed(sim: np.ndarray, k: int) -> GreedyResult:
    """Exact greedy facility location over integer similarities (see module docstring)."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square matrix, got shape {sim.shape}")
    if not np.issubdtype(sim.dtype, np.unsignedinteger):
        raise ValueError(f"sim must be unsigned integers, got {sim.dtype}")
    n = sim.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    s = sim.astype(np.int64)
    cover = np.zeros(n, dtype=np.int64)
    selected = np.zeros(n, dtype=bool)
    ids = np.empty(k, dtype=np.int64)
    gains = np.empty(k, dtype=np.uint64)
    for t in range(k):
        gain = np.maximum(s - cover[None, :], 0).sum(axis=1)
        gain[selected] = -1  # selected candidates are never re-picked, even at zero gain
        j = int(np.argmax(gain))  # argmax returns the first (lowest) index on ties
        ids[t] = j
        gains[t] = gain[j]
        selected[j] = True
        np.maximum(cover, s[j], out=cover)
    order = np.sort(ids)
    assigned = order[np.argmax(s[order], axis=0)]  # first max over ascending ids: ties to lowest j
    counts = np.bincount(assigned, minlength=n)
    return GreedyResult(ids=ids, gains=gains, weights=counts[ids].astype(np.int64), objective=int(cover.sum()))
