"""CIFAR-10 and CIFAR-100 in the layouts their authors publish, read without running a pickle.

Binary layout (``cifar-10-batches-bin``, ``cifar-100-binary``): fixed-size records,
* CIFAR-10: ``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin``; each record is
  1 label byte then 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, row-major 32×32);
  class names one per line in ``batches.meta.txt``.
* CIFAR-100: ``train.bin`` and ``test.bin``; each record is a coarse label byte, a fine label
  byte, then the 3,072 pixel bytes; names in ``fine_label_names.txt`` / ``coarse_label_names.txt``.

Python layout (``cifar-10-batches-py``, ``cifar-100-python``): pickled dicts (Python 2 pickles,
read with ``encoding="bytes"``) with ``b"data"`` (N × 3,072 uint8, same pixel order) and
``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` / ``b"coarse_labels"`` (CIFAR-100); names in
``batches.meta`` / ``meta``. A pickle can run code, so these are read by an unpickler that
resolves only the numpy globals an array needs (and ``_codecs.encode``, which a protocol-2 pickle
written by Python 3 uses for bytes) and refuses anything else.

Samples come out as (N, 3, 32, 32) uint8 (channels first, as the store and the models expect),
labels as int64: the fine labels for CIFAR-100 unless ``label="coarse"``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from storage_service.ingest.writer import IngestError

__all__ = ["is_cifar", "load_cifar"]

_PIXELS = 3 * 32 * 32
_C10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def is_cifar(folder: Path) -> bool:
    """Whether ``folder`` holds CIFAR-10 or CIFAR-100 in either published layout."""
    names = {p.name for p in folder.iterdir()}
    return bool(names & {"data_batch_1", "data_batch_1.bin", "test_batch", "test_batch.bin"}) or (
        {"train", "test", "meta"} <= names or ({"train.bin", "test.bin"} <= names and "fine_label_names.txt" in names)
    )


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves only what a pickled numpy array needs; any other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3 (as torch's weights-only loader allows)
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise IngestError(f"refusing to load {module}.{name} from a CIFAR pickle (only numpy arrays are allowed)")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        out = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed pickle is a named ingest error
        raise IngestError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(out, dict):
        raise IngestError(f"{path}: not a CIFAR python batch (a {type(out).__name__}, not a dict)")
    return out


def _pixels(data, path: Path) -> np.ndarray:
    x = np.asarray(data)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != _PIXELS:
        raise IngestError(f"{path}: data is {x.dtype} {x.shape}, expected uint8 (N, {_PIXELS})")
    return x.reshape(-1, 3, 32, 32)


def _labels(values, n: int, path: Path, key: str) -> np.ndarray:
    y = np.asarray(values, dtype=np.int64)
    if y.shape != (n,):
        raise IngestError(f"{path}: {key} has {y.size} entries for {n} images")
    return y


def _names(path: Path) -> list[str] | None:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else None


def _records(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    rec = label_bytes + _PIXELS
    if raw.size == 0 or raw.size % rec:
        raise IngestError(f"{path}: {raw.size} bytes is not a whole number of {rec}-byte CIFAR records")
    raw = raw.reshape(-1, rec)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, :label_bytes].astype(np.int64)


def load_cifar(folder: Path, *, label: str = "fine") -> dict[str, tuple[np.ndarray, np.ndarray, list[str] | None]]:
    """``{split: (samples, labels, class names)}`` for the ``train`` and ``test`` splits present."""
    if label not in ("fine", "coarse"):
        raise IngestError(f"label must be 'fine' or 'coarse', got {label!r}")
    folder = Path(folder)
    f = lambda name: folder / name  # noqa: E731
    out: dict[str, tuple[np.ndarray, np.ndarray, list[str] | None]] = {}
    if f("data_batch_1.bin").exists() or f("test_batch.bin").exists():  # CIFAR-10, binary
        names = _names(f("batches.meta.txt"))
        for split, files in (("train", [f(n + ".bin") for n in _C10_TRAIN]), ("test", [f("test_batch.bin")])):
            present = [p for p in files if p.exists()]
            if present:
                parts = [_records(p, 1) for p in present]
                out[split] = (np.concatenate([x for x, _ in parts]), np.concatenate([y[:, 0] for _, y in parts]), names)
    elif f("data_batch_1").exists() or f("test_batch").exists():  # CIFAR-10, python
        names = None
        if f("batches.meta").exists():
            names = [n.decode() for n in _unpickle(f("batches.meta")).get(b"label_names", [])] or None
        for split, files in (("train", [f(n) for n in _C10_TRAIN]), ("test", [f("test_batch")])):
            xs, ys = [], []
            for p in (p for p in files if p.exists()):
                d = _unpickle(p)
                xs.append(_pixels(d.get(b"data"), p))
                ys.append(_labels(d.get(b"labels"), len(xs[-1]), p, "labels"))
            if xs:
                out[split] = (np.concatenate(xs), np.concatenate(ys), names)
    elif f("train.bin").exists() or f("test.bin").exists():  # CIFAR-100, binary
        names = _names(f(f"{label}_label_names.txt"))
        for split in ("train", "test"):
            if f(f"{split}.bin").exists():
                x, y = _records(f(f"{split}.bin"), 2)
                out[split] = (x, y[:, 1 if label == "fine" else 0], names)
    else:  # CIFAR-100, python
        names = None
        if f("meta").exists():
            names = [n.decode() for n in _unpickle(f("meta")).get(f"{label}_label_names".encode(), [])] or None
        for split in ("train", "test"):
            if f(split).exists():
                d = _unpickle(f(split))
                x = _pixels(d.get(b"data"), f(split))
                out[split] = (x, _labels(d.get(f"{label}_labels".encode()), len(x), f(split), f"{label}_labels"), names)
    if not out:
        raise IngestError(f"{folder}: no CIFAR batches found")
    return out
