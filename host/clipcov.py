"""ClipCov: data-efficient CLIP training by keeping pairs that preserve the cross-covariance of
image and caption representations (Joshi, Jain, Payani & Mirzasoleiman; reference notebook
BigML-CS-UCLA/clipcov-data-efficient-clip, ``clip_core.ipynb``; issue #17 item 3).

This follows the reference's selection. For image-caption pairs with embeddings ``I`` (image)
and ``T`` (caption), L2-normalised, and latent classes ``c`` (the data set's labels when it has
more than one class and no count is asked for, else k-means on the image embeddings:
:func:`host.sas.latent_classes`), every pair gets a score::

    score_i = cross_i + 2 * easy_i + ls_i / 2 - (I_i . centre(T_c) + T_i . centre(I_c))
    easy_i  = I_i . T_i                                            the pair's own match
    cross_i = mean_{j in c} ([I_i . T_j]_+ + [I_j . T_i]_+)        cross-modal coverage of the class
    ls_i    = T_i . centre(T_c)                                    the caption's match to its class

``[s]_+``: similarities under 0 count 0 (the reference's ``THRESHOLD = 0``); ``centre``: the
class mean, L2-normalised. Pairs are taken in order of score, over all classes at once (a global
greedy: classes get what their scores earn, not a fixed share). Every ``refresh`` (200) picks of a
class, that class's scores are lowered by what the pairs chosen since the last refresh already
cover (``mean_{j in c} sum_{k in new} [I_j . T_k]_+ + [I_k . T_j]_+``, per pair), by the summed
``cross`` of every pair chosen in the class so far over the class size, and by half the summed
``ls`` of the new pairs over the class size, then the class is re-sorted. This is the reference's
loop (its deductions, weights and 200), with three stated differences:

* the reference's label similarity ``ls`` is the caption's similarity to the *class name's* text
  embedding under the proxy CLIP (its latent classes are zero-shot ImageNet classes); a store
  holds no class-name embeddings, so the class's caption centre stands in for it;
* ``cross`` is the mean over the class (the reference's sum over the class over its size),
  estimated from a uniform sample of 4,096 pairs of the class when it is larger
  (:mod:`host._sim_sums`): the reference holds a full ``n_c x n_c`` matrix per class;
* the reference refreshes at ``(count + 1) % 200 == 0``; here at ``count % refresh == 0``.

Budget: the total is the project's single rule summed over latent classes,
``sum_c ceil(f * n_c)`` (:func:`host.budget.class_budget`), so a ClipCov subset has the size of a
class-balanced one; its split over classes is the greedy's.

Backends: this greedy is not facility location and does not map to the FPGA kernels; it runs on
the CPU (numpy) whatever backend the request names.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from host._sim_sums import DEFAULT_SIMILARITY_SAMPLE, mean_clipped_similarity
from host.budget import check_fraction, class_budget
from host.kmeans import check_embeddings, owned_unit_rows
from host.sas import latent_classes

__all__ = ["ClipCovResult", "clipcov_select", "DEFAULT_REFRESH"]

#: Picks of a class between two deductions of what its chosen pairs cover (the reference's 200).
DEFAULT_REFRESH = 200


@dataclass(frozen=True)
class ClipCovResult:
    ids: np.ndarray  # int64, ascending row ids of the selection
    classes: np.ndarray  # int64 [n], latent class of every pair
    objective: float  # sum of the scores at the time each pair was picked


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class _Class:
    """One latent class's scores, its order of untaken pairs, and what the refresh needs."""

    def __init__(self, members: np.ndarray, I: np.ndarray, T: np.ndarray, rng: np.random.Generator, sample: int):
        self.members = members
        self.I, self.T = I[members], T[members]
        n = members.size
        easy = np.einsum("ij,ij->i", self.I, self.T)
        cross = (mean_clipped_similarity(self.I, self.T, sample=sample, rng=rng)
                 + mean_clipped_similarity(self.T, self.I, sample=sample, rng=rng))
        cI, cT = _unit(self.I.mean(axis=0)), _unit(self.T.mean(axis=0))
        self.ls = self.T @ cT
        self.cross = cross.astype(np.float64)
        self.score = cross + 2.0 * easy + 0.5 * self.ls - (self.I @ cT + self.T @ cI)
        self.score = self.score.astype(np.float64)
        self.taken = np.zeros(n, bool)
        self.order = np.argsort(-self.score, kind="stable")
        self.next = 0
        self.count = 0
        self.new: list[int] = []
        self.cross_taken = 0.0

    def head(self) -> float | None:
        return float(self.score[self.order[self.next]]) if self.next < self.order.size else None

    def take(self, refresh: int) -> tuple[int, float]:
        i = int(self.order[self.next])
        s = float(self.score[i])
        self.next += 1
        self.taken[i] = True
        self.count += 1
        self.new.append(i)
        self.cross_taken += float(self.cross[i])
        if self.count % refresh == 0:
            self._deduct()
        return int(self.members[i]), s

    def _deduct(self) -> None:
        n = self.members.size
        new = np.asarray(self.new, np.int64)
        covered = (np.maximum(self.I @ self.T[new].T, 0).sum(axis=1)
                   + np.maximum(self.T @ self.I[new].T, 0).sum(axis=1))
        self.score -= covered / n + self.cross_taken / n + 0.5 * float(self.ls[new].sum()) / n
        rest = np.flatnonzero(~self.taken)
        self.order = rest[np.argsort(-self.score[rest], kind="stable")]
        self.next = 0
        self.new = []


