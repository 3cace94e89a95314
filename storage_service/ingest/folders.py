"""Image data sets published as folders of image files: CINIC-10, TinyImageNet, ImageNet-100.

Layouts (as their authors publish them; only the splits present are ingested):

* ``cinic10``: ``train/``, ``valid/``, ``test/``, each with one sub-folder per class
  (``airplane`` … ``truck``) of 32×32 PNGs  ->  ``DEST/train``, ``DEST/valid``, ``DEST/test``.
* ``tinyimagenet`` (``tiny-imagenet-200``): ``wnids.txt`` (the class ids, one a line),
  ``words.txt`` (``wnid<TAB>names``, for the class names), ``train/<wnid>/images/*.JPEG``,
  ``val/images/*.JPEG`` labelled by ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>x0<TAB>y0
  <TAB>x1<TAB>y1``; the box is not kept), all 64×64  ->  ``DEST/train``, ``DEST/val``.
  ``test/images`` carries no labels and is skipped (the manifests' ``extra["skipped"]`` says so).
* ``imagenet100``: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (also the variant with
  ``train.X1`` … ``train.X4`` and ``val.X``), images of any size, and optionally ``labels.json`` /
  ``Labels.json`` (``{wnid: name}``) for the class names  ->  ``DEST/train``, ``DEST/val``.

Labels are positions in the sorted class-folder names (sorted wnids for TinyImageNet), as torchvision's
ImageFolder numbers them. Samples are stored (3, H, W) uint8, channels first like CIFAR (grey
images become RGB, since CINIC-10's and TinyImageNet's ImageNet-drawn images include some).
``image_size`` S resizes each image's shorter side to S (bicubic) and crops the centre S×S, so every
sample has one shape; ImageNet-100 needs it and defaults to 64 (a size a CPU can train on);
CINIC-10 and TinyImageNet keep their native size unless S is given, and then every image must have
the first one's size.

The whole layout is checked (class folders, annotations) before any image is decoded, and the
images are written through ``atomic_dir``: any bad file raises ``IngestError`` naming it and
leaves nothing at the destination. Images are decoded by a few threads (Pillow releases the GIL
while decoding and resizing); JPEGs are decoded at a reduced DCT scale when that stays >= S.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from storage_service.ingest.images import IMAGE_SUFFIXES
from storage_service.ingest.writer import DEFAULT_SHARD_BYTES, IngestError, atomic_dir, write_chunks
from storage_service.manifest import Manifest

__all__ = ["FOLDER_KINDS", "DEFAULT_IMAGENET100_SIZE", "detect_folder_kind", "ingest_folders",
           "is_cinic10", "is_tinyimagenet", "is_imagenet100"]

FOLDER_KINDS = ("cinic10", "tinyimagenet", "imagenet100")
DEFAULT_IMAGENET100_SIZE = 64  # ImageNet-100's images differ in size; 64x64 keeps ResNet-18 trainable on a CPU
_CHUNK = 256  # images decoded per chunk (and appended to the store at once)


@dataclass
class _Split:
    name: str  # store sub-folder
    files: list[tuple[Path, int]]


@dataclass
class _Plan:
    kind: str
    names: list[str]  # class names in label order
    splits: list[_Split]
    image_size: int | None
    extra: dict = field(default_factory=dict)


def _dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _train_dirs(folder: Path) -> list[Path]:
    if (folder / "train").is_dir():
        return [folder / "train"]
    return sorted(p for p in folder.glob("train.X*") if p.is_dir())


def _val_dir(folder: Path) -> Path | None:
    return next((p for p in (folder / "val", folder / "val.X") if p.is_dir()), None)


def is_tinyimagenet(folder: Path) -> bool:
    return (folder / "wnids.txt").is_file() or (folder / "val" / "val_annotations.txt").is_file()


def is_cinic10(folder: Path) -> bool:
    return (folder / "valid").is_dir() and ((folder / "train").is_dir() or (folder / "test").is_dir())


def is_imagenet100(folder: Path) -> bool:
    return bool(_train_dirs(folder)) and _val_dir(folder) is not None


def detect_folder_kind(folder: Path) -> str | None:
    """``"tinyimagenet"``, ``"cinic10"``, ``"imagenet100"`` or None (in that order: TinyImageNet
    also has train/ and val/ folders)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for kind, test in (("tinyimagenet", is_tinyimagenet), ("cinic10", is_cinic10), ("imagenet100", is_imagenet100)):
        if test(folder):
            return kind
    return None


