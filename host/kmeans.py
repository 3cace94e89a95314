"""Seeded k-means on embeddings: the latent classes of SAS and ClipCov (issue #17).

``kmeans_labels(x, k, seed=...)`` returns one class id in ``[0, k)`` per row, from faiss's CPU
k-means (Lloyd iterations over a seeded sample of at most ``max_points_per_centroid * k``
rows, then every row assigned to its nearest centroid). The same input, k and seed give the
same labels (faiss draws its sample and initial centroids from ``seed``). faiss runs on the
threads ``faiss.omp_set_num_threads`` allows; the caller decides (the service shares the CPU).

Rows are L2-normalised first when ``normalise`` (the default): the proxy embeddings are
compared by cosine similarity, and k-means on unit vectors is spherical k-means up to the
centroid norm.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans_labels", "check_embeddings", "unit_rows", "owned_unit_rows"]


def check_embeddings(x: np.ndarray, *, option: str = "embeddings") -> np.ndarray:
    """``x`` as a C-contiguous float32 ``[n, d]`` array, else ValueError naming ``option``."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{option} must be a non-empty 2-D array [n, d], got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    finite = np.isfinite(a).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{option} contains NaN or infinite values (first at row {bad})")
    return a


def unit_rows(x: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Rows scaled to unit L2 norm (an all-zero row stays zero); ``inplace`` scales ``x`` itself
    (a float32 array the caller owns: saves a copy of the whole column at scale)."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    if inplace:
        x /= n
        return x
    return (x / n).astype(np.float32, copy=False)


def owned_unit_rows(given, checked: np.ndarray, *, consume: bool = False) -> np.ndarray:
    """:func:`unit_rows` of ``checked`` (``check_embeddings(given)``), in place when that check
    already made a private copy (float16 column, non-contiguous input) or when the caller hands
    ``given`` over (``consume``); otherwise ``given`` is left untouched."""
    own = checked is not given and not (isinstance(given, np.ndarray) and np.shares_memory(checked, given))
    return unit_rows(checked, inplace=own or consume)


def kmeans_labels(
    x: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    iterations: int = 20,
    normalise: bool = True,
    max_points_per_centroid: int = 256,
    option: str = "latent_classes",
) -> np.ndarray:
    """Latent class (int64 in ``[0, k)``) of each row of ``x``; ValueError naming ``option``
    when ``k`` is not in ``[1, n]``."""
    a = check_embeddings(x)
    n, d = a.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n:
        raise ValueError(f"{option} must be in [1, {n}] for {n} examples, got k={k!r}")
    k = int(k)
    if k == 1:
        return np.zeros(n, np.int64)
    if normalise:
        a = unit_rows(a)
    import faiss  # imported here: only the latent-class strategies need it

    km = faiss.Kmeans(
        d, k, niter=int(iterations), seed=int(seed) & 0x7FFFFFFF, verbose=False,
        max_points_per_centroid=int(max_points_per_centroid), spherical=bool(normalise),
    )
    km.train(a)
    labels = np.empty(n, np.int64)
    # Assign in blocks: faiss's search allocates n x 1 results only, but keep peaks small.
    for s in range(0, n, 1 << 18):
        _, idx = km.index.search(a[s : s + (1 << 18)], 1)
        labels[s : s + idx.shape[0]] = idx[:, 0]
    return labels
