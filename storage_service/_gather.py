"""ctypes binding of ``_gather_native.c``: one-pass, SIGBUS-guarded row gather for ``Store``.

The library is an optional extension (pip builds it with the C compiler it finds). Every read
``Store`` makes from a shard's memory map goes through the guarded functions here: a mapping
whose file shrank (truncated or rewritten in place) or failed to read makes the call return
``False`` instead of killing the process with SIGBUS (see the C file). Without the library
``Store`` does not map shards at all and reads rows with ``os.pread`` (slower, equally safe).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
from pathlib import Path

import numpy as np

__all__: list[str] = []  # internal module

_P = ctypes.c_void_p
_I64 = ctypes.c_int64


def _load() -> ctypes.CDLL | None:
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_gather_native{suffix}"
        if path.is_file():
            lib = ctypes.CDLL(str(path))
            lib.nessa_gather_rows.restype = None
            lib.nessa_gather_rows.argtypes = [_P, _P, _I64, _P, _I64, _I64, _P]
            if not hasattr(lib, "nessa_gather_rows_guarded"):
                return None  # a build from before the guard: never read a mapping unguarded
            lib.nessa_gather_rows_guarded.restype = ctypes.c_int
            lib.nessa_gather_rows_guarded.argtypes = [_P, _P, _I64, _P, _I64, _I64, _P]
            lib.nessa_copy_guarded.restype = ctypes.c_int
            lib.nessa_copy_guarded.argtypes = [_P, _P, _I64]
            return lib
    return None


_lib = _load()


def available() -> bool:
    return _lib is not None


def row_bases(views: list[np.ndarray]) -> np.ndarray:
    """Addresses of row 0 of each ``[rows, row_bytes]`` view (the caller keeps the views alive)."""
    for v in views:
        if v.ndim != 2 or v.dtype != np.uint8 or v.strides != (v.shape[1], 1):
            raise ValueError("every view must be a row-contiguous [rows, row_bytes] uint8 array")
    return np.array([v.ctypes.data for v in views], dtype=np.uint64)


def _check(bases: np.ndarray, starts: np.ndarray, ids: np.ndarray, row_bytes: int, out: np.ndarray) -> None:
    n_batches = len(bases)
    if starts.dtype != np.int64 or starts.shape != (n_batches + 1,) or not starts.flags.c_contiguous:
        raise ValueError(f"starts must be a contiguous int64 array of {n_batches + 1}")
    if ids.dtype != np.int64 or ids.ndim != 1 or not ids.flags.c_contiguous:
        raise ValueError("ids must be a contiguous 1-D int64 array")
    if out.dtype != np.uint8 or out.shape != (ids.size, row_bytes) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writable contiguous uint8 [{ids.size}, {row_bytes}] array")


def gather_rows(bases: np.ndarray, starts: np.ndarray, ids: np.ndarray, row_bytes: int, out: np.ndarray) -> bool:
    """``out[i] = row ids[i]`` under the SIGBUS guard; ``False`` if a mapping faulted (``out`` is
    then partial). Ids must be in range (Store checks them), ``out`` [n, row_bytes] uint8."""
    _check(bases, starts, ids, row_bytes, out)
    rc = _lib.nessa_gather_rows_guarded(bases.ctypes.data, starts.ctypes.data, len(bases), ids.ctypes.data, ids.size, row_bytes,
                                        out.ctypes.data)
    if rc < 0:
        raise OSError("cannot install the SIGBUS guard (sigaction failed)")
    return rc == 0


def gather_rows_unguarded(bases: np.ndarray, starts: np.ndarray, ids: np.ndarray, row_bytes: int, out: np.ndarray) -> None:
    """The same gather without the guard: only for the benchmark's before/after baseline."""
    _check(bases, starts, ids, row_bytes, out)
    _lib.nessa_gather_rows(bases.ctypes.data, starts.ctypes.data, len(bases), ids.ctypes.data, ids.size, row_bytes, out.ctypes.data)


def copy_from(address: int, out: np.ndarray) -> bool:
    """Copy ``out.nbytes`` bytes starting at ``address`` (inside a mapping) into ``out`` under the
    guard; ``False`` if the mapping faulted."""
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out must be a writable contiguous array")
    rc = _lib.nessa_copy_guarded(out.ctypes.data, address, out.nbytes)
    if rc < 0:
        raise OSError("cannot install the SIGBUS guard (sigaction failed)")
    return rc == 0