def _class_folders(split_dir: Path, classes: list[str] | None, what: str) -> list[tuple[Path, int]]:
    """Images of ``split_dir/<class>/``; labels index ``classes`` (None: this split's own folders,
    each of which must hold images). An image directly in ``split_dir`` has no label: an error."""
    loose = _images_in(split_dir)
    if loose:
        raise IngestError(f"{loose[0]}: an image outside a class folder has no label ({what} keeps every image in "
                          f"{split_dir.name}/<class>/; {len(loose)} such file(s) in {split_dir})")
    found = _dirs(split_dir)
    own = classes is None
    index = {c: i for i, c in enumerate(classes or [d.name for d in found])}
    files: list[tuple[Path, int]] = []
    for d in found:
        if d.name not in index:
            raise IngestError(f"{d}: class folder {d.name!r} is not one of the training classes")
        imgs = _images_in(d)
        if own and not imgs:
            raise IngestError(f"{d}: empty class folder (no image files)")
        files += [(p, index[d.name]) for p in imgs]
    if not files:
        raise IngestError(f"{split_dir}: no images in class folders (expected {split_dir.name}/<class>/*.png|jpg)")
    return files


def _plan_cinic10(src: Path) -> _Plan:
    present = [s for s in ("train", "valid", "test") if (src / s).is_dir()]
    if not present:
        raise IngestError(f"{src}: no CINIC-10 split folders (train/, valid/, test/)")
    classes = [d.name for d in _dirs(src / present[0])]  # train's when present; others may not add classes
    splits = [_Split(s, _class_folders(src / s, None if i == 0 else classes, "CINIC-10")) for i, s in enumerate(present)]
    return _Plan("cinic10", classes, splits, None)


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: cannot read it ({exc})") from None


def _plan_tinyimagenet(src: Path) -> _Plan:
    wnids_file = src / "wnids.txt"
    if not wnids_file.is_file():
        raise IngestError(f"{wnids_file}: missing (TinyImageNet lists its class ids there, one a line)")
    wnids = _read_lines(wnids_file)
    if not wnids:
        raise IngestError(f"{wnids_file}: empty (no class ids)")
    if len(set(wnids)) != len(wnids):
        dup = next(w for w in wnids if wnids.count(w) > 1)
        raise IngestError(f"{wnids_file}: class id {dup!r} listed twice")
    classes = sorted(wnids)
    index = {w: i for i, w in enumerate(classes)}
    words: dict[str, str] = {}
    if (src / "words.txt").is_file():
        for line in _read_lines(src / "words.txt"):
            wnid, _, text = line.partition("\t")
            words[wnid.strip()] = text.strip()
    names = [words.get(w) or w for w in classes]

    train = src / "train"
    if not train.is_dir():
        raise IngestError(f"{train}: missing (TinyImageNet's training images are train/<wnid>/images/*.JPEG)")
    for d in _dirs(train):
        if d.name not in index:
            raise IngestError(f"{d}: class folder {d.name!r} is not in {wnids_file.name}")
    train_files: list[tuple[Path, int]] = []
    for w in classes:
        folder = train / w / "images"
        imgs = _images_in(folder) if folder.is_dir() else []
        if not imgs:
            raise IngestError(f"{folder}: no training images for class {w} (listed in {wnids_file.name})")
        train_files += [(p, index[w]) for p in imgs]
    splits = [_Split("train", train_files)]

    val = src / "val"
    if val.is_dir():
        splits.append(_Split("val", _tiny_val(val, index)))
    extra = {}
    test_images = src / "test" / "images"
    if test_images.is_dir():
        extra["skipped"] = f"test/images: {len(_images_in(test_images))} unlabelled images (TinyImageNet publishes no test labels)"
    return _Plan("tinyimagenet", names, splits, None, extra)


def _tiny_val(val: Path, index: dict[str, int]) -> list[tuple[Path, int]]:
    """``val/images/*`` labelled by ``val/val_annotations.txt``; every image needs exactly one line."""
    ann, images = val / "val_annotations.txt", val / "images"
    on_disk = _images_in(images) if images.is_dir() else []
    if not ann.is_file():
        raise IngestError(f"{ann}: missing, so the {len(on_disk)} images in {images} have no labels")
    labels: dict[str, int] = {}
    for lineno, line in enumerate(_read_lines(ann), 1):
        parts = line.split()
        if len(parts) < 2:
            raise IngestError(f"{ann}:{lineno}: expected 'file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1', got {line!r}")
        name, wnid = parts[0], parts[1]
        if wnid not in index:
            raise IngestError(f"{ann}:{lineno}: {images / name} is labelled {wnid!r}, which is not in wnids.txt")
        if name in labels:
            raise IngestError(f"{ann}:{lineno}: {images / name} is annotated twice")
        if not (images / name).is_file():
            raise IngestError(f"{images / name}: missing, though {ann.name} line {lineno} labels it {wnid}")
        labels[name] = index[wnid]
    for p in on_disk:
        if p.name not in labels:
            raise IngestError(f"{p}: validation image without a label (not in {ann})")
    if not labels:
        raise IngestError(f"{ann}: no annotations (and no validation images)")
    return [(images / n, labels[n]) for n in sorted(labels)]


