"""An image folder: one sub-folder per class, each holding image files (needs Pillow).

Class names are the sub-folder names in sorted order. Every image must have the same size and
mode; grey images become ``[H, W]``, colour ``[H, W, 3]`` uint8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from storage_service.ingest.writer import IngestError

__all__ = ["scan_image_folder", "iter_images", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def scan_image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise IngestError(f"{root}: an image folder needs one sub-folder per class; found none")
    files = []
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                files.append((f, label))
    if not files:
        raise IngestError(f"{root}: empty input (no image files with suffixes {sorted(IMAGE_SUFFIXES)})")
    return classes, files


def _open(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise IngestError("image folders need Pillow: pip install 'nessa[images]'") from None
    try:
        with Image.open(path) as im:
            im = im.convert("L") if im.mode in ("1", "L", "P", "I;16") else im.convert("RGB")
            return np.asarray(im, dtype=np.uint8)
    except OSError as exc:
        raise IngestError(f"{path}: cannot decode image ({exc})") from None


def iter_images(files: list[tuple[Path, int]], chunk: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of ``(images, labels)``; the first image fixes shape and mode for all others."""
    first = _open(files[0][0])
    shape = first.shape
    for lo in range(0, len(files), chunk):
        part = files[lo : lo + chunk]
        out = np.empty((len(part), *shape), dtype=np.uint8)
        for i, (path, _) in enumerate(part):
            img = first if lo + i == 0 else _open(path)
            if img.shape != shape:
                raise IngestError(f"{path}: image shape {list(img.shape)} differs from {list(shape)} of {files[0][0]}")
            out[i] = img
        yield out, np.fromiter((lbl for _, lbl in part), dtype=np.int32, count=len(part))
