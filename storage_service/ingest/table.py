"""An Arrow IPC (file or stream) or Parquet table with a sample column and a label column.

The sample column may be fixed-size binary, binary of one length, or a (fixed-size) list of
numbers; ``--shape`` gives the per-sample shape (default: one flat dimension).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from storage_service.ingest.writer import IngestError

__all__ = ["load_table", "read_table", "column_samples", "pick_column", "TABLE_SUFFIXES", "DEFAULT_SAMPLE_COLUMNS", "DEFAULT_LABEL_COLUMNS"]

TABLE_SUFFIXES = {".arrow", ".feather", ".ipc", ".arrows", ".parquet", ".pq"}
DEFAULT_SAMPLE_COLUMNS = ("sample", "image", "x", "pixels")
DEFAULT_LABEL_COLUMNS = ("label", "y", "target", "class")


def read_table(path: Path) -> pa.Table:
    """An Arrow IPC (file or stream) or Parquet file as a table (IngestError if unreadable)."""
    return _read(path)


def _read(path: Path) -> pa.Table:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        with pa.memory_map(str(path), "r") as src:
            try:
                return pa.ipc.open_file(src).read_all()
            except pa.ArrowInvalid:
                src.seek(0)
                return pa.ipc.open_stream(src).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: not a readable Arrow/Parquet table ({exc})") from None


def pick_column(names: Sequence[str], path: Path, wanted: str | None, defaults: Sequence[str], what: str) -> str:
    """The column named ``wanted`` (``--<what>-column``), else the first of ``defaults`` present;
    IngestError naming ``path`` and the columns there."""
    names = list(names)
    if wanted is not None:
        if wanted not in names:
            raise IngestError(f"{path}: no {what} column {wanted!r}; columns are {names}")
        return wanted
    for name in defaults:
        if name in names:
            return name
    raise IngestError(f"{path}: no {what} column (tried {list(defaults)}; columns are {names}); name it with --{what}-column")


def load_table(path: Path, *, sample_column: str | None = None, label_column: str | None = None,
               shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    table = _read(path)
    if table.num_rows == 0:
        raise IngestError(f"{path}: empty input (zero rows)")
    scol = pick_column(table.column_names, path, sample_column, DEFAULT_SAMPLE_COLUMNS, "sample")
    lcol = pick_column(table.column_names, path, label_column, DEFAULT_LABEL_COLUMNS, "label")
    x = column_samples(table.column(scol), path, scol, shape)
    lab = table.column(lcol)
    if lab.null_count:
        raise IngestError(f"{path}: column {lcol!r} has {lab.null_count} null labels")
    return x, lab.to_numpy()


def column_samples(column, path: Path, scol: str, shape: Sequence[int] | None) -> np.ndarray:
    """A sample column as ``[rows, ...]``: binary of one length (uint8), or (nested, fixed or
    variable) lists of numbers of one length per row; ``shape`` reshapes each row."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if col.null_count:
        raise IngestError(f"{path}: column {scol!r} has {col.null_count} null samples")
    t = col.type
    dims: list[int] = []  # the outer sizes of nested lists, kept as the sample shape
    while (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)) and (
            pa.types.is_fixed_size_list(t.value_type) or pa.types.is_list(t.value_type) or pa.types.is_large_list(t.value_type)):
        inner = col.flatten()  # nested lists (an H x W array per row): one level at a time
        if pa.types.is_fixed_size_list(t):
            per = t.list_size
        else:
            lengths = np.asarray(col.value_lengths())
            if lengths.size and lengths.min() != lengths.max():
                raise IngestError(f"{path}: samples in {scol!r} have different lengths ({lengths.min()}..{lengths.max()})")
            per = int(lengths[0]) if lengths.size else 0
        inner_flat = inner.flatten()
        inner_len = np.asarray(inner.value_lengths())
        if inner_len.size and inner_len.min() != inner_len.max():
            raise IngestError(f"{path}: samples in {scol!r} are ragged nested lists")
        dims.append(per)
        width = per * (int(inner_len[0]) if inner_len.size else 0)
        col = pa.FixedSizeListArray.from_arrays(inner_flat, width) if width else col
        t = col.type
        if not width:
            break
    if pa.types.is_fixed_size_binary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        rows = col.to_pylist()
        width = len(rows[0])
        bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
        if bad is not None:
            raise IngestError(f"{path}: sample {bad} has {len(rows[bad])} bytes, sample 0 has {width}")
        x = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), width)
    elif pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        if not (pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)):
            raise IngestError(f"{path}: column {scol!r} holds lists of {t.value_type}, expected numbers")
        lengths = np.asarray(col.value_lengths())
        if lengths.min() != lengths.max():
            raise IngestError(f"{path}: samples in {scol!r} have different lengths ({lengths.min()}..{lengths.max()})")
        x = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), int(lengths[0]))
    else:
        raise IngestError(f"{path}: column {scol!r} has type {t}; expected binary or a list of numbers")
    if shape is not None:
        if int(np.prod(shape)) * (x.dtype.itemsize if x.dtype != np.uint8 else 1) != x.shape[1] * x.dtype.itemsize:
            raise IngestError(f"{path}: --shape {list(shape)} does not hold {x.shape[1]} values per sample")
        x = x.reshape(len(x), *shape)
    elif dims and x.shape[1] % int(np.prod(dims)) == 0:
        x = x.reshape(len(x), *dims, x.shape[1] // int(np.prod(dims)))
    return x
