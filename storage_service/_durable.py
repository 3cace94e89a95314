"""Durability helper shared by every writer of the store root (ingest, columns, models, embed jobs).

A rename is atomic but not durable until the folder holding it is fsynced; ``fsync_dir`` does
that. Some file systems cannot fsync a folder (the call fails): the rename is still atomic
there, so that failure is not an error.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir"]


def fsync_dir(path: Path | str) -> None:
    """Flush ``path``'s directory entries (renames, creations) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)
