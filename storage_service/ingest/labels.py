"""Label checks shared by every ingest source."""

from __future__ import annotations

import numpy as np

__all__ = ["as_int_labels"]


def as_int_labels(values, *, where: str) -> tuple[np.ndarray, list[str] | None]:
    """Integer class labels (int32) and, for string labels, the sorted class names they index."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise _err(where, f"labels must be 1-D, got shape {list(arr.shape)}")
    if arr.dtype.kind in "USO":
        names = sorted({str(v) for v in arr.tolist()})
        index = {n: i for i, n in enumerate(names)}
        return np.fromiter((index[str(v)] for v in arr.tolist()), dtype=np.int32, count=arr.size), names
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise _err(where, f"labels must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(np.nan_to_num(arr))))][0]
            raise _err(where, f"non-integer label {bad.item()!r}")
    if arr.size and arr.min() < 0:
        raise _err(where, f"negative label {arr.min().item()!r}")
    if arr.size and arr.max() > np.iinfo(np.int32).max:
        raise _err(where, f"label {arr.max().item()!r} too large")
    return arr.astype(np.int32), None


def _err(where: str, msg: str):
    from storage_service.ingest.writer import IngestError

    return IngestError(f"{where}: {msg}")
