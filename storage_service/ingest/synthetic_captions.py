"""SYNTHETIC image–caption data from Fashion-MNIST (issue #17 item 4).

No CLIP weights or web captions can be fetched here, so this builds a stand-in for CC3M/LAION
shards: every Fashion-MNIST image gets a generated caption — a template (``TEMPLATES``) filled
with its class name (``FASHION_MNIST_CLASS_NAMES``, the names the store's manifest carries, so
zero-shot prompts built from a store's class names match the captions' words), often with an
attribute word (``dark`` / ``light`` from the image's brightness, else a neutral word from
``ATTRIBUTES``) — and a seeded share (default 10 %) of captions deliberately describe another
class (``mismatched``: the noise that CLIP-score filtering and ClipCov should drop). Labels are
kept, so zero-shot accuracy can be measured. It is synthetic: the captions carry no more than
the label plus brightness, and say so in every doc that uses them.

``write_caption_shards`` writes Parquet shards in the layout ``nessa ingest --kind captions``
reads (``part-00000.parquet`` ...): ``image`` (PNG bytes when Pillow is installed, else a
``28 x 28`` uint8 nested list), ``caption`` (string), ``label`` (int32; the schema metadata
``nessa.class_names`` names the classes), ``mismatched`` (bool). CLI: ``nessa synthetic-captions``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from storage_service.ingest.captions import CLASS_NAMES_KEY
from storage_service.ingest.idx import FASHION_MNIST_CLASSES, find_idx_pairs, load_idx_pair
from storage_service.ingest.writer import IngestError

__all__ = ["FASHION_MNIST_CLASS_NAMES", "TEMPLATES", "ATTRIBUTES", "DEFAULT_MISMATCH", "CLASS_NAMES_KEY",
           "captions_for", "write_caption_shards", "make_synthetic_captions"]

#: Class names in label order (the names Fashion-MNIST stores get in their manifest).
FASHION_MNIST_CLASS_NAMES: tuple[str, ...] = tuple(FASHION_MNIST_CLASSES)
#: Caption templates; ``{}`` takes "[attribute ]class name". Zero-shot evaluation uses these with
#: the bare class names.
TEMPLATES: tuple[str, ...] = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a {}.",
                              "a product photo of a {}.", "a black and white photo of a {}.")
#: Neutral attribute words (brightness words come from the image itself).
ATTRIBUTES: tuple[str, ...] = ("plain", "simple", "classic", "casual", "small", "large", "new", "worn")
DEFAULT_MISMATCH = 0.10
_ATTR_SHARE = 0.6  # share of captions with an attribute word


def captions_for(labels, *, seed: int = 0, mismatch: float = DEFAULT_MISMATCH, images: np.ndarray | None = None,
                 class_names: Sequence[str] = FASHION_MNIST_CLASS_NAMES, return_mismatched: bool = False):
    """One synthetic caption per label (seeded); with ``return_mismatched`` also the bool mask of
    rows whose caption names another class. ``images`` (n, ...) lets attributes say dark/light."""
    labels = np.asarray(labels)
    if not 0.0 <= float(mismatch) <= 1.0:
        raise ValueError(f"mismatch must be a share in [0, 1], got {mismatch!r}")
    k = len(class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}) for {k} class names")
    rng = np.random.default_rng(seed)
    n = labels.size
    wrong = rng.random(n) < mismatch
    shown = labels.astype(np.int64).copy()
    shown[wrong] = (labels[wrong] + rng.integers(1, k, int(wrong.sum()))) % k  # always another class
    template = rng.integers(0, len(TEMPLATES), n)
    with_attr = rng.random(n) < _ATTR_SHARE
    neutral = rng.integers(0, len(ATTRIBUTES), n)
    bright = None
    if images is not None:
        means = np.asarray(images, dtype=np.float32).reshape(n, -1).mean(axis=1)
        lo, hi = np.quantile(means, [1 / 3, 2 / 3]) if n else (0.0, 0.0)
        bright = np.where(means < lo, "dark", np.where(means > hi, "light", ""))
    out = []
    for i in range(n):
        attr = ""
        if with_attr[i]:
            attr = (bright[i] if bright is not None and bright[i] else ATTRIBUTES[neutral[i]]) + " "
        out.append(TEMPLATES[template[i]].format(attr + class_names[shown[i]].lower()))
    return (out, wrong) if return_mismatched else out


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _has_pillow() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def write_caption_shards(out: str | Path, images: np.ndarray, labels, *, seed: int = 0, mismatch: float = DEFAULT_MISMATCH,
                         rows_per_shard: int = 10000, image_format: str = "auto",
                         class_names: Sequence[str] = FASHION_MNIST_CLASS_NAMES) -> dict:
    """Write synthetic caption shards for ``images`` (n, H, W) uint8 into the new folder ``out``
    (atomically: a temporary sibling renamed into place). ``image_format``: ``png`` (needs
    Pillow), ``array`` or ``auto``. Returns a summary."""
    out = Path(out)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels):
        raise IngestError(f"images must be uint8 (n, H, W) with one label each, got {images.dtype} {list(images.shape)}")
    if image_format not in ("auto", "png", "array"):
        raise IngestError(f"image format must be auto, png or array, got {image_format!r}")
    if image_format == "auto":
        image_format = "png" if _has_pillow() else "array"
    if image_format == "png" and not _has_pillow():
        raise IngestError("--image-format png needs Pillow (pip install 'nessa[images]')")
    if rows_per_shard < 1:
        raise IngestError(f"rows per shard must be >= 1, got {rows_per_shard}")
    if out.exists():
        raise IngestError(f"{out}: exists (choose a new folder)")
    try:
        captions, wrong = captions_for(labels, seed=seed, mismatch=mismatch, images=images, class_names=class_names,
                                       return_mismatched=True)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    h, w = images.shape[1:]
    meta = {CLASS_NAMES_KEY: json.dumps(list(class_names)).encode(), b"nessa.synthetic": b"fashion-mnist captions"}
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    tmp.mkdir(parents=True)
    try:
        files = []
        for k, lo in enumerate(range(0, len(labels), rows_per_shard)):
            sl = slice(lo, lo + rows_per_shard)
            if image_format == "png":
                img = pa.array([_png(a) for a in images[sl]], pa.binary())
            else:
                flat = pa.array(images[sl].reshape(-1), pa.uint8())
                img = pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(flat, w), h)
            table = pa.table({"image": img, "caption": pa.array(captions[sl], pa.string()),
                              "label": pa.array(labels[sl].astype(np.int32)), "mismatched": pa.array(wrong[sl])},
                             metadata=meta)
            import pyarrow.parquet as pq

            name = f"part-{k:05d}.parquet"
            pq.write_table(table, tmp / name)
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
            files.append(name)
        os.rename(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "rows": int(len(labels)), "shards": files, "image_format": image_format,
            "mismatched": int(wrong.sum()), "seed": seed, "mismatch": mismatch}


def make_synthetic_captions(fm_dir: str | Path, out: str | Path, *, split: str = "train", limit: int | None = None,
                            seed: int = 0, mismatch: float = DEFAULT_MISMATCH, rows_per_shard: int = 10000,
                            image_format: str = "auto") -> dict:
    """Synthetic caption shards for a Fashion-MNIST split (IDX folder ``fm_dir``); ``limit`` keeps
    the first ``limit`` images (a seeded choice would change nothing about the captions' nature)."""
    pairs = find_idx_pairs(Path(fm_dir))
    if split not in pairs:
        raise IngestError(f"{fm_dir}: no Fashion-MNIST {split!r} split (found {sorted(pairs) or 'none'})")
    x, y = load_idx_pair(*pairs[split])
    if limit is not None:
        if limit < 1:
            raise IngestError(f"--limit must be >= 1, got {limit}")
        x, y = x[:limit], y[:limit]
    return write_caption_shards(out, x, y, seed=seed, mismatch=mismatch, rows_per_shard=rows_per_shard,
                                image_format=image_format)
