"""The selection file: one on-disk format for a weighted subset, written by the service and by
``nessa select``, read by both (and by anyone with pyarrow).

Format (``SELECTION_FORMAT_VERSION`` = 1): an Arrow IPC *file* with columns

    id      int64    ascending store ids of the selected examples
    weight  float32  each example's loss weight (cluster size, normalised so weights sum to |S|,
                     unless the summary says ``"raw_weights": true``)

and schema metadata ``nessa.selection``: a JSON object holding at least ``format_version`` (1),
``dataset``, ``strategy``, ``fraction``, ``seed``, ``backend``, ``num_selected``,
``class_counts`` (selected per class, indexed by label), ``objective`` and ``seconds``. The
service adds ``id`` and ``model_version``; ``nessa select`` adds ``optimizer``, ``source`` (the
features' origin) and ``per_class`` (``[{cls, n, k, objective, seconds}]``). Readers ignore keys
they do not know. Written to a temporary name in the same folder and renamed: a file is whole
or absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["SELECTION_FORMAT_VERSION", "SelectionFileError", "write_selection", "read_selection", "read_summary"]

SELECTION_FORMAT_VERSION = 1
_META_KEY = b"nessa.selection"
_SCHEMA = pa.schema([("id", pa.int64()), ("weight", pa.float32())])


class SelectionFileError(ValueError):
    """Not a selection file of a version this code reads (message names the file)."""


def write_selection(path: str | os.PathLike, ids: np.ndarray, weights: np.ndarray, summary: dict) -> Path:
    """Write ``ids`` (sorted ascending here, weights kept aligned) and ``summary`` atomically."""
    ids = np.asarray(ids, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float32)
    if ids.shape != weights.shape or ids.ndim != 1:
        raise ValueError(f"ids and weights must be 1-D and aligned, got {ids.shape} and {weights.shape}")
    order = np.argsort(ids, kind="stable")
    ids, weights = ids[order], weights[order]
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        raise ValueError("selection ids must be distinct")
    path = Path(path)
    doc = {"format_version": SELECTION_FORMAT_VERSION, **{k: v for k, v in summary.items() if k != "format_version"}}
    schema = _SCHEMA.with_metadata({_META_KEY: json.dumps(doc).encode()})
    table = pa.table([pa.array(ids), pa.array(weights)], schema=schema)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            writer.write_table(table)
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
    return doc


def read_summary(path: str | os.PathLike) -> dict:
    """The JSON summary of a selection file (SelectionFileError if it is not one)."""
    try:
        with pa.memory_map(str(path), "r") as source:
            return _summary(pa.ipc.open_file(source).schema, path)
    except pa.ArrowInvalid as exc:
        raise SelectionFileError(f"{path}: not an Arrow IPC file ({exc})") from None


def read_selection(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(ids int64, weights float32, summary)`` of a selection file."""
    try:
        with pa.memory_map(str(path), "r") as source:
            reader = pa.ipc.open_file(source)
            doc = _summary(reader.schema, path)
            table = reader.read_all()
    except pa.ArrowInvalid as exc:
        raise SelectionFileError(f"{path}: not an Arrow IPC file ({exc})") from None
    ids = table.column("id").to_numpy().astype(np.int64, copy=True)
    weights = table.column("weight").to_numpy().astype(np.float32, copy=True)
    return ids, weights, doc
