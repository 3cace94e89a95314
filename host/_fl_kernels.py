"""Kernels for float greedy facility location over a distance matrix (CPU backend).

The loops live in C (``host/_fl_native.c``, built by pip as the optional extension
``host._fl_native``) and are called through ctypes, which drops the GIL for the call. This
module checks every array's dtype, shape and layout before passing a pointer.

The greedy works on the class's distance matrix ``D`` (float32, ``D[j, i] = ||g_j - g_i||``)
and the vector ``dc[i] = min(max_dist, min_{j in S} D[j, i])`` (distance of member ``i`` to
its closest selected element, ``max_dist`` while nothing covers it). With the similarity
``s(i, j) = max_dist - D[j, i]`` and ``cover[i] = max(0, max_{j in S} s(i, j)) = max_dist - dc[i]``::

    gain[j] = sum_i w_i * max(0, s(i, j) - cover[i]) = sum_i w_i * max(0, dc[i] - D[j, i])

so the similarity matrix is never materialised and ``max_dist`` only enters through the
initial ``dc``. ``objective = sum_i w_i * (max_dist - dc[i])``.

Exactness (why lazy == naive bit for bit): every gain, in every optimizer, is computed by the
same machine code (``gain`` in the C file, reached from a single call site), so a row's gain
for a given ``dc`` is the same bits whichever optimizer asks. Since ``dc`` only decreases,
every term only decreases, and rounded addition is monotone for a fixed summation tree, a
recomputed gain never exceeds an earlier one of the same candidate: stale heap entries are
true upper bounds of what naive would compute now. The heap orders by (gain desc, index asc)
and only a freshly evaluated top is selected, so ties go to the lowest index exactly as in
naive's argmax.

Stochastic draws come from a seeded splitmix64 stream (unbiased bounded draws), so a seed
gives the same selection on every platform.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import threading
from pathlib import Path

import numpy as np

__all__: list[str] = []  # internal module

NAIVE, LAZY, STOCHASTIC = 0, 1, 2

_ENOMEM, _EARG = -1, -2
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_SIGNATURES = {
    "nessa_greedy_weights": (_I64, [_P, _I64, _I64, _P, _P, ctypes.c_int32, ctypes.c_int32, _I64, ctypes.c_uint64,
                                    _P, _P, _P]),
    "nessa_distance_block": (_I64, [_P, _I64, _I64, _P, _P, _I64, _P, _P, ctypes.c_float, _I64]),
    "nessa_direct_block": (None, [_P, _I64, _I64, _P, _P, _I64, _I64]),
    "nessa_mirror_lower": (None, [_P, _I64, _I64, _I64]),
}
_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


def native_path() -> Path | None:
    """The built library next to this file, or None when pip could not build it."""
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = here / f"_fl_native{suffix}"
        if p.is_file():
            return p
    return None


def _native() -> ctypes.CDLL:
    """Loaded on first use, so that importing the selection code needs no built library (the
    trainer image has no compiler and never selects)."""
    global _lib
    with _lock:
        if _lib is None:
            path = native_path()
            if path is None:
                raise RuntimeError(
                    "the CPU selection kernels (host/_fl_native.c) are not built: install a C compiler "
                    "(gcc or clang) and reinstall the package (pip install -e . or pip install nessa)"
                )
            lib = ctypes.CDLL(str(path))
            for name, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
            _lib = lib
    return _lib


def _arg(a: np.ndarray, dtype, shape: tuple, name: str, *, writable: bool = False) -> int:
    """Pointer to ``a`` after checking what the C side assumes (no silent copies: some are outputs)."""
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
        got = (getattr(a, "dtype", type(a)), getattr(a, "shape", None))
        raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape}, got {got}")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return a.ctypes.data


def greedy_weights(D, k, dc, w, weighted, mode, sample_size, seed):
    """Greedy facility location (``mode`` NAIVE / LAZY / STOCHASTIC) over ``D``, then each pick's
    weight: (ids int64[k], gains float64[k], evaluations, weights float64[k]); ``dc`` is updated
    in place.

    * NAIVE: every step evaluates all unselected candidates, argmax (first index on ties).
    * LAZY (Minoux): evaluate all once, heap of bounds ordered (gain desc, index asc); pop the
      top, re-evaluate it if its bound is from an earlier step, select it once it is fresh.
    * STOCHASTIC (Mirzasoleiman et al. 2015): evaluate ``sample_size`` candidates drawn without
      replacement from the unselected ones (partial Fisher-Yates), take the best (lowest
      index on ties).

    Weights: the (weighted) count of members whose closest selected element a pick is, ties to
    the lowest index (not selection order).
    """
    n = D.shape[0]
    k = int(k)
    ids = np.empty(k, np.int64)
    gains = np.empty(k, np.float64)
    weights = np.empty(k, np.float64)
    w_ptr = _arg(w, np.float64, (n,), "w") if weighted else None
    evals = _native().nessa_greedy_weights(
        _arg(D, np.float32, (n, n), "D"), n, k, _arg(dc, np.float32, (n,), "dc", writable=True), w_ptr,
        1 if weighted else 0, int(mode), int(sample_size), int(seed) & 0xFFFFFFFFFFFFFFFF,
        ids.ctypes.data, gains.ctypes.data, weights.ctypes.data,
    )
    _check(evals, f"greedy (n={n}, k={k}, mode={mode}, sample_size={sample_size})")
    return ids, gains, int(evals), weights


def distance_block(block, xr, x, sq_rows, sq_all, rel, row0):
    """In place, on ``block = D[row0:row0+b]`` columns ``row0:`` (the upper part; see
    :func:`mirror_lower`), which hold the Gram entries ``X[row0 + r] . X[i]``: distances
    ``sqrt(max(|a|^2 + |b|^2 - 2 a.b, 0))`` (diagonal exactly 0), then the entries where the
    expansion cancels (``d^2 < rel * (|a|^2 + |b|^2)``, near-duplicates) recomputed by direct
    differences. Returns the number of entries recomputed."""
    b, n = block.shape
    d = x.shape[1]
    _check_rows(row0, b, n)
    fixed = _native().nessa_distance_block(
        _arg(block, np.float32, (b, n), "block", writable=True), b, n, _arg(xr, np.float32, (b, d), "xr"),
        _arg(x, np.float32, (n, d), "x"), d, _arg(sq_rows, np.float32, (b,), "sq_rows"),
        _arg(sq_all, np.float32, (n,), "sq_all"), float(rel), int(row0),
    )
    return int(fixed)


def direct_block(block, xr, xt, row0):
    """``block[r, i] = ||xr[r] - x[i]||`` for ``i >= row0`` (the upper part of
    ``block = D[row0:row0+b]``; see :func:`mirror_lower`) by direct differences (``xt`` is ``x``
    transposed, ``[d, n]``): no cancellation at all, and for small ``d`` faster than GEMM +
    refinement."""
    b, n = block.shape
    d = xt.shape[0]
    _check_rows(row0, b, n)
    _native().nessa_direct_block(
        _arg(block, np.float32, (b, n), "block", writable=True), b, n, _arg(xr, np.float32, (b, d), "xr"),
        _arg(xt, np.float32, (d, n), "xt"), d, int(row0),
    )


def mirror_lower(D, i0, i1):
    """``D[i, j] = D[j, i]`` for rows ``i0 <= i < i1`` and every ``j < i``: the lower part of
    the symmetric ``D`` from the upper part that rows ``< i1`` already hold."""
    n = D.shape[0]
    if not 0 <= int(i0) <= int(i1) <= n:
        raise ValueError(f"rows [{i0}, {i1}) out of range for a {n} x {n} matrix")
    _native().nessa_mirror_lower(_arg(D, np.float32, (n, n), "D", writable=True), n, int(i0), int(i1))


def _check_rows(row0: int, b: int, n: int) -> None:
    if not 0 <= int(row0) <= n - b:  # the block's diagonal entries block[r, row0 + r] must exist
        raise ValueError(f"row0={row0} out of range for a block of {b} rows of {n} distances")


def _check(code: int, what: str) -> None:
    if code == _ENOMEM:
        raise MemoryError(f"{what}: out of memory for the work arrays")
    if code == _EARG:
        raise ValueError(f"{what}: invalid arguments")
