"""Image–caption shards (CC3M / LAION / webdataset-to-Parquet style) into a store with columns.

Input: one Parquet / Arrow IPC file, or a folder of them (read in file-name order, rows in file
order: the store's ids follow). Per row:

* the image (``--image-column``, default the first of ``jpg``, ``png``, ``image``, ``img``,
  ``sample``): encoded PNG/JPEG bytes (decoded with Pillow, the ``images`` extra; every image must
  decode to one shape, or pass ``image_size`` to resize to a square), raw bytes of one length, or
  (nested) lists of numbers of one shape;
* the caption (``--caption-column``, default ``caption``, ``txt`` or ``text``): UTF-8 text of at
  most ``max_caption_bytes`` bytes, stored as the store's ``text`` column;
* optionally a label (``--label-column``; a column named ``label`` is used when present): without
  one every row gets label 0 of one class ``"unlabelled"``;
* optionally precomputed embeddings (``--embedding-column SRC=emb/NAME``, repeatable): lists of
  floats of one width, stored as embedding column ``emb/NAME`` (``embedding_dtype``, float16 by
  default), source ``"ingest:SRC"``.

Everything is read and checked before the store is written (one temporary folder, renamed into
place), so a bad row leaves nothing behind.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa

from storage_service.columns import DEFAULT_MAX_BYTES, ColumnError, check_column_name, write_embedding_column, write_text_column
from storage_service.ingest.labels import as_int_labels
from storage_service.ingest.table import TABLE_SUFFIXES, column_samples, pick_column, read_table
from storage_service.ingest.writer import DEFAULT_SHARD_BYTES, IngestError, atomic_dir, write_chunks
from storage_service.manifest import Manifest

__all__ = ["CaptionSource", "load_captions", "ingest_captions", "parse_embedding_map", "DEFAULT_IMAGE_COLUMNS",
           "DEFAULT_CAPTION_COLUMNS", "UNLABELLED", "CLASS_NAMES_KEY"]

DEFAULT_IMAGE_COLUMNS = ("jpg", "png", "image", "img", "sample")
DEFAULT_CAPTION_COLUMNS = ("caption", "txt", "text")
UNLABELLED = "unlabelled"
#: Parquet/Arrow schema metadata key: a JSON list naming integer labels (the synthetic shards set it).
CLASS_NAMES_KEY = b"nessa.class_names"
_PNG, _JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


@dataclass
class CaptionSource:
    """What ``load_captions`` read: samples, labels, class names, captions, embeddings by column."""

    samples: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    texts: list[str]
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


def parse_embedding_map(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["clip_img=emb/image", ...]`` (or a mapping) as ``{source column: store column}``."""
    if not items:
        return {}
    pairs = items.items() if isinstance(items, Mapping) else [(*i.split("=", 1),) if "=" in i else (i, "") for i in items]
    out: dict[str, str] = {}
    for src, dst in pairs:
        if not src or not dst:
            raise IngestError(f"--embedding-column {src}={dst}: expected SOURCE_COLUMN=emb/NAME")
        try:
            check_column_name(dst)
        except ColumnError as exc:
            raise IngestError(f"--embedding-column {src}={dst}: {exc}") from None
        if not dst.startswith("emb/"):
            raise IngestError(f"--embedding-column {src}={dst}: the store column must be emb/NAME")
        if dst in out.values():
            raise IngestError(f"--embedding-column: {dst} given twice")
        out[src] = dst
    return out


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise IngestError(f"{source}: no such file or folder")
    files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise IngestError(f"{source}: no Parquet/Arrow shards ({', '.join(sorted(TABLE_SUFFIXES))})")
    return files


