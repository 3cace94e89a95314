"""NumPy inputs: an ``.npz`` with arrays ``x`` and ``y``, or a folder holding ``x.npy`` and ``y.npy``.

Loaded with ``allow_pickle=False``: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from storage_service.ingest.writer import IngestError

__all__ = ["load_arrays"]


def _load(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise IngestError(f"{path}: cannot load without pickle ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise IngestError(f"{path}: not a readable .npy/.npz file ({exc})") from None


def load_arrays(source: Path) -> tuple[np.ndarray, np.ndarray, Path, Path]:
    """``(x, y, x_path, y_path)`` from an ``.npz`` file or a folder with ``x.npy``/``y.npy``."""
    if source.is_dir():
        xp, yp = source / "x.npy", source / "y.npy"
        if not xp.is_file() or not yp.is_file():
            raise IngestError(f"{source}: a NumPy folder needs x.npy and y.npy")
        x, y = _load(xp), _load(yp)
    else:
        npz = _load(source)
        if not hasattr(npz, "files"):  # checked before ``with``: an ndarray is no context manager
            raise IngestError(f"{source}: a single .npy holds no labels; use an .npz with x and y, or a folder with x.npy and y.npy")
        with npz:
            missing = [k for k in ("x", "y") if k not in npz.files]
            if missing:
                raise IngestError(f"{source}: missing array(s) {missing}; found {sorted(npz.files)}")
            try:
                x, y = npz["x"], npz["y"]
            except ValueError as exc:
                raise IngestError(f"{source}: cannot load without pickle ({exc})") from None
        xp = yp = source
    if x.ndim < 2:
        raise IngestError(f"{xp}: x must be [N, *sample_shape], got shape {list(x.shape)}")
    if x.shape[0] == 0:
        raise IngestError(f"{xp}: empty input (zero samples)")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise IngestError(f"{yp}: y has shape {list(y.shape)} but x has {x.shape[0]} samples (count mismatch)")
    if x.dtype.kind not in "uif":
        raise IngestError(f"{xp}: x must be numeric, got dtype {x.dtype}")
    return x, y, xp, yp
