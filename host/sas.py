"""SAS: data-efficient contrastive learning by keeping the examples that contribute most
(Joshi & Mirzasoleiman, ICML 2023; github.com/sjoshi804/sas-data-efficient-contrastive-learning).

What the reference does, and what this follows:

* Latent classes come from a proxy model: its labels (or zero-shot labels) when known, else
  k-means on the proxy's embeddings (:mod:`host.kmeans`).
* Within each latent class SAS keeps the examples whose augmentations are, in expectation,
  most similar to those of the rest of the class. Two objectives (``SasObjective``):

  ``reference`` (strategy ``sas``; the default): what the reference code computes. Its
  ``SubsetSelectionObjective`` scores a candidate ``i`` by ``sum_j s(i, j) - sum_{k in S} s(k, i)``
  over cosine similarities of proxy embeddings, those under the threshold (0) counted as 0, and
  runs lazy greedy over the whole latent class, cutting the order at ``f * n_c``. Its ``add``
  zeroes the chosen example's row (``distance[:][i] = 0``), so the subtracted term reads zeros
  and every gain stays the row sum: the reference ranks a class's examples by their summed
  clipped similarity to the class, and that ranking is what the published subsets are. Here the
  row sum is the class mean (same order) over the class, or over a uniform sample of 4,096 of its
  rows when larger (:mod:`host._sim_sums`): no ``n x n`` matrix. Runs on the CPU (a matrix
  product and a sort) whatever backend is named.

  ``facility-location`` (strategy ``sas-fl``): facility location on the same embeddings per
  random pool of the class, which maps onto the FPGA greedy kernels (below). It keeps
  representatives spread over the class rather than its most central examples.

  Budget: the project's single rule, ``ceil(f * n_c)`` per class (:func:`host.budget.class_budget`;
  the reference's ``int(f * n_c)``); for ``facility-location`` split over the class's pools in
  proportion to their sizes (largest remainder, so the pools add up to the class budget exactly).
* ``facility-location`` at scale: a class is cut into random pools of at most ``pool_size`` examples (a few
  thousand); each pool's greedy sees a ``pool x pool`` matrix only, never ``n x n``.

Backend mapping (``facility-location``): each pool's facility location is one call to the backend's ``greedy``
(:mod:`host.backends`): ``cpu`` runs host.facility_location; ``emu`` / ``xrt`` run the FPGA
greedy kernel (on x86 through the emulator for ``emu``) on the quantised pool features. The
k-means, the pool split and the budget arithmetic run on the host for every backend.

Similarity: the kernels and the CPU path use ``s(i, j) = max_dist - ||x_i - x_j||`` on the
features. The embeddings are L2-normalised first, so ``||x_i - x_j|| = sqrt(2 - 2 cos)``,
a decreasing function of the cosine similarity, and ``max_dist = 2`` bounds every distance:
the facility location is over a monotone transform of the cosine similarity SAS uses (the
greedy ranks by distances, not their exact values, only through the cover it accumulates).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from host._sim_sums import DEFAULT_SIMILARITY_SAMPLE, mean_clipped_similarity
from host.backends import load as load_backend
from host.budget import check_fraction, class_budget
from host.kmeans import check_embeddings, kmeans_labels, owned_unit_rows

__all__ = ["SasObjective", "SasResult", "latent_classes", "pool_budgets", "sas_select", "DEFAULT_POOL_SIZE",
           "DEFAULT_LATENT_CLASSES"]


class SasObjective(str, enum.Enum):
    """What SAS maximises within a latent class (module docstring)."""

    REFERENCE = "reference"  # summed clipped similarity to the class, as the reference code ranks
    FACILITY_LOCATION = "facility-location"  # per-pool facility location, on the FPGA kernels


#: Pool size of the per-pool facility location (the FPGA greedy kernel takes up to 32,768).
DEFAULT_POOL_SIZE = 4096
#: Latent classes when neither labels nor a count are given (the wire contract's default).
DEFAULT_LATENT_CLASSES = 10
#: Distance bound for unit vectors (every ||x_i - x_j|| <= 2).
_UNIT_MAX_DIST = 2.0


@dataclass(frozen=True)
class SasResult:
    ids: np.ndarray  # int64, ascending row ids of the selection
    classes: np.ndarray  # int64 [n], the latent class of every row
    objective: float  # reference: summed scores of the picks; facility-location: sum over pools
    pools: int  # number of pool greedies run (0 for the reference objective)


def latent_classes(
    x: np.ndarray, *, labels: np.ndarray | None = None, k: int = 0, seed: int = 0, option: str = "latent_classes"
) -> np.ndarray:
    """Latent class of each row: ``labels`` when ``k == 0`` and they have more than one class,
    else k-means on ``x`` with ``k`` classes (``DEFAULT_LATENT_CLASSES`` when ``k == 0``)."""
    n = x.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"{option} must be an integer >= 0, got {k!r}")
    if k == 0 and labels is not None:
        lab = np.asarray(labels).astype(np.int64, copy=False)
        if lab.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {lab.shape}")
        if np.unique(lab).size > 1:
            return lab
    kk = int(k) if k else min(DEFAULT_LATENT_CLASSES, n)
    return kmeans_labels(x, kk, seed=seed, option=option)


def pool_budgets(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split budget ``k`` over pools of ``sizes`` in proportion (largest remainder); sums to ``k``,
    each entry at most its pool's size."""
    sizes = np.asarray(sizes, np.int64)
    total = int(sizes.sum())
    exact = sizes * (k / total)
    b = np.floor(exact).astype(np.int64)
    rest = k - int(b.sum())
    order = np.argsort(-(exact - b), kind="stable")
    for p in order:
        if rest == 0:
            break
        if b[p] < sizes[p]:
            b[p] += 1
            rest -= 1
    return b


