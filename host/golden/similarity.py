"""Fixed-point features and the integer similarity the ``nessa_greedy`` kernel computes on chip.

Feature quantisation (host side, once per class):

* A feature vector is stored on the device as ``int16`` with ``FEAT_FRAC = 14`` fractional bits
  by default (Q1.14: the range is [-2, 2), the step 2**-14). ``softmax - onehot`` lies in [-1, 1],
  so the features kernel's output is already in this format and is passed through unchanged.
* ``quantize_features(x, frac)`` rounds half away from zero and saturates to int16.

Similarity (what the kernel computes for a pair ``(j, i)``, integer only):

* ``d2 = sum_k (q_j[k] - q_i[k])**2`` as an unsigned 64-bit integer (exact for d <= 2**20 / 4).
* ``dist = isqrt(d2)``: the floor of the square root (exact; the kernel uses a bitwise
  restoring square root, the golden model float sqrt plus a correction step).
* ``sim = maxd_q - dist`` if ``dist < maxd_q`` else ``0``; ``maxd_q <= 65535`` so ``sim`` fits
  ``uint16`` (the row type of :mod:`host.golden.greedy`).

``maxd_q = round(max_dist * 2**frac)`` is the documented bound. For softmax - onehot features,
``||g_i - g_j|| <= sqrt(2)`` inside one class (both share the onehot), so with ``max_dist = 2``
(``maxd_q = 32768`` at Q1.14) nothing is ever clamped, ``sim = maxd_q - dist`` exactly, and the
greedy choices do not depend on ``max_dist`` (F(S) = n*maxd_q - sum_i min_j dist(i, j)).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FEAT_FRAC",
    "SIM_MAX",
    "MAX_DIM",
    "quantize_features",
    "maxd_to_q",
    "isqrt_u64",
    "sim_q",
    "sim_q_rows",
    "resolve_maxd_q",
]

#: Default fractional bits of the int16 feature format (Q1.14).
FEAT_FRAC = 14
#: Largest similarity value (``uint16``).
SIM_MAX = 0xFFFF
#: Largest feature dimension the kernel accepts (keeps ``d2`` below 2**53 in the golden model).
MAX_DIM = 4096


def quantize_features(x: np.ndarray, frac: int = FEAT_FRAC) -> np.ndarray:
    """float ``[n, d]`` -> int16 ``[n, d]``: ``round_half_away(x * 2**frac)`` saturated to int16."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [n, d], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    if not 0 <= frac <= 15:
        raise ValueError(f"frac must be in [0, 15], got {frac}")
    scaled = x * float(1 << frac)
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(q, -32768, 32767).astype(np.int16)


def maxd_to_q(max_dist: float, frac: int = FEAT_FRAC) -> int:
    """The kernel's ``maxd_q`` scalar for a float ``max_dist`` at ``frac`` fractional bits."""
    if not np.isfinite(max_dist) or max_dist <= 0:
        raise ValueError(f"max_dist must be a positive finite number, got {max_dist}")
    q = int(np.floor(max_dist * (1 << frac) + 0.5))
    if not 1 <= q <= SIM_MAX:
        raise ValueError(
            f"max_dist={max_dist} at {frac} fractional bits gives maxd_q={q}, outside [1, {SIM_MAX}]; "
            "lower frac or max_dist"
        )
    return q


def isqrt_u64(d2: np.ndarray) -> np.ndarray:
    """Exact floor square root of non-negative integers < 2**53 (int64 in, int64 out)."""
    d2 = np.asarray(d2, dtype=np.int64)
    r = np.floor(np.sqrt(d2.astype(np.float64))).astype(np.int64)
    # float sqrt can be one off near perfect squares; correct both ways
    r -= (r * r > d2).astype(np.int64)
    r += ((r + 1) * (r + 1) <= d2).astype(np.int64)
    return r


def sim_q_rows(q: np.ndarray, rows: np.ndarray, maxd_q: int) -> np.ndarray:
    """Similarity rows ``sim[j, :]`` for ``j`` in ``rows`` (uint16 ``[len(rows), n]``)."""
    q = np.asarray(q)
    if q.dtype != np.int16 or q.ndim != 2:
        raise ValueError(f"q must be int16 [n, d], got {q.dtype} {q.shape}")
    if q.shape[1] > MAX_DIM:
        raise ValueError(f"feature dimension {q.shape[1]} exceeds MAX_DIM={MAX_DIM}")
    if not 1 <= maxd_q <= SIM_MAX:
        raise ValueError(f"maxd_q must be in [1, {SIM_MAX}], got {maxd_q}")
    a = q.astype(np.int64)
    b = a[np.asarray(rows, dtype=np.int64)]
    # |q| <= 32768, so each squared difference < 2**32 and the dot products stay exact in
    # float64 for d <= MAX_DIM: d2 = |b|^2 + |a|^2 - 2 b.a computed in float64 BLAS, exact.
    na = (a * a).sum(axis=1)
    nb = (b * b).sum(axis=1)
    dot = (b.astype(np.float64) @ a.astype(np.float64).T).astype(np.int64)
    d2 = nb[:, None] + na[None, :] - 2 * dot
    dist = isqrt_u64(d2)
    return np.where(dist < maxd_q, maxd_q - dist, 0).astype(np.uint16)


def resolve_maxd_q(q: np.ndarray, maxd_q: int) -> int:
    """``maxd_q``, or for ``maxd_q == 0`` the class's largest pairwise distance ``isqrt(max d2)``
    (the CRAIG convention; 1 if every member is identical). Raises if it exceeds ``SIM_MAX``."""
    if maxd_q != 0:
        return int(maxd_q)
    a = np.asarray(q).astype(np.int64)
    na = (a * a).sum(axis=1)
    mx = 0
    for lo in range(0, len(a), 2048):  # blocked: bounded memory for large classes
        b = a[lo:lo + 2048]
        d2 = (b * b).sum(axis=1)[:, None] + na[None, :] - 2 * (b.astype(np.float64) @ a.astype(np.float64).T).astype(np.int64)
        mx = max(mx, int(d2.max()))
    dmax = int(isqrt_u64(np.array([mx]))[0])
    if dmax > SIM_MAX:
        raise ValueError(f"largest pairwise distance {dmax} exceeds {SIM_MAX}; quantise with fewer fractional bits")
    return max(dmax, 1)


def sim_q(q: np.ndarray, maxd_q: int) -> np.ndarray:
    """Full ``n x n`` uint16 similarity matrix of int16 features ``q`` (see module docstring).

    ``maxd_q == 0`` selects the class's largest pairwise distance (:func:`resolve_maxd_q`).
    """
    return sim_q_rows(q, np.arange(np.asarray(q).shape[0]), resolve_maxd_q(q, maxd_q))
