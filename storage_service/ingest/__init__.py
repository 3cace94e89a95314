"""Turn external data into NeSSA stores (``nessa ingest SOURCE DEST``).

Sources (auto-detected, or named with ``kind``):

* ``idx``: a folder of MNIST / Fashion-MNIST IDX files (gzipped or not); becomes ``DEST/train``
  and ``DEST/test`` (whichever splits are present).
* ``arrays``: an ``.npz`` with ``x`` and ``y``, or a folder with ``x.npy`` and ``y.npy``.
* ``images``: a folder with one sub-folder of images per class (Pillow).
* ``table``: an Arrow IPC or Parquet table with a sample and a label column.
* ``cifar``: CIFAR-10 / CIFAR-100 as published (binary or python batches; ``cifar.py``);
  becomes ``DEST/train`` and ``DEST/test``.
* ``svhn``: SVHN's ``train_32x32.mat`` / ``test_32x32.mat`` / ``extra_32x32.mat``; becomes
  ``DEST/train``, ``DEST/test``, ``DEST/extra``.
* ``cinic10``, ``tinyimagenet``, ``imagenet100``: those data sets' published folder layouts
  (``folders.py``); become ``DEST/train`` + ``DEST/valid`` + ``DEST/test`` (CINIC-10) or
  ``DEST/train`` + ``DEST/val``; ``image_size`` resizes (ImageNet-100: default 64).

Every ingest is atomic: it writes into a temporary sibling folder and renames it into place.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from storage_service.ingest.arrays import load_arrays
from storage_service.ingest.captions import ingest_captions
from storage_service.ingest.cifar import is_cifar, load_cifar
from storage_service.ingest.folders import FOLDER_KINDS, detect_folder_kind, ingest_folders
from storage_service.ingest.idx import FASHION_MNIST_CLASSES, find_idx_pairs, load_idx_pair
from storage_service.ingest.images import iter_images, scan_image_folder
from storage_service.ingest.labels import as_int_labels
from storage_service.ingest.svhn import is_svhn, load_svhn
from storage_service.ingest.table import TABLE_SUFFIXES, load_table
from storage_service.ingest.writer import (DEFAULT_SHARD_BYTES, IngestError, StoreWriter, atomic_dir, write_chunks,
                                           write_store)
from storage_service.columns import DEFAULT_MAX_BYTES
from storage_service.manifest import Manifest

__all__ = ["SourceKind", "ingest", "detect_kind", "write_store", "IngestError", "StoreWriter", "DEFAULT_SHARD_BYTES"]


class SourceKind(str, enum.Enum):
    IDX = "idx"
    ARRAYS = "arrays"
    IMAGES = "images"
    TABLE = "table"
    CIFAR = "cifar"
    SVHN = "svhn"
    CINIC10 = "cinic10"
    TINYIMAGENET = "tinyimagenet"
    IMAGENET100 = "imagenet100"
    CAPTIONS = "captions"  # image–caption Parquet/Arrow shards (ingest/captions.py); never auto-detected


def detect_kind(source: Path) -> SourceKind:
    if not source.exists():
        raise IngestError(f"{source}: no such file or folder")
    if source.is_dir():
        entries = [p for p in source.iterdir() if not p.name.startswith(".")]
        if not entries:
            raise IngestError(f"{source}: empty input (empty folder)")
        if any("idx" in p.name for p in entries if p.is_file()):
            return SourceKind.IDX
        if is_cifar(source):
            return SourceKind.CIFAR
        if is_svhn(source):
            return SourceKind.SVHN
        if (folder_kind := detect_folder_kind(source)) is not None:
            return SourceKind(folder_kind)
        if (source / "x.npy").exists() or (source / "y.npy").exists():
            return SourceKind.ARRAYS
        if any(p.is_dir() for p in entries):
            return SourceKind.IMAGES
        raise IngestError(f"{source}: cannot tell the input kind (no IDX files, x.npy/y.npy, or class sub-folders)")
    suffix = source.suffix.lower()
    if suffix in (".npz", ".npy"):
        return SourceKind.ARRAYS
    if suffix in TABLE_SUFFIXES:
        return SourceKind.TABLE
    raise IngestError(f"{source}: unknown input file type {suffix!r} (expected .npz, .npy, .arrow, .feather, .parquet, or a folder)")


def _chunks(x: np.ndarray, labels: np.ndarray, rows: int = 8192):
    """Row chunks, so the progress bar moves on large arrays."""
    for lo in range(0, len(labels), rows):
        yield x[lo : lo + rows], labels[lo : lo + rows]


def _check_samples(x: np.ndarray, where) -> np.ndarray:
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise IngestError(f"{where}: samples contain NaN or infinite values")
    return x


def ingest(source: str | Path, dest: str | Path, *, kind: SourceKind | str | None = None, name: str | None = None,
           overwrite: bool = False, shard_bytes: int = DEFAULT_SHARD_BYTES, sample_column: str | None = None,
           label_column: str | None = None, shape: Sequence[int] | None = None, progress: bool = True,
           image_size: int | None = None, caption_column: str | None = None, image_column: str | None = None,
           embedding_columns: Sequence[str] | None = None, max_caption_bytes: int | None = None,
           embedding_dtype: str = "float16") -> dict[str, Manifest]:
    """Ingest ``source`` into ``dest``; returns ``{relative store path: manifest}``.

    ``image_size`` (folder layouts and encoded caption images): resize every image to that square
    size. ``caption_column`` / ``image_column`` / ``embedding_columns`` (or ``kind="captions"``):
    image–caption shards with a ``text`` column and embedding columns (ingest/captions.py)."""
    source, dest = Path(source), Path(dest)
    if kind is None and (caption_column is not None or embedding_columns):
        kind = SourceKind.CAPTIONS
    kind = SourceKind(kind) if kind is not None else detect_kind(source)
    if kind is not SourceKind.CAPTIONS and (caption_column or image_column or embedding_columns or max_caption_bytes):
        raise IngestError(f"--caption-column/--image-column/--embedding-column/--max-caption-bytes apply to image–caption "
                          f"shards (--kind captions), not to {kind.value}")
    if kind is SourceKind.CAPTIONS:
        if not source.exists():
            raise IngestError(f"{source}: no such file or folder")
        with tqdm(total=None, unit="samples", desc=name or dest.name, disable=not progress, leave=False) as pb:
            return ingest_captions(source, dest, image_column=image_column or sample_column, caption_column=caption_column,
                                   label_column=label_column, embedding_columns=embedding_columns, shape=shape,
                                   image_size=image_size, name=name, overwrite=overwrite, shard_bytes=shard_bytes,
                                   max_caption_bytes=max_caption_bytes or DEFAULT_MAX_BYTES,
                                   embedding_dtype=embedding_dtype, progress=pb)
    if not source.exists():
        raise IngestError(f"{source}: no such file or folder")
    if dest.exists() and not overwrite:
        raise IngestError(f"{dest}: destination exists (use --overwrite to replace it)")
    if kind.value in FOLDER_KINDS:
        return ingest_folders(kind.value, source, dest, image_size=image_size, name=name, overwrite=overwrite,
                              shard_bytes=shard_bytes, progress=progress)
    if image_size is not None:
        raise IngestError(f"image_size applies to the folder layouts ({', '.join(FOLDER_KINDS)}), not to {kind.value}")
    base = name or dest.name
    out: dict[str, Manifest] = {}

    def bar(total: int, desc: str):
        return tqdm(total=total, unit="samples", desc=desc, disable=not progress, leave=False)

    if kind is SourceKind.IDX:
        pairs = find_idx_pairs(source)
        if not pairs:
            raise IngestError(f"{source}: no IDX image/label pairs (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz], or t10k-…)")
        loaded = {split: load_idx_pair(*paths) for split, paths in pairs.items()}  # validate all before writing
        classes = FASHION_MNIST_CLASSES if "fashion" in str(source.resolve()).lower() else None
        with atomic_dir(dest, overwrite=overwrite) as tmp:
            for split, (x, y) in loaded.items():
                labels, names = as_int_labels(y, where=str(pairs[split][1]))
                num_classes = max(int(labels.max()) + 1, len(classes or []))
                sub = tmp / split
                sub.mkdir()
                with bar(len(labels), split) as pb:
                    out[split] = write_chunks(sub, _chunks(x, labels), progress=pb, name=f"{base}/{split}", sample_shape=x.shape[1:],
                                              dtype=x.dtype, num_classes=num_classes,
                                              class_names=classes if classes and num_classes == len(classes) else None,
                                              shard_bytes=shard_bytes, extra={"source": "idx"})
        return out

    if kind in (SourceKind.CIFAR, SourceKind.SVHN):
        loaded = load_cifar(source) if kind is SourceKind.CIFAR else load_svhn(source)  # validate all before writing
        with atomic_dir(dest, overwrite=overwrite) as tmp:
            for split, (x, y, classes) in loaded.items():
                num_classes = max(int(y.max()) + 1 if y.size else 0, len(classes or []))
                sub = tmp / split
                sub.mkdir()
                with bar(len(y), split) as pb:
                    out[split] = write_chunks(sub, _chunks(x, y), progress=pb, name=f"{base}/{split}", sample_shape=x.shape[1:],
                                              dtype=x.dtype, num_classes=num_classes,
                                              class_names=classes if classes and num_classes == len(classes) else None,
                                              shard_bytes=shard_bytes, extra={"source": kind.value})
        return out

    if kind is SourceKind.IMAGES:
        classes, files = scan_image_folder(source)
        with atomic_dir(dest, overwrite=overwrite) as tmp, bar(len(files), base) as pb:
            first = next(iter_images(files[:1]))[0]
            out["."] = write_chunks(tmp, iter_images(files), progress=pb, name=base, sample_shape=first.shape[1:],
                                    dtype=np.uint8, class_names=classes, num_classes=len(classes), shard_bytes=shard_bytes,
                                    extra={"source": "images"})
        return out

    if kind is SourceKind.ARRAYS:
        x, y, xp, yp = load_arrays(source)
        where = xp
    else:
        x, y = load_table(source, sample_column=sample_column, label_column=label_column, shape=shape)
        xp = yp = where = source
    _check_samples(x, where)
    labels, names = as_int_labels(y, where=str(yp))
    with atomic_dir(dest, overwrite=overwrite) as tmp, bar(len(labels), base) as pb:
        out["."] = write_chunks(tmp, _chunks(x, labels), progress=pb, name=base, sample_shape=x.shape[1:], dtype=x.dtype,
                                class_names=names, num_classes=len(names) if names else None, shard_bytes=shard_bytes,
                                extra={"source": kind.value})
    return out