def _decode(values: list, col: str, where: Path, image_size: int | None) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise IngestError(f"{where}: column {col!r} holds encoded images; decoding needs Pillow "
                          f"(pip install 'nessa[images]')") from None
    out, shape = [], None
    for r, raw in enumerate(values):
        try:
            with Image.open(io.BytesIO(raw)) as im:
                im = im.convert("L" if im.mode in ("L", "1", "I;16", "I", "F") else "RGB")
                if image_size is not None:
                    im = im.resize((image_size, image_size), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except Exception as exc:  # Pillow raises many types for a damaged file
            raise IngestError(f"{where}: column {col!r} row {r}: cannot decode image ({exc})") from None
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise IngestError(f"{where}: column {col!r} row {r}: image shape {list(a.shape)}, row 0 is {list(shape)} "
                              f"(pass --image-size to resize all to one square size)")
        out.append(a)
    return np.stack(out)


def _images(column: pa.ChunkedArray, col: str, where: Path, shape, image_size: int | None) -> np.ndarray:
    t = column.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        if column.null_count:
            raise IngestError(f"{where}: column {col!r} has {column.null_count} missing images")
        values = column.to_pylist()
        if values and values[0][:8] == _PNG or values and values[0][:3] == _JPEG:
            return _decode(values, col, where, image_size)
    if image_size is not None:
        raise IngestError(f"{where}: --image-size applies to encoded (PNG/JPEG) images, column {col!r} holds {t}")
    return column_samples(column, where, col, shape)


def _embedding(column: pa.ChunkedArray, src: str, dst: str, where: Path) -> np.ndarray:
    t = column.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) or not (
            pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
        raise IngestError(f"{where}: embedding column {src!r} ({dst}) has type {t}; expected a list of floats")
    col = column.combine_chunks()
    if col.null_count:
        r = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise IngestError(f"{where}: embedding column {src!r} ({dst}): row {r} is missing ({col.null_count} such rows)")
    lengths = np.asarray(pa.compute.list_value_length(col))
    if lengths.size and lengths.min() != lengths.max():
        r = int(np.flatnonzero(lengths != lengths[0])[0])
        raise IngestError(f"{where}: embedding column {src!r} ({dst}): row {r} has width {int(lengths[r])}, row 0 has {int(lengths[0])}")
    return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(col), int(lengths[0]) if lengths.size else 0)


def load_captions(source: str | Path, *, image_column: str | None = None, caption_column: str | None = None,
                  label_column: str | None = None, embedding_columns: Mapping[str, str] | None = None,
                  shape: Sequence[int] | None = None, image_size: int | None = None) -> CaptionSource:
    """Read and check every shard of ``source`` (see the module docstring)."""
    import pyarrow.compute  # noqa: F401  (pa.compute)

    files = _files(Path(source))
    emb = dict(embedding_columns or {})
    parts: list[tuple[np.ndarray, list, object, dict]] = []
    meta_names: list[str] | None = None
    for f in files:
        table = read_table(f)
        names = table.column_names
        raw = (table.schema.metadata or {}).get(CLASS_NAMES_KEY)
        if raw is not None and meta_names is None:
            try:
                meta_names = [str(c) for c in json.loads(raw)]
            except (ValueError, TypeError):
                raise IngestError(f"{f}: schema metadata {CLASS_NAMES_KEY.decode()} is not a JSON list of names") from None
        icol = pick_column(names, f, image_column, DEFAULT_IMAGE_COLUMNS, "image")
        ccol = pick_column(names, f, caption_column, DEFAULT_CAPTION_COLUMNS, "caption")
        lcol = label_column if label_column is not None else ("label" if "label" in names else None)
        if lcol is not None and lcol not in names:
            raise IngestError(f"{f}: no column {lcol!r} (--label-column); columns are {names}")
        for src in emb:
            if src not in names:
                raise IngestError(f"{f}: no column {src!r} (--embedding-column {src}={emb[src]}); columns are {names}")
        if table.num_rows == 0:
            continue
        x = _images(table.column(icol), icol, f, shape, image_size)
        caps = table.column(ccol)
        if not (pa.types.is_string(caps.type) or pa.types.is_large_string(caps.type) or pa.types.is_binary(caps.type)
                or pa.types.is_large_binary(caps.type)):
            raise IngestError(f"{f}: caption column {ccol!r} has type {caps.type}; expected text")
        texts = caps.to_pylist()
        missing = next((r for r, t in enumerate(texts) if t is None), None)
        if missing is not None:
            raise IngestError(f"{f}: caption column {ccol!r}: row {missing} is missing")
        labels = None
        if lcol is not None:
            lab = table.column(lcol)
            if lab.null_count:
                raise IngestError(f"{f}: label column {lcol!r} has {lab.null_count} missing labels")
            labels = lab.to_numpy()
        parts.append((x, texts, labels, {dst: _embedding(table.column(src), src, dst, f) for src, dst in emb.items()}))
    if not parts:
        raise IngestError(f"{source}: empty input (zero rows)")
    shapes = {p[0].shape[1:] for p in parts} | set()
    dtypes = {p[0].dtype for p in parts}
    if len(shapes) > 1 or len(dtypes) > 1:
        raise IngestError(f"{source}: shards hold images of different shapes/dtypes {sorted(map(list, shapes))} {sorted(map(str, dtypes))}")
    if len({p[2] is None for p in parts}) > 1:
        raise IngestError(f"{source}: some shards have a label column and some do not")
    x = np.concatenate([p[0] for p in parts])
    texts = [t for p in parts for t in p[1]]
    if parts[0][2] is None:
        labels, names = np.zeros(len(x), np.int64), [UNLABELLED]
    else:
        labels, names = as_int_labels(np.concatenate([np.asarray(p[2]) for p in parts]), where=str(source))
        if names is None and meta_names is not None:
            if int(labels.max()) >= len(meta_names):
                raise IngestError(f"{source}: label {int(labels.max())} has no name in {CLASS_NAMES_KEY.decode()} ({len(meta_names)} names)")
            names = meta_names
        names = names or [str(c) for c in range(int(labels.max()) + 1)]
    embs = {}
    for dst in emb.values():
        widths = {p[3][dst].shape[1] for p in parts}
        if len(widths) > 1:
            raise IngestError(f"{source}: embedding column {dst} has widths {sorted(widths)} in different shards")
        embs[dst] = np.concatenate([p[3][dst] for p in parts])
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise IngestError(f"{source}: images contain NaN or infinite values")
    return CaptionSource(x, labels, list(names), texts, embs)


