"""ClipCov: data-efficient CLIP training by keeping easy pairs that cover their latent class
(BigML-CS-UCLA/clipcov-data-efficient-clip; issue #17 item 3).

For image-caption pairs with embeddings ``I`` (image) and ``T`` (text), both L2-normalised:

* Latent classes: the data set's labels (when more than one class and no count is asked for),
  else k-means on the *image* embeddings (:func:`host.sas.latent_classes`).
* Per latent class ``c`` a greedy selection of ``ceil(f * n_c)`` pairs
  (:func:`host.budget.class_budget`) maximising, at each step, for a candidate ``i``::

      score_i = easiness_i + coverage_i - redundancy_i
      easiness_i   = I_i . T_i                                (the pair's own match)
      coverage_i   = (I_i . mean(T_c) + T_i . mean(I_c)) / 2  (cross-modal similarity to the class)
      redundancy_i = max_{j in S} (I_i . I_j + T_i . T_j) / 2  (closest pair already chosen)

  Coverage is the mean cross-modal similarity of the pair to the class's pairs, computed from
  the class means (no ``n x n`` matrix); the redundancy term is kept incrementally (one
  ``pool x d`` product per pick). The three terms have weight 1 and the same [-1, 1] scale.
  This follows the issue's reading of the reference (easiness + cross-modal coverage - similarity
  to what is chosen). The reference notebook (read since) differs in its weights and bookkeeping:
  easiness counts twice, a label-similarity term is added and the pair's similarity to the class
  centres subtracted; its redundancy is the *sum* of cross-modal similarities to the chosen pairs
  of the class over the class size (not the closest pair), deducted every 200 picks of a class;
  and the greedy is global, so classes do not get a fixed ``ceil(f * n_c)`` each. Not yet
  matched here; the benchmark in BENCHMARKS.md measures this version.
* At scale each class is cut into random pools of at most ``pool_size`` pairs with budgets in
  proportion (:func:`host.sas.pool_budgets`); coverage still uses the whole class's means.

Backends: this greedy is not facility location and does not map to the FPGA kernels; it runs on
the CPU (numpy) whatever backend the request names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.budget import check_fraction, class_budget
from host.kmeans import check_embeddings, owned_unit_rows
from host.sas import DEFAULT_POOL_SIZE, latent_classes, pool_budgets

__all__ = ["ClipCovResult", "clipcov_select"]


@dataclass(frozen=True)
class ClipCovResult:
    ids: np.ndarray  # int64, ascending row ids of the selection
    classes: np.ndarray  # int64 [n], latent class of every pair
    objective: float  # sum of the scores at the time each pair was picked


def _greedy_pool(I: np.ndarray, T: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    n = I.shape[0]
    red = np.full(n, -np.inf, np.float32)  # no pair chosen yet: no redundancy
    taken = np.zeros(n, bool)
    picks = np.empty(k, np.int64)
    total = 0.0
    for t in range(k):
        score = base - np.where(np.isfinite(red), red, 0.0)
        score[taken] = -np.inf
        j = int(np.argmax(score))  # ties to the lowest index
        picks[t] = j
        total += float(score[j])
        taken[j] = True
        np.maximum(red, 0.5 * (I @ I[j] + T @ T[j]), out=red)
    return picks, total


def clipcov_select(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    fraction: float,
    *,
    labels: np.ndarray | None = None,
    latent: int = 0,
    seed: int = 0,
    pool_size: int = DEFAULT_POOL_SIZE,
    image_option: str = "embedding_column",
    text_option: str = "text_embedding_column",
    consume: bool = False,
) -> ClipCovResult:
    """ClipCov selection of ``ceil(fraction * n_c)`` pairs per latent class. Errors name the
    column options (bad values, width or row mismatch), ``fraction`` and ``latent_classes``.
    ``consume``: the caller hands both arrays over; float32 ones are normalised in place."""
    I = check_embeddings(image_embeddings, option=image_option)
    T = check_embeddings(text_embeddings, option=text_option)
    if I.shape[1] != T.shape[1]:
        raise ValueError(f"{text_option} has width {T.shape[1]} but {image_option} has width {I.shape[1]}; "
                         "image and text embeddings must share one space")
    if I.shape[0] != T.shape[0]:
        raise ValueError(f"{text_option} has {T.shape[0]} rows but {image_option} has {I.shape[0]}")
    f = check_fraction(fraction)
    if isinstance(pool_size, bool) or int(pool_size) < 2:
        raise ValueError(f"pool_size must be an integer >= 2, got {pool_size!r}")
    I, T = owned_unit_rows(image_embeddings, I, consume=consume), owned_unit_rows(text_embeddings, T, consume=consume)
    cls = latent_classes(I, labels=labels, k=latent, seed=seed)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xC11C])
    chosen: list[np.ndarray] = []
    obj = 0.0
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        Ic, Tc = I[members], T[members]
        easy = np.einsum("ij,ij->i", Ic, Tc)
        cover = 0.5 * (Ic @ Tc.mean(axis=0) + Tc @ Ic.mean(axis=0))
        base_c = (easy + cover).astype(np.float32)
        k_c = class_budget(members.size, f)
        perm = rng.permutation(members.size)
        pools = np.array_split(perm, -(-members.size // int(pool_size)))
        for pool, kp in zip(pools, pool_budgets(np.array([p.size for p in pools]), k_c)):
            if kp == 0:
                continue
            picks, o = _greedy_pool(Ic[pool], Tc[pool], base_c[pool], int(kp))
            chosen.append(members[pool[picks]])
            obj += o
    ids = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return ClipCovResult(ids=ids.astype(np.int64), classes=cls, objective=obj)