def clipcov_select(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    fraction: float,
    *,
    labels: np.ndarray | None = None,
    latent: int = 0,
    seed: int = 0,
    refresh: int = DEFAULT_REFRESH,
    sample: int = DEFAULT_SIMILARITY_SAMPLE,
    image_option: str = "embedding_column",
    text_option: str = "text_embedding_column",
    consume: bool = False,
) -> ClipCovResult:
    """ClipCov selection of ``sum_c ceil(fraction * n_c)`` pairs. Errors name the column options
    (bad values, width or row mismatch), ``fraction``, ``latent_classes``, ``refresh``, ``sample``.
    ``consume``: the caller hands both arrays over; float32 ones are normalised in place."""
    I = check_embeddings(image_embeddings, option=image_option)
    T = check_embeddings(text_embeddings, option=text_option)
    if I.shape[1] != T.shape[1]:
        raise ValueError(f"{text_option} has width {T.shape[1]} but {image_option} has width {I.shape[1]}; "
                         "image and text embeddings must share one space")
    if I.shape[0] != T.shape[0]:
        raise ValueError(f"{text_option} has {T.shape[0]} rows but {image_option} has {I.shape[0]}")
    f = check_fraction(fraction)
    for name, v in (("refresh", refresh), ("sample", sample)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    I, T = owned_unit_rows(image_embeddings, I, consume=consume), owned_unit_rows(text_embeddings, T, consume=consume)
    cls = latent_classes(I, labels=labels, k=latent, seed=seed)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xC11C])
    classes = [_Class(np.flatnonzero(cls == c), I, T, rng, int(sample)) for c in np.unique(cls)]
    budget = sum(class_budget(c.members.size, f) for c in classes)
    # Global greedy: a max-heap of each class's best untaken score (ties: the lower class index).
    heap = [(-c.head(), j) for j, c in enumerate(classes) if c.head() is not None]
    heapq.heapify(heap)
    picks: list[int] = []
    obj = 0.0
    while heap and len(picks) < budget:
        _, j = heapq.heappop(heap)
        row, s = classes[j].take(int(refresh))
        picks.append(row)
        obj += s
        h = classes[j].head()
        if h is not None:
            heapq.heappush(heap, (-h, j))
    ids = np.sort(np.asarray(picks, np.int64))
    return ClipCovResult(ids=ids, classes=cls, objective=obj)
