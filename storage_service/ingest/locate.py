"""Where Fashion-MNIST lies on this machine: the search order the demo, benchmarks and calibration share.

    explicit folder (an error if it lacks the files)  ->  $NESSA_DATA
      ->  /usr/share/datasets/fashion-mnist (Debian: dataset-fashion-mnist)  ->  ../shared/data/fashion-mnist
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["find_fashion_mnist", "DataNotFound", "DATA_ENV", "SYSTEM_DATA", "IDX_FILES"]

DATA_ENV = "NESSA_DATA"
SYSTEM_DATA = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
_REPO_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "fashion-mnist"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataNotFound(ValueError):
    """A folder the user named does not hold the data set (the message names the folder)."""


def _has_idx(folder: Path) -> bool:
    return all(any((folder / f"{name}{ext}").is_file() for ext in ("", ".gz")) for name in IDX_FILES)


def find_fashion_mnist(explicit: Path | str | None = None) -> tuple[Path | None, list[str]]:
    """The first folder holding the four Fashion-MNIST IDX files, and the places looked at.

    An explicit folder that lacks them is an error (the user asked for it), not a fallback.
    """
    if explicit is not None:
        folder = Path(explicit).expanduser()
        if not _has_idx(folder):
            raise DataNotFound(f"--data {folder}: no Fashion-MNIST IDX files there (need {', '.join(IDX_FILES)}[.gz])")
        return folder, [str(folder)]
    looked = []
    candidates = []
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]).expanduser())
    candidates += [SYSTEM_DATA, _REPO_DATA]
    for folder in candidates:
        looked.append(str(folder))
        if _has_idx(folder):
            return folder, looked
    return None, looked
