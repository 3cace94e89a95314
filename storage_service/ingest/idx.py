"""MNIST-style IDX files (gzipped or not).

IDX header: two zero bytes, a type code (0x08 = uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then one big-endian uint32 per dimension.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from storage_service.ingest.writer import IngestError

__all__ = ["read_idx", "find_idx_pairs", "FASHION_MNIST_CLASSES"]

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# split name -> (images stem, labels stem) as the files are named upstream
_SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file into a numpy array (native byte order)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IngestError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    if len(raw) < 4:
        raise IngestError(f"{path}: truncated file ({len(raw)} bytes, no IDX header)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise IngestError(f"{path}: bad magic number 0x{raw[:4].hex()} (not an IDX file)")
    ndim = raw[3]
    if ndim == 0:
        raise IngestError(f"{path}: bad magic number 0x{raw[:4].hex()} (zero dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IngestError(f"{path}: truncated file (header needs {header} bytes, file has {len(raw)})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[raw[2]])
    need = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) < need:
        raise IngestError(f"{path}: truncated file (header promises {need} bytes for shape {list(dims)}, file has {len(raw)})")
    if len(raw) > need:
        raise IngestError(f"{path}: {len(raw) - need} trailing bytes after the data for shape {list(dims)}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{"train": (images, labels), "test": (...)}`` for the splits present in ``folder``."""
    pairs = {}
    for split, (img_stem, lbl_stem) in _SPLITS.items():
        img, lbl = _find(folder, img_stem), _find(folder, lbl_stem)
        if img and lbl:
            pairs[split] = (img, lbl)
        elif img or lbl:
            missing = lbl_stem if img else img_stem
            raise IngestError(f"{folder}: found {(img or lbl).name} but not its partner {missing}[.gz]")
    return pairs


def load_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim < 2:
        raise IngestError(f"{images}: image file must have >= 2 dimensions, has shape {list(x.shape)}")
    if y.ndim != 1:
        raise IngestError(f"{labels}: label file must be 1-D, has shape {list(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise IngestError(f"{images} has {x.shape[0]} images but {labels} has {y.shape[0]} labels (count mismatch)")
    if x.shape[0] == 0:
        raise IngestError(f"{images}: empty input (zero images)")
    return x, y