def _pools(members: np.ndarray, pool_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = members[rng.permutation(members.size)]
    n_pools = -(-members.size // pool_size)
    return np.array_split(perm, n_pools)


def _reference(x: np.ndarray, cls: np.ndarray, f: float, *, seed: int, sample: int) -> SasResult:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5A5])
    chosen: list[np.ndarray] = []
    obj = 0.0
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        xc = x[members]
        score = mean_clipped_similarity(xc, xc, sample=sample, rng=rng)
        top = np.argsort(-score, kind="stable")[:class_budget(members.size, f)]  # ties: the lower row
        chosen.append(members[top])
        obj += float(score[top].sum())
    ids = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return SasResult(ids=ids.astype(np.int64), classes=cls, objective=obj, pools=0)


def sas_select(
    embeddings: np.ndarray,
    fraction: float,
    *,
    labels: np.ndarray | None = None,
    latent: int = 0,
    seed: int = 0,
    pool_size: int = DEFAULT_POOL_SIZE,
    backend: str = "cpu",
    optimizer: str = "lazy",
    epsilon: float = 0.01,
    option: str = "embedding_column",
    consume: bool = False,
    objective: "SasObjective | str" = SasObjective.REFERENCE,
    sample: int = DEFAULT_SIMILARITY_SAMPLE,
) -> SasResult:
    """SAS selection of ``ceil(fraction * n_c)`` rows per latent class of ``embeddings``.

    ``latent``: number of k-means classes (0: ``labels`` when they have more than one class,
    else 10). Errors name ``option`` (bad embeddings), ``fraction``, ``latent_classes``.
    ``consume``: the caller hands ``embeddings`` over; a float32 array is normalised in place
    (one copy of the column less at scale). ``objective``: :class:`SasObjective`; ``backend``,
    ``optimizer``, ``epsilon`` and ``pool_size`` are facility location's (the reference objective
    runs on the CPU); ``sample``: rows the reference's class similarity is averaged over.
    """
    x = check_embeddings(embeddings, option=option)
    f = check_fraction(fraction)
    try:
        objective = SasObjective(objective)
    except ValueError:
        raise ValueError(f"objective: unknown SAS objective {objective!r}; choose one of "
                         f"{', '.join(o.value for o in SasObjective)}") from None
    if isinstance(pool_size, bool) or int(pool_size) < 2:
        raise ValueError(f"pool_size must be an integer >= 2, got {pool_size!r}")
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be an integer >= 1, got {sample!r}")
    x = owned_unit_rows(embeddings, x, consume=consume)
    cls = latent_classes(x, labels=labels, k=latent, seed=seed)
    if objective is SasObjective.REFERENCE:
        return _reference(x, cls, f, seed=seed, sample=int(sample))
    be = load_backend(backend)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5A5])
    chosen: list[np.ndarray] = []
    obj = 0.0
    n_pools = 0
    for c in np.unique(cls):
        members = np.flatnonzero(cls == c)
        k_c = class_budget(members.size, f)
        pools = _pools(members, int(pool_size), rng)
        budgets = pool_budgets(np.array([p.size for p in pools]), k_c)
        for pool, kp in zip(pools, budgets):
            if kp == 0:
                continue
            if kp == pool.size:  # the whole pool: no greedy needed
                chosen.append(pool)
                continue
            ids, _w, o = be.greedy(x[pool], int(kp), optimizer=optimizer, seed=int(seed) + n_pools,
                                   epsilon=epsilon, max_dist=_UNIT_MAX_DIST)
            chosen.append(pool[np.asarray(ids, np.int64)])
            obj += float(o)
            n_pools += 1
    ids = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return SasResult(ids=ids.astype(np.int64), classes=cls, objective=obj, pools=n_pools)
