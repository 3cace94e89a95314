"""Optional columns beside a store's samples: a caption column ``text`` and named embedding
columns ``emb/<name>`` (manifest format_version 2, storage_service/README.md "Columns").

Each column is one Arrow IPC *file* beside the shards, ``column-<slug>-<sha256 prefix>.arrow``,
holding one field ``value`` with one row per sample in id order: ``string`` (UTF-8, at most
``max_bytes`` bytes) for text, ``fixed_size_list<float16|float32>[dim]`` for embeddings. Adding
a column never rewrites the samples. A write validates everything first (``ColumnError``: wrong
width, NaN/inf, wrong row count, non-UTF-8 or over-long text, a bad name), writes the file under
a temporary name, fsyncs and renames it, and replaces the manifest last (atomically), so a
reader sees the old store or the new one, never half of it; the file an overwrite replaced is
deleted after the new manifest is in place (an open Store keeps reading its own copy).
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from storage_service._durable import fsync_dir
from storage_service._errors import DataLoss
from storage_service.manifest import MANIFEST_NAME, ColumnFile, Manifest, ManifestError

__all__ = ["ColumnKind", "ColumnInfo", "ColumnError", "ColumnDataLoss", "TEXT_COLUMN", "DEFAULT_MAX_BYTES", "EMBEDDING_DTYPES",
           "check_column_name", "write_embedding_column", "write_embedding_chunks", "write_text_column", "ColumnReader", "COLUMN_FILE_RE"]

TEXT_COLUMN = "text"
DEFAULT_MAX_BYTES = 1024
EMBEDDING_DTYPES = ("float16", "float32")
_EMB_NAME = re.compile(r"^emb/[a-z0-9][a-z0-9_.-]{0,63}$")
#: Column file names (leftovers cleanup removes such files a manifest no longer lists).
COLUMN_FILE_RE = re.compile(r"^column-[a-z0-9_.-]+-[0-9a-f]{12}\.arrow$")
_BATCH_ROWS = 65536


class ColumnError(ValueError):
    """A column cannot be written or read as asked (names the column and the problem)."""


class ColumnDataLoss(ColumnError, DataLoss):
    """A column's file is missing, damaged or not what the manifest says (status DATA_LOSS)."""


class ColumnKind(str, enum.Enum):
    TEXT = "text"
    EMBEDDING = "embedding"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    kind: ColumnKind
    dtype: str = ""  # "float16" | "float32" for embeddings, "" for text
    dim: int = 0  # embedding width, 0 for text
    max_bytes: int = 0  # text length limit in UTF-8 bytes, 0 for embeddings
    source: str = ""

    @classmethod
    def from_file(cls, c: ColumnFile) -> "ColumnInfo":
        return cls(c.name, ColumnKind(c.kind), c.dtype, c.dim, c.max_bytes, c.source)


def check_column_name(name: str) -> ColumnKind:
    """The kind a column name means; ColumnError for a name that is neither ``text`` nor ``emb/<name>``."""
    if name == TEXT_COLUMN:
        return ColumnKind.TEXT
    if isinstance(name, str) and _EMB_NAME.match(name):
        return ColumnKind.EMBEDDING
    raise ColumnError(f"column {name!r}: bad column name (expected 'text' or 'emb/<name>' with <name> of "
                      f"lower-case letters, digits, '_', '.', '-', at most 64 characters)")


# -- writing --------------------------------------------------------------------------------
def _two_d(name: str, values) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ColumnError(f"column {name!r}: values are not a numeric array: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ColumnError(f"column {name!r}: values must be 2-D (rows, dim) with dim >= 1, got shape {list(arr.shape)}")
    return arr


def _embedding_chunk(name: str, chunk, dtype: str, lo: int) -> np.ndarray:
    """Rows ``[lo, lo + len(chunk))`` checked and cast to ``dtype`` (ColumnError naming the row)."""
    arr = _two_d(name, chunk)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ColumnError(f"column {name!r}: values must be numeric, got {arr.dtype}")
    bad = ~np.isfinite(arr) if np.issubdtype(arr.dtype, np.floating) else None
    if bad is not None and bad.any():
        r = lo + int(np.flatnonzero(bad.any(axis=1))[0])
        raise ColumnError(f"column {name!r}: row {r} holds NaN or inf ({int(bad.any(axis=1).sum())}+ such rows)")
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.dtype(dtype))
    if not np.isfinite(out).all():
        r = lo + int(np.flatnonzero(~np.isfinite(out).any(axis=1))[0])
        raise ColumnError(f"column {name!r}: row {r} overflows {dtype} (values beyond its range)")
    return out