def ingest_captions(source: str | Path, dest: str | Path, *, image_column: str | None = None,
                    caption_column: str | None = None, label_column: str | None = None,
                    embedding_columns: Sequence[str] | Mapping[str, str] | None = None,
                    shape: Sequence[int] | None = None, image_size: int | None = None,
                    max_caption_bytes: int = DEFAULT_MAX_BYTES, embedding_dtype: str = "float16", name: str | None = None,
                    overwrite: bool = False, shard_bytes: int = DEFAULT_SHARD_BYTES, progress=None) -> dict[str, Manifest]:
    """Ingest image–caption shards into a store at ``dest`` with a ``text`` column and the
    embedding columns asked for; ``{".": manifest}``. IngestError names the column and row."""
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise IngestError(f"{dest}: destination exists (use --overwrite to replace it)")
    data = load_captions(source, image_column=image_column, caption_column=caption_column, label_column=label_column,
                         embedding_columns=parse_embedding_map(embedding_columns), shape=shape, image_size=image_size)
    x, labels = data.samples, data.labels
    with atomic_dir(dest, overwrite=overwrite) as tmp:
        chunks = ((x[lo : lo + 8192], labels[lo : lo + 8192]) for lo in range(0, len(labels), 8192))
        write_chunks(tmp, chunks, progress=progress, name=name or dest.name, sample_shape=x.shape[1:], dtype=x.dtype,
                     class_names=data.class_names, num_classes=len(data.class_names), shard_bytes=shard_bytes,
                     extra={"source": "captions"})
        try:  # lock=False: atomic_dir holds the temporary folder's flock for this process
            write_text_column(tmp, data.texts, max_bytes=max_caption_bytes, source="ingest", lock=False)
            for src, dst in parse_embedding_map(embedding_columns).items():
                write_embedding_column(tmp, dst, data.embeddings[dst], dtype=embedding_dtype, source=f"ingest:{src}", lock=False)
        except ColumnError as exc:
            raise IngestError(f"{source}: {exc}") from None
        manifest = Manifest.load(tmp)
    return {".": manifest}
