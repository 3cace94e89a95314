"""Keep freed message buffers in the process instead of handing them back to the kernel.

Why: every streamed batch makes gRPC-Python allocate and free message-sized buffers on both
sides (the server's send slice; the client's read slices and the joined ``bytes``), often on
one thread and freed on another. With glibc's defaults those pages go back to the kernel at
once (mmap for big blocks, heap trimming for the rest), so the next batch page-faults and
zero-fills fresh memory: measured 100-670 page faults per 1-4 MiB message on the client and
~0.3 CPU-s/GB, a third of the client's CPU. Raising the mmap and trim thresholds keeps those
pages for reuse (``bench/stream.py`` applies the same to every transport it compares).

Cost: the process keeps up to ``TRIM_THRESHOLD`` of free heap per malloc arena instead of
returning it. glibc only (elsewhere, e.g. musl, nothing happens); an explicit
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the environment wins.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Blocks below this come from the heap, not a fresh mmap (32 MiB is glibc's maximum).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of a heap kept before trimming (a few 4 MiB batches and their slices).
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_lock = threading.Lock()
_state: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; True if they are in force."""
    global _state
    with _lock:
        if _state is None:
            _state = _apply()
        return _state


def _apply() -> bool:
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _ENV):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - no C library symbols to look up
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; musl's stub returns 0 and changes nothing.
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
