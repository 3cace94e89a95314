"""SVHN (cropped digits) in its published layout: ``train_32x32.mat``, ``test_32x32.mat``,
``extra_32x32.mat`` (MATLAB v5 files, read with scipy).

Each file holds ``X``, uint8 of shape (32, 32, 3, N), and ``y``, shape (N, 1), with labels 1–10
where 10 stands for the digit 0. Samples come out as (N, 3, 32, 32) uint8, labels as the digit
(0–9), class names ``"0"`` … ``"9"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage_service.ingest.writer import IngestError

__all__ = ["SVHN_SPLITS", "is_svhn", "load_svhn"]

SVHN_SPLITS = ("train", "test", "extra")
_CLASSES = [str(d) for d in range(10)]


def is_svhn(folder: Path) -> bool:
    return any((Path(folder) / f"{s}_32x32.mat").exists() for s in SVHN_SPLITS)


def load_svhn(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """``{split: (samples, labels, class names)}`` for the splits present."""
    from scipy.io import loadmat

    out = {}
    for split in SVHN_SPLITS:
        path = Path(folder) / f"{split}_32x32.mat"
        if not path.exists():
            continue
        try:
            mat = loadmat(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a named ingest error
            raise IngestError(f"{path}: not a MATLAB file ({type(exc).__name__}: {exc})") from None
        x, y = mat.get("X"), mat.get("y")
        if x is None or y is None:
            raise IngestError(f"{path}: needs variables X and y, has {sorted(k for k in mat if not k.startswith('__'))}")
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
            raise IngestError(f"{path}: X is {x.dtype} {x.shape}, expected uint8 (32, 32, 3, N)")
        y = np.asarray(y).reshape(-1).astype(np.int64)
        if len(y) != x.shape[3]:
            raise IngestError(f"{path}: y has {len(y)} labels for {x.shape[3]} images")
        if y.size and (y.min() < 1 or y.max() > 10):
            raise IngestError(f"{path}: labels must be 1..10 (10 is the digit 0), found {y.min()}..{y.max()}")
        out[split] = (np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y % 10, _CLASSES)
    if not out:
        raise IngestError(f"{folder}: no SVHN files (train_32x32.mat, test_32x32.mat, extra_32x32.mat)")
    return out
