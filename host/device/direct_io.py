"""Reading sample bytes from a file into device buffers, as a multi-GiB shard on a SmartSSD needs.

* :func:`read_full` loops until the request is filled: Linux moves at most 0x7ffff000 bytes per
  ``read`` / ``preadv``, so one call for more than ~2 GiB comes back short; the loop reads in
  ``MAX_IO`` pieces, which keep ``O_DIRECT``'s 4 KiB alignment.
* :func:`split_runs` cuts ``(offset, rows)`` runs into device buffers of at most ``max_bytes``
  (the P2P BAR window, 256 MiB when P2P is off).
* :func:`open_direct` opens ``O_DIRECT`` (the NVMe controller then DMAs into the buffer, bypassing
  the page cache) and falls back to a buffered read, with a logged reason, where the file system
  refuses it.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Iterable

__all__ = ["read_full", "split_runs", "open_direct", "MAX_IO", "MAX_TRANSFER", "DIRECT_ALIGN"]

#: Bytes per ``preadv`` call: 1 GiB, below Linux's 0x7ffff000 cap and a multiple of 4 KiB.
MAX_IO = 1 << 30
#: Bytes of one device buffer / kernel run: the P2P BAR of a card with P2P off is 256 MiB (xocl
#: p2p.c P2P_DEFAULT_BAR_SIZE); the flow takes the smaller of this and the card's BAR.
MAX_TRANSFER = 256 << 20
#: Bytes of one O_DIRECT transfer unit (NVMe logical block / page).
DIRECT_ALIGN = 4096
_log = logging.getLogger(__name__)


def read_full(fd: int, view: memoryview, offset: int, *, max_io: int = MAX_IO) -> int:
    """Read ``len(view)`` bytes at ``offset`` into ``view``, looping over short reads; returns the
    bytes read (fewer only at end of file). ``max_io`` bounds one call (a multiple of 4 KiB keeps
    O_DIRECT reads aligned)."""
    if max_io < 1:
        raise ValueError(f"max_io must be >= 1, got {max_io}")
    view = memoryview(view).cast("B")
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:got + max_io]], offset + got)
        if n == 0:  # end of file
            break
        got += n
    return got


def split_runs(ranges: Iterable[tuple[int, int]], sample_bytes: int, max_bytes: int) -> list[tuple[int, int]]:
    """``(offset, rows)`` runs cut so that no run's aligned read exceeds ``max_bytes``."""
    if sample_bytes < 1:
        raise ValueError(f"sample_bytes must be >= 1, got {sample_bytes}")
    rows_max = (max_bytes - 2 * DIRECT_ALIGN) // sample_bytes  # room for the alignment widening
    if rows_max < 1:
        raise ValueError(f"a device buffer of {max_bytes} bytes cannot hold one {sample_bytes}-byte sample "
                         "plus its 4 KiB alignment")
    out = []
    for off, cnt in ranges:
        off, cnt = int(off), int(cnt)
        while cnt > 0:
            take = min(cnt, rows_max)
            out.append((off, take))
            off += take * sample_bytes
            cnt -= take
    return out


def open_direct(path: str, direct: bool) -> tuple[int, bool]:
    """Open ``path`` for reading, ``O_DIRECT`` when asked and the file system allows it.
    Returns ``(fd, direct_used)``; a refusal (tmpfs, some network file systems) is logged."""
    flag = getattr(os, "O_DIRECT", 0)
    if direct and flag:
        try:
            return os.open(path, os.O_RDONLY | flag), True
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            _log.warning("%s: the file system refuses O_DIRECT; reading it through the page cache", path)
    return os.open(path, os.O_RDONLY), False