def _plan_imagenet100(src: Path, image_size: int | None) -> _Plan:
    train_dirs, val = _train_dirs(src), _val_dir(src)
    if not train_dirs:
        raise IngestError(f"{src}: no train/ folder (ImageNet-100: train/<wnid>/*.JPEG, val/<wnid>/*.JPEG)")
    classes = sorted({d.name for t in train_dirs for d in _dirs(t)})
    if not classes:
        raise IngestError(f"{train_dirs[0]}: no class folders (ImageNet-100: train/<wnid>/*.JPEG)")
    train_files = sorted((f for t in train_dirs for f in _class_folders(t, classes, "ImageNet-100")),
                         key=lambda f: (f[1], f[0].name))
    for i, c in enumerate(classes):  # each class needs training images, in whichever train.X* folder
        if not any(lbl == i for _, lbl in train_files):
            raise IngestError(f"{train_dirs[0] / c}: empty class folder (no image files)")
    splits = [_Split("train", train_files)]
    if val is not None:
        splits.append(_Split("val", _class_folders(val, classes, "ImageNet-100")))
    names = list(classes)
    for label_file in (src / "labels.json", src / "Labels.json"):
        if label_file.is_file():
            try:
                mapping = json.loads(label_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise IngestError(f"{label_file}: not a JSON object of wnid -> class name ({exc})") from None
            if not isinstance(mapping, dict):
                raise IngestError(f"{label_file}: not a JSON object of wnid -> class name (a {type(mapping).__name__})")
            names = [str(mapping.get(c) or c) for c in classes]
            break
    return _Plan("imagenet100", names, splits, image_size or DEFAULT_IMAGENET100_SIZE)


def _decode(path: Path, size: int | None) -> np.ndarray:
    """One image as (3, H, W) uint8; with ``size``: shorter side to ``size``, centre crop."""
    try:
        from PIL import Image
    except ImportError:
        raise IngestError("image folders need Pillow: pip install 'nessa[images]'") from None
    try:
        with Image.open(path) as im:
            if size is not None:
                im.draft("RGB", (size, size))  # JPEG: a reduced-scale decode, never below size x size
            im = im.convert("RGB")
            if size is not None:
                w, h = im.size
                scale = size / min(w, h)
                nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
                im = im.resize((nw, nh), Image.Resampling.BICUBIC)
                left, top = (nw - size) // 2, (nh - size) // 2
                im = im.crop((left, top, left + size, top + size))
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except Exception as exc:  # noqa: BLE001 - any unreadable image is a named ingest error
        raise IngestError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None


def _decoded(files: list[tuple[Path, int]], size: int | None, shape: tuple[int, ...], first: Path,
             pool: ThreadPoolExecutor) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for lo in range(0, len(files), _CHUNK):
        part = files[lo : lo + _CHUNK]
        out = np.empty((len(part), *shape), dtype=np.uint8)
        for i, ((path, _), img) in enumerate(zip(part, pool.map(lambda f: _decode(f[0], size), part))):
            if img.shape != shape:
                raise IngestError(f"{path}: image size {img.shape[2]}x{img.shape[1]} differs from {shape[2]}x{shape[1]} "
                                  f"of {first} (--image-size resizes them all to one size)")
            out[i] = img
        yield out, np.fromiter((lbl for _, lbl in part), dtype=np.int32, count=len(part))


def ingest_folders(kind: str, source: str | os.PathLike, dest: str | os.PathLike, *, image_size: int | None = None,
                   name: str | None = None, overwrite: bool = False, shard_bytes: int = DEFAULT_SHARD_BYTES,
                   progress: bool = True) -> dict[str, Manifest]:
    """Ingest a CINIC-10 / TinyImageNet / ImageNet-100 folder; returns ``{split: manifest}``."""
    source, dest = Path(source), Path(dest)
    if kind not in FOLDER_KINDS:
        raise IngestError(f"unknown folder layout {kind!r}; known: {', '.join(FOLDER_KINDS)}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise IngestError(f"image_size must be a positive integer, got {image_size!r}")
    if not source.is_dir():
        raise IngestError(f"{source}: not a folder (a {kind} data set is a folder)")
    if kind == "cinic10":
        plan = _plan_cinic10(source)
    elif kind == "tinyimagenet":
        plan = _plan_tinyimagenet(source)
    else:
        plan = _plan_imagenet100(source, image_size)
    size = plan.image_size if image_size is None else image_size
    first = plan.splits[0].files[0][0]
    shape = _decode(first, size).shape  # fixes the sample shape of every split
    extra = {"source": kind, "image_size": size, **plan.extra}
    if size is not None:
        extra["resize"] = "shorter side to image_size (bicubic), centre crop"
    base = name or dest.name
    out: dict[str, Manifest] = {}
    with atomic_dir(dest, overwrite=overwrite) as tmp, ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        for split in plan.splits:
            sub = tmp / split.name
            sub.mkdir()
            with tqdm(total=len(split.files), unit="images", desc=split.name, disable=not progress, leave=False) as pb:
                out[split.name] = write_chunks(sub, _decoded(split.files, size, shape, first, pool), progress=pb,
                                               name=f"{base}/{split.name}", sample_shape=shape, dtype=np.uint8,
                                               class_names=plan.names, num_classes=len(plan.names),
                                               shard_bytes=shard_bytes, extra=extra)
    return out