def _embedding_batches(name: str, chunks: Iterable, dtype: str, n: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """(schema, record batches) for embedding rows given as ``chunks`` (2-D arrays, in row order):
    at most ``_BATCH_ROWS`` rows are converted at a time, whatever the column's size. Each slice is
    checked as it is written (width, NaN/inf, overflow, too many rows); the row count at the end. A
    failure raises from the batch iterator, and the caller's temporary file is removed."""
    if dtype not in EMBEDDING_DTYPES:
        raise ColumnError(f"column {name!r}: dtype {dtype!r} not supported (one of {list(EMBEDDING_DTYPES)})")
    slices = (c[lo:lo + _BATCH_ROWS] for c in chunks for lo in range(0, len(c), _BATCH_ROWS))
    first = next(slices, None)
    if first is None:
        raise ColumnError(f"column {name!r}: 0 rows, the data set has {n} (missing or extra rows)")
    first = _embedding_chunk(name, first, dtype, 0)
    dim = int(first.shape[1])
    item = pa.from_numpy_dtype(np.dtype(dtype))
    schema = pa.schema([pa.field("value", pa.list_(item, dim))])

    def batches() -> Iterator[pa.RecordBatch]:
        done, arr = 0, first
        while arr is not None:
            if arr.shape[1] != dim:
                raise ColumnError(f"column {name!r}: rows from {done} have width {arr.shape[1]}, the rows before {dim}")
            if done + len(arr) > n:
                raise ColumnError(f"column {name!r}: more than {n} rows, the data set has {n} (missing or extra rows)")
            flat = pa.array(np.ascontiguousarray(arr).reshape(-1), type=item)
            yield pa.RecordBatch.from_arrays([pa.FixedSizeListArray.from_arrays(flat, dim)], schema=schema)
            done += len(arr)
            nxt = next(slices, None)
            arr = None if nxt is None else _embedding_chunk(name, nxt, dtype, done)
        if done != n:
            raise ColumnError(f"column {name!r}: {done} rows, the data set has {n} (missing or extra rows)")

    return schema, batches()


def _embedding_array(name: str, values, n: int) -> np.ndarray:
    """An in-memory column's values, its shape checked before anything is written."""
    arr = _two_d(name, values)
    if arr.shape[0] != n:
        raise ColumnError(f"column {name!r}: {arr.shape[0]} rows, the data set has {n} (missing or extra rows)")
    return arr


def _text_table(texts: Sequence, max_bytes: int, n: int) -> pa.Table:
    name = TEXT_COLUMN
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise ColumnError(f"column {name!r}: max_bytes must be a positive integer, got {max_bytes!r}")
    if isinstance(texts, (str, bytes)):
        raise ColumnError(f"column {name!r}: expected a sequence of captions, got a single {type(texts).__name__}")
    texts = list(texts)
    if len(texts) != n:
        raise ColumnError(f"column {name!r}: {len(texts)} rows, the data set has {n} (missing or extra rows)")
    values = []
    for r, t in enumerate(texts):
        if isinstance(t, (bytes, bytearray, memoryview)):
            try:
                t = bytes(t).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ColumnError(f"column {name!r}: row {r} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        elif not isinstance(t, str):
            raise ColumnError(f"column {name!r}: row {r} is {type(t).__name__}, expected text (missing caption?)")
        try:
            nb = len(t.encode("utf-8"))
        except UnicodeEncodeError:
            raise ColumnError(f"column {name!r}: row {r} is not valid Unicode text (lone surrogates)") from None
        if nb > max_bytes:
            raise ColumnError(f"column {name!r}: row {r} is {nb} UTF-8 bytes, over the limit max_bytes={max_bytes}")
        values.append(t)
    return pa.table({"value": pa.array(values, pa.string())})


def _write_file(store: Path, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> tuple[str, str]:
    """Write ``batches`` under a temporary name, fsync, hash, rename to its final name; (file, sha256).
    An error from ``batches`` (a bad row found while streaming) removes the temporary file."""
    slug = name.replace("/", "-")
    tmp = store / f"column-{slug}.arrow.tmp{os.getpid()}"
    try:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, schema) as w:
            for batch in batches:
                w.write_batch(batch)
        digest = hashlib.sha256()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
            for chunk in iter(lambda: fh.read(4 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        final = f"column-{slug}-{sha[:12]}.arrow"
        os.rename(tmp, store / final)
        return final, sha
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_manifest(store: Path, manifest: Manifest) -> None:
    tmp = store / f"{MANIFEST_NAME}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as fh:
            fh.write(manifest.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, store / MANIFEST_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(store)


def _add_column(store_dir, name: str, kind: ColumnKind, build, *, dtype: str, max_bytes: int, source: str,
                overwrite: bool, lock: bool = True) -> ColumnInfo:
    store = Path(store_dir)
    if not isinstance(source, str):
        raise ColumnError(f"column {name!r}: source must be a string")
    try:
        fd = os.open(store, os.O_RDONLY)
    except OSError as exc:
        raise ColumnError(f"column {name!r}: cannot open store {str(store)!r}: {exc.strerror}") from None
    try:
        if lock:  # one column writer per store at a time (manifest read-modify-write)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            manifest = Manifest.load(store)
        except ManifestError as exc:
            raise ColumnError(f"column {name!r}: {exc}") from None
        old = next((c for c in manifest.columns if c.name == name), None)
        if old is not None and not overwrite:
            raise ColumnError(f"column {name!r} exists in {str(store)!r} (pass overwrite=True / --overwrite to replace it)")
        schema, batches, dim = build(manifest.num_samples)
        file, sha = _write_file(store, name, schema, batches)
        entry = ColumnFile(name, kind.value, dtype, dim, max_bytes, source, file, sha)
        cols = [c for c in manifest.columns if c.name != name] + [entry]
        try:
            _write_manifest(store, replace(manifest, columns=cols, format_version=2))
        except BaseException:
            if old is None or old.file != file:
                (store / file).unlink(missing_ok=True)
            raise
        if old is not None and old.file != file:
            (store / old.file).unlink(missing_ok=True)
        return ColumnInfo.from_file(entry)
    finally:
        os.close(fd)


def write_embedding_column(store_dir, name: str, values, *, dtype: str = "float16", source: str = "",
                           overwrite: bool = False, lock: bool = True) -> ColumnInfo:
    """Add (or with ``overwrite`` replace) embedding column ``name`` (``emb/<name>``): ``values``
    is (num_samples, dim), row i for sample id i. Atomic; ColumnError on bad input, nothing written.
    ``lock=False`` only where the caller already holds the store folder's ``flock`` (an ingest
    writing into its locked temporary: a second flock of this process would wait for itself)."""
    return write_embedding_chunks(store_dir, name, lambda n: [_embedding_array(name, values, n)], dtype=dtype,
                                  source=source, overwrite=overwrite, lock=lock)


def write_embedding_chunks(store_dir, name: str, chunks: Callable[[int], Iterable], *, dtype: str = "float16",
                           source: str = "", overwrite: bool = False, lock: bool = True) -> ColumnInfo:
    """``write_embedding_column`` for a column too large to hold in memory: ``chunks(n)`` returns
    the rows as 2-D arrays in row order (e.g. memory-mapped chunk files), n rows in all; they are
    streamed into the column file a slice at a time. Same checks and atomicity: a bad chunk,
    a width change or a wrong row count raises ColumnError and leaves the store as it was."""
    if check_column_name(name) is not ColumnKind.EMBEDDING:
        raise ColumnError(f"column {name!r}: an embedding column's name must be 'emb/<name>'")

    def build(n: int):
        schema, batches = _embedding_batches(name, chunks(n), dtype, n)
        return schema, batches, schema.field("value").type.list_size

    return _add_column(store_dir, name, ColumnKind.EMBEDDING, build, dtype=dtype, max_bytes=0, source=source,
                       overwrite=overwrite, lock=lock)


def write_text_column(store_dir, texts: Sequence, *, max_bytes: int = DEFAULT_MAX_BYTES, source: str = "ingest",
                      overwrite: bool = False, lock: bool = True) -> ColumnInfo:
    """Add (or replace) the caption column ``text``: one str (or UTF-8 bytes) per sample, id order."""
    def build(n: int):
        table = _text_table(texts, max_bytes, n)
        return table.schema, table.to_batches(max_chunksize=_BATCH_ROWS), 0

    return _add_column(store_dir, TEXT_COLUMN, ColumnKind.TEXT, build, dtype="", max_bytes=max_bytes, source=source,
                       overwrite=overwrite, lock=lock)


# -- reading --------------------------------------------------------------------------------
class ColumnReader:
    """Reads one column file, memory-mapped (only the pages asked for are touched)."""

    def __init__(self, store_dir: Path, entry: ColumnFile, num_samples: int):
        self.entry = entry
        self.path = Path(store_dir) / entry.file
        try:  # the whole file's sha256 once, on first use (the shards' checks do not cover it)
            digest = hashlib.sha256()
            with open(self.path, "rb") as fh:
                for chunk in iter(lambda: fh.read(4 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != entry.sha256:
                raise ColumnDataLoss(f"column {entry.name!r}: {self.path} fails its sha256 check (damaged or replaced)")
            self._reader = ipc.open_file(pa.memory_map(str(self.path), "r"))
        except (OSError, pa.ArrowInvalid) as exc:
            raise ColumnDataLoss(f"column {entry.name!r}: cannot open {self.path}: {exc}") from None
        sizes = [self._reader.get_batch(i).num_rows for i in range(self._reader.num_record_batches)]
        if sum(sizes) != num_samples:
            raise ColumnDataLoss(f"column {entry.name!r}: {self.path} holds {sum(sizes)} rows, the data set has {num_samples}")
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._n = num_samples

    def _batch_values(self, b: int) -> np.ndarray:
        col = self._reader.get_batch(b).column(0)
        e = self.entry
        if e.kind == ColumnKind.EMBEDDING.value:
            flat = col.values.to_numpy(zero_copy_only=False)
            if flat.dtype != np.dtype(e.dtype) or flat.size != len(col) * e.dim:
                raise ColumnError(f"column {e.name!r}: {self.path} is not {e.dtype} x {e.dim} as the manifest says")
            return flat[col.offset * e.dim : (col.offset + len(col)) * e.dim].reshape(len(col), e.dim)
        return col

    def embeddings(self, ids: np.ndarray | None) -> np.ndarray:
        e = self.entry
        if ids is None:
            out = np.empty((self._n, e.dim), np.float32)
            for b in range(len(self._starts) - 1):
                out[self._starts[b] : self._starts[b + 1]] = self._batch_values(b)
            return out
        out = np.empty((ids.size, e.dim), np.float32)
        batch = np.searchsorted(self._starts, ids, side="right") - 1
        for b in np.unique(batch):
            sel = np.flatnonzero(batch == b)
            out[sel] = self._batch_values(int(b))[ids[sel] - self._starts[b]]
        return out

    def texts(self, ids: np.ndarray | None) -> list[str]:
        if ids is None:
            return [t for b in range(len(self._starts) - 1) for t in self._batch_values(b).to_pylist()]
        out: list = [None] * ids.size
        batch = np.searchsorted(self._starts, ids, side="right") - 1
        for b in np.unique(batch):
            sel = np.flatnonzero(batch == b)
            vals = self._batch_values(int(b)).take(pa.array(ids[sel] - self._starts[b])).to_pylist()
            for i, v in zip(sel.tolist(), vals):
                out[i] = v
        return out
