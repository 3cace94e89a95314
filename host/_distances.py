"""Euclidean distances for facility location: float32 GEMM in row blocks (or, for d <= 16,
direct differences).

``||a - b||^2 = |a|^2 + |b|^2 - 2 a.b``: one SGEMM per block of rows written straight into the
output matrix, then a fused C pass (host/_fl_native.c) turns Gram entries into distances in
place, so the peak memory is the ``n x n`` float32 matrix alone. ``D`` is symmetric: each row
block computes only its upper part (columns from its first row on: half the GEMM and
finishing work) and the lower part is copied from rows already done, which also makes ``D``
exactly symmetric (the two halves of a full GEMM differ by rounding). Features are centred first
(distances are translation invariant) to reduce cancellation in the expansion; the diagonal
is exactly 0 and tiny negative squared distances from rounding are clamped to 0.

The block GEMMs are small (a few MiB of output each), so BLAS runs them on one thread:
multi-threaded BLAS on such calls costs more in synchronisation than it gains, and on a
busy host its spinning threads made them 10-20x slower (measured).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from host import _fl_kernels as _k

__all__ = ["pairwise_distances", "distances_to", "matrix_bytes", "reuse_matrix_memory"]

#: Rows per GEMM block: about 32 MiB of output (at least 256 rows). Smaller blocks would keep
#: the finishing pass in cache but make BLAS re-pack ``X.T`` per call, which costs more (measured).
_BLOCK_BYTES = 32 << 20
#: Entries with ``d^2 < _REFINE_REL * (|a|^2 + |b|^2)`` are recomputed by direct differences;
#: everywhere else the expansion's relative error on ``d`` stays below ~1e-4.
_REFINE_REL = np.float32(2.0**-8)
#: Up to this many feature dimensions (e.g. softmax - onehot with <= 16 classes) distances are
#: computed by direct differences: exact-ish (no cancellation) and faster than the GEMM, whose
#: short inner dimension wastes it, plus the refinement near-duplicates then need (measured:
#: 0.04 s vs 0.23 s for a 6,000-member Fashion-MNIST class, d = 10).
_DIRECT_MAX_DIM = 16


def matrix_bytes(n: int) -> int:
    """Bytes of the float32 ``n x n`` distance matrix the CPU greedy needs for ``n`` members."""
    return 4 * int(n) * int(n)


_local = threading.local()


@contextlib.contextmanager
def reuse_matrix_memory(n_max: int = 0) -> Iterator[None]:
    """Within this block (per thread), :func:`pairwise_distances` returns views of one buffer,
    sized for ``n_max`` members up front and grown when needed, instead of a fresh matrix per
    call: the per-class loop then pays the page faults of its largest matrix once, not once
    per class (a fresh 144 MB matrix costs ~0.1-0.2 s of faults here). Each returned matrix is
    only valid until the next call, so only callers that drop it before then may enter this
    (``host.selection.select`` around its per-class loop). The buffer is released on exit."""
    if getattr(_local, "pool", None) is not None:  # nested: the outer block owns the buffer
        yield
        return
    _local.pool = [np.empty(int(n_max) ** 2, np.float32) if n_max > 0 else None]
    try:
        yield
    finally:
        _local.pool = None


def _matrix(n: int) -> np.ndarray:
    pool = getattr(_local, "pool", None)
    if pool is None:
        return np.empty((n, n), dtype=np.float32)
    if pool[0] is None or pool[0].size < n * n:
        pool[0] = None  # free the smaller buffer before allocating the larger one
        pool[0] = np.empty(n * n, np.float32)
    return pool[0][: n * n].reshape(n, n)


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray(x - x.mean(axis=0, dtype=np.float64).astype(np.float32))


def pairwise_distances(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(D, max)``: float32 ``D[j, i] = ||x_j - x_i||`` for ``x`` ``[n, d]`` and its maximum."""
    xc = _centred(x)
    n = xc.shape[0]
    sq = np.einsum("ij,ij->i", xc, xc, dtype=np.float32)
    out = _matrix(n)
    xt = xc.T
    mx = np.float32(0.0)
    rows = max(256, _BLOCK_BYTES // max(1, 4 * n))
    if xc.shape[1] <= _DIRECT_MAX_DIM:
        xtc = np.ascontiguousarray(xt)
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            _k.direct_block(out[r0:r1], xc[r0:r1], xtc, r0)  # upper part
            _k.mirror_lower(out, r0, r1)
            mx = max(mx, out[r0:r1].max())
        return out, float(mx)
    with threadpool_limits(1, user_api="blas"):
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            blk = out[r0:r1]
            np.matmul(xc[r0:r1], xt[:, r0:], out=blk[:, r0:])  # upper part: Gram entries
            _k.distance_block(blk, xc[r0:r1], xc, sq[r0:r1], sq, _REFINE_REL, r0)
            _k.mirror_lower(out, r0, r1)
            mx = max(mx, blk.max())
    return out, float(mx)


def distances_to(x: np.ndarray, centres: np.ndarray, *, block_rows: int = 8192) -> np.ndarray:
    """float32 ``[len(centres), len(x)]`` distances (rows: centres), in bounded blocks."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    c = np.ascontiguousarray(centres, dtype=np.float32)
    mu = x.mean(axis=0, dtype=np.float64).astype(np.float32) if len(x) else np.zeros(x.shape[1], np.float32)
    x = x - mu
    c = c - mu
    sq_x = np.einsum("ij,ij->i", x, x, dtype=np.float32)
    sq_c = np.einsum("ij,ij->i", c, c, dtype=np.float32)
    out = np.empty((len(c), len(x)), dtype=np.float32)
    for r0 in range(0, len(c), block_rows):
        r1 = min(len(c), r0 + block_rows)
        blk = out[r0:r1]
        np.matmul(c[r0:r1], x.T, out=blk)
        blk *= -2.0
        blk += sq_c[r0:r1, None]
        blk += sq_x[None, :]
        np.maximum(blk, 0.0, out=blk)
        np.sqrt(blk, out=blk)
    return out
