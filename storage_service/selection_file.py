"""The selection file: one on-disk format for a weighted subset, written by the service and by
``nessa select``, read by both (and by anyone with pyarrow).

Format (``SELECTION_FORMAT_VERSION`` = 1): an Arrow IPC *file* with columns

    id      int64    store ids of the selected examples: ascending and distinct, unless the
                     selection is ordered (below)
    weight  float32  each example's loss weight (cluster size, normalised so weights sum to |S|,
                     unless the summary says ``"raw_weights": true``)

and schema metadata ``nessa.selection``: a JSON object holding at least ``format_version`` (1),
``dataset``, ``strategy``, ``fraction``, ``seed``, ``backend``, ``num_selected``,
``class_counts`` (selected per class, indexed by label), ``objective`` and ``seconds``. The
service adds ``id`` and ``model_version`` (and, since the mini-batch strategies, ``batch_size``,
``num_batches``, ``pool_size``, ``run``, ``drop_threshold``, ``watch``, ``min_keep``,
``num_dropped``, ``num_forwarded``); ``nessa select`` adds ``optimizer``, ``source`` (the
features' origin) and ``per_class`` (``[{cls, n, k, objective, seconds}]``). Readers ignore keys
they do not know.

Ordered selections (``write_selection(..., ordered=True, batch_size=b)``; the mini-batch
strategies ``nessa-pa`` and ``crest``): the summary says ``"ordered": true``, ``"batch_size": b``
and ``"num_batches": R``, and the rows are ``R`` mini-batches of ``b`` rows each in training
order (rows ``k*b .. k*b+b-1`` are mini-batch ``k``); rows are kept as given, not sorted, and an
id may appear more than once (in different mini-batches, when pools had to overlap); each
mini-batch's weights sum to ``b``. Without ``"ordered": true`` a file is an unordered subset
(ascending distinct ids), as before: the format version stays 1, and a reader that does not
know the key still reads every row.

Integrity (since this version; the format version stays 1, older files still read): the
summary holds ``content_sha256``, the sha256 of the ``id`` column's int64 little-endian bytes
followed by the ``weight`` column's float32 bytes, checked on read. On write and on read, weights
must be finite and >= 0, and ids distinct (within each mini-batch when ordered) and >= 0;
``read_selection(..., num_samples=n)`` also checks ids < n. A file that fails a check raises
SelectionFileError naming the file, the row and the problem.

Written to a temporary name in the same folder, fsynced and renamed: a file is whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["SELECTION_FORMAT_VERSION", "SelectionFileError", "write_selection", "read_selection", "read_summary", "is_ordered"]

SELECTION_FORMAT_VERSION = 1
_META_KEY = b"nessa.selection"
_SCHEMA = pa.schema([("id", pa.int64()), ("weight", pa.float32())])


class SelectionFileError(ValueError):
    """Not a selection file of a version this code reads (message names the file)."""


def _digest(ids: np.ndarray, weights: np.ndarray) -> str:
    return hashlib.sha256(ids.astype("<i8", copy=False).tobytes() + weights.astype("<f4", copy=False).tobytes()).hexdigest()


def _check_rows(ids: np.ndarray, weights: np.ndarray, *, ordered: bool, batch_size: int, num_samples: int | None, where: str,
                error=ValueError) -> None:
    """Weights finite and >= 0; ids >= 0 (and < num_samples), distinct (per mini-batch if ordered)."""
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        r = int(bad[0])
        raise error(f"{where}row {r} (id {int(ids[r])}) has weight {float(weights[r])}: weights must be finite and >= 0 "
                    f"({bad.size} such rows)")
    limit = num_samples if num_samples is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((ids < 0) | (ids >= limit))
    if bad.size:
        r = int(bad[0])
        span = f"[0, {num_samples})" if num_samples is not None else ">= 0"
        raise error(f"{where}row {r} has id {int(ids[r])}, outside {span}")
    groups = ids.reshape(-1, batch_size) if ordered and batch_size > 1 and len(ids) else (None if ordered else ids.reshape(1, -1))
    if groups is not None and groups.shape[1] > 1:
        srt = np.sort(groups, axis=1)
        dup = np.argwhere(np.diff(srt, axis=1) == 0)
        if dup.size:
            g, c = (int(v) for v in dup[0])
            if ordered:
                raise error(f"{where}id {int(srt[g, c])} appears twice in mini-batch {g}: selection ids must be distinct "
                            "within each mini-batch")
            raise error(f"{where}id {int(srt[g, c])} appears more than once: selection ids must be distinct")


def write_selection(path: str | os.PathLike, ids: np.ndarray, weights: np.ndarray, summary: dict, *,
                    ordered: bool = False, batch_size: int = 0) -> Path:
    """Write ``ids`` and ``weights`` (aligned) and ``summary`` atomically.

    Unordered (default): ids are sorted ascending here (weights kept aligned) and must be
    distinct. ``ordered``: rows are kept in the order given, as ``len(ids) / batch_size``
    mini-batches of ``batch_size`` rows (the length must be a multiple; ids distinct within a
    mini-batch, possibly repeated across mini-batches); the summary gets
    ``"ordered": true``, ``"batch_size"`` and ``"num_batches"``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float32)
    if ids.shape != weights.shape or ids.ndim != 1:
        raise ValueError(f"ids and weights must be 1-D and aligned, got {ids.shape} and {weights.shape}")
    doc = {"format_version": SELECTION_FORMAT_VERSION, **{k: v for k, v in summary.items() if k != "format_version"}}
    if ordered:
        batch_size = int(batch_size)
        if batch_size < 1 or len(ids) % batch_size:
            raise ValueError(f"an ordered selection needs batch_size >= 1 dividing its {len(ids)} rows, got {batch_size}")
        _check_rows(ids, weights, ordered=True, batch_size=batch_size, num_samples=None, where="")
        doc.update(ordered=True, batch_size=batch_size, num_batches=len(ids) // batch_size)
    else:
        doc.pop("ordered", None)
        order = np.argsort(ids, kind="stable")
        ids, weights = ids[order], weights[order]
        _check_rows(ids, weights, ordered=False, batch_size=0, num_samples=None, where="")
    doc["content_sha256"] = _digest(ids, weights)
    path = Path(path)
    schema = _SCHEMA.with_metadata({_META_KEY: json.dumps(doc).encode()})
    table = pa.table([pa.array(ids), pa.array(weights)], schema=schema)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            writer.write_table(table)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _summary(schema: pa.Schema, path) -> dict:
    meta = schema.metadata or {}
    try:
        doc = json.loads(meta[_META_KEY])
    except (KeyError, ValueError):
        raise SelectionFileError(f"{path}: not a NeSSA selection file (no {_META_KEY.decode()} metadata)") from None
    if not isinstance(doc, dict) or doc.get("format_version") != SELECTION_FORMAT_VERSION:
        raise SelectionFileError(f"{path}: selection format version {doc.get('format_version') if isinstance(doc, dict) else None!r}; "
                                 f"this code reads version {SELECTION_FORMAT_VERSION}")
    if schema.names[:2] != ["id", "weight"]:
        raise SelectionFileError(f"{path}: columns {schema.names}, expected id, weight")
    if doc.get("ordered") is True:
        b, r = doc.get("batch_size"), doc.get("num_batches")
        if not (isinstance(b, int) and isinstance(r, int) and b >= 1 and r >= 0):
            raise SelectionFileError(f"{path}: an ordered selection needs integer batch_size >= 1 and num_batches, "
                                     f"got {b!r} and {r!r}")
    return doc


def is_ordered(summary: dict) -> bool:
    """Whether a selection file's summary says its rows are ordered mini-batches."""
    return summary.get("ordered") is True


def read_summary(path: str | os.PathLike) -> dict:
    """The JSON summary of a selection file (SelectionFileError if it is not one)."""
    try:
        with pa.memory_map(str(path), "r") as source:
            return _summary(pa.ipc.open_file(source).schema, path)
    except pa.ArrowInvalid as exc:
        raise SelectionFileError(f"{path}: not an Arrow IPC file ({exc})") from None


def read_selection(path: str | os.PathLike, *, num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(ids int64, weights float32, summary)`` of a selection file, checked (module docstring):
    SelectionFileError names the file, the row and the problem."""
    try:
        with pa.memory_map(str(path), "r") as source:
            reader = pa.ipc.open_file(source)
            doc = _summary(reader.schema, path)
            table = reader.read_all()
    except pa.ArrowInvalid as exc:
        raise SelectionFileError(f"{path}: not an Arrow IPC file ({exc})") from None
    except OSError as exc:
        raise SelectionFileError(f"{path}: cannot read: {exc}") from None
    if table.column("id").null_count or table.column("weight").null_count:
        raise SelectionFileError(f"{path}: null ids or weights")
    ids = table.column("id").to_numpy().astype(np.int64, copy=True)
    weights = table.column("weight").to_numpy().astype(np.float32, copy=True)
    if is_ordered(doc) and len(ids) != doc["batch_size"] * doc["num_batches"]:
        raise SelectionFileError(f"{path}: {len(ids)} rows, but the summary says {doc['num_batches']} mini-batches "
                                 f"of {doc['batch_size']}")
    want = doc.get("content_sha256")
    if want is not None and want != _digest(ids, weights):
        raise SelectionFileError(f"{path}: contents do not match their recorded sha256 (the file was changed or damaged)")
    _check_rows(ids, weights, ordered=is_ordered(doc), batch_size=int(doc.get("batch_size") or 0), num_samples=num_samples,
                where=f"{path}: ", error=SelectionFileError)
    return ids, weights, doc
