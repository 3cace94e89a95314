"""Write side of the store: bounded Arrow IPC file shards, a manifest, all-or-nothing.

Everything is written into a hidden temporary sibling of the destination and renamed into place
at the end, so an interrupted or failed ingest leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from storage_service._durable import fsync_dir
from storage_service.leftovers import remove_leftovers_of
from storage_service.manifest import MANIFEST_NAME, Manifest, ShardInfo
from storage_service.store_integrity import stat_doc, write_record
from storage_service.store import Store

__all__ = ["IngestError", "write_store", "StoreWriter", "atomic_dir", "DEFAULT_SHARD_BYTES", "DEFAULT_BATCH_BYTES"]

DEFAULT_SHARD_BYTES = 64 << 20  # keeps a shard comfortably inside one P2P transfer window
DEFAULT_BATCH_BYTES = 64 << 20  # record batch size: one batch per default shard keeps take() a single gather


class IngestError(ValueError):
    """Input that cannot become a store; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``dest`` only if the block succeeds.

    The temporary is ``.<dest>.tmp-<pid>-<hex>``, locked (``flock``) while the block runs, so
    that ``storage_service.leftovers`` can tell a live ingest from a killed one's leftovers.
    """
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise IngestError(f"{dest}: destination exists (use --overwrite to replace it)")
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    remove_leftovers_of(dest)  # what a killed earlier ingest of dest left behind
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:  # read-only place, a file where a folder belongs, ...
        raise IngestError(f"{dest}: cannot create the destination: {exc.strerror}") from None
    lock = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield tmp
        _fsync_tree(tmp)
        if dest.exists():
            trash = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(dest, trash)
            os.rename(tmp, dest)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(lock)


def _fsync_tree(root: Path) -> None:
    """Every file and folder below ``root`` on disk before the rename publishes them."""
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


class StoreWriter:
    """Append ``(samples, labels)`` chunks to shards inside an existing empty directory."""

    def __init__(self, directory: Path, *, name: str, sample_shape: Sequence[int], dtype, num_classes: int | None = None,
                 class_names: Sequence[str] | None = None, shard_bytes: int = DEFAULT_SHARD_BYTES,
                 batch_bytes: int = DEFAULT_BATCH_BYTES, extra: dict | None = None):
        if shard_bytes <= 0:
            raise IngestError(f"shard_bytes must be positive, got {shard_bytes}")
        self.directory = Path(directory)
        self.name = name
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "uif" or self.dtype.byteorder == ">":
            raise IngestError(f"{name}: sample dtype must be a native numeric type, got {self.dtype}")
        self.row_bytes = int(np.prod(self.sample_shape, dtype=np.int64)) * self.dtype.itemsize
        if self.row_bytes <= 0:
            raise IngestError(f"{name}: empty sample shape {list(self.sample_shape)}")
        self.rows_per_shard = max(1, shard_bytes // self.row_bytes)
        self.rows_per_batch = max(1, min(self.rows_per_shard, batch_bytes // self.row_bytes))
        self.class_names = list(class_names) if class_names is not None else None
        if self.class_names is not None:
            if num_classes is not None and num_classes != len(self.class_names):
                raise IngestError(f"{name}: num_classes {num_classes} but {len(self.class_names)} class names")
            num_classes = len(self.class_names)
        if num_classes is not None and num_classes < 1:
            raise IngestError(f"{name}: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.extra = dict(extra or {})
        self._schema = pa.schema([("id", pa.int64()), ("label", pa.int32()), ("sample", pa.binary(self.row_bytes))])
        self._shards: list[ShardInfo] = []
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._shard_rows = 0
        self._next_id = 0
        self._counts = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    def _open_shard(self) -> None:
        file = self.directory / f"shard-{len(self._shards):05d}.arrow"
        self._writer = pa.ipc.new_file(str(file), self._schema)
        self._shard_file = file
        self._shard_first = self._next_id
        self._shard_rows = 0

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        digest = hashlib.sha256()
        with open(self._shard_file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
        self._shards.append(ShardInfo(self._shard_file.name, self._shard_rows, self._shard_first, digest.hexdigest()))
        self._writer = None

    def append(self, samples: np.ndarray, labels: np.ndarray) -> None:
        samples = np.ascontiguousarray(samples, dtype=self.dtype)
        labels = np.asarray(labels)
        if samples.shape[1:] != self.sample_shape:
            raise IngestError(f"{self.name}: sample shape {list(samples.shape[1:])} differs from {list(self.sample_shape)}")
        if labels.shape != (samples.shape[0],):
            raise IngestError(f"{self.name}: {samples.shape[0]} samples but {labels.size} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= min(self.num_classes or 2**31 - 1, 2**31 - 1)):
            limit = min(self.num_classes or 2**31 - 1, 2**31 - 1)
            r = int(np.flatnonzero((labels < 0) | (labels >= limit))[0])
            row = self._next_id + self._pending_rows + r
            raise IngestError(f"{self.name}: row {row} has label {int(labels[r])}, outside [0, {limit})"
                              + (" (num_classes)" if self.num_classes else ""))
        labels = labels.astype(np.int32)
        rows = samples.reshape(samples.shape[0], -1).view(np.uint8).reshape(samples.shape[0], self.row_bytes)
        # Buffer small appends so record batches come out full-sized (take() gathers per batch).
        self._pending.append((rows, labels))
        self._pending_rows += rows.shape[0]
        while self._pending_rows >= self._batch_target():
            self._flush(self._batch_target())
        counts = np.bincount(labels, minlength=max(len(self._counts), int(labels.max(initial=-1)) + 1))
        counts[: len(self._counts)] += self._counts
        self._counts = counts

    def _batch_target(self) -> int:
        room = self.rows_per_shard - self._shard_rows if self._writer is not None else self.rows_per_shard
        return min(self.rows_per_batch, room if room > 0 else self.rows_per_shard)

    def _flush(self, take: int) -> None:
        """Write the first ``take`` pending rows as one record batch."""
        if self._writer is None or self._shard_rows >= self.rows_per_shard:
            self._close_shard()
            self._open_shard()
        rows = np.concatenate([r for r, _ in self._pending]) if len(self._pending) > 1 else self._pending[0][0]
        labels = np.concatenate([l for _, l in self._pending]) if len(self._pending) > 1 else self._pending[0][1]
        chunk = np.ascontiguousarray(rows[:take])
        sample = pa.FixedSizeBinaryArray.from_buffers(pa.binary(self.row_bytes), take, [None, pa.py_buffer(chunk)])
        ids = pa.array(np.arange(self._next_id, self._next_id + take, dtype=np.int64))
        self._writer.write_batch(pa.record_batch([ids, pa.array(labels[:take], pa.int32()), sample], schema=self._schema))
        self._shard_rows += take
        self._next_id += take
        self._pending = [(rows[take:], labels[take:])] if take < rows.shape[0] else []
        self._pending_rows -= take

    def finish(self) -> Manifest:
        while self._pending_rows:
            self._flush(min(self._pending_rows, self._batch_target()))
        self._close_shard()
        if self._next_id == 0:
            raise IngestError(f"{self.name}: empty input (no samples)")
        num_classes = self.num_classes if self.num_classes is not None else len(self._counts)
        if self.class_names is not None:
            num_classes = len(self.class_names)
        counts = np.zeros(num_classes, dtype=np.int64)
        counts[: len(self._counts)] = self._counts
        names = self.class_names if self.class_names is not None else [str(c) for c in range(num_classes)]
        manifest = Manifest(name=self.name, num_samples=self._next_id, num_classes=num_classes, class_names=names,
                            class_counts=counts.tolist(), sample_shape=self.sample_shape, dtype=str(self.dtype),
                            shards=self._shards, extra=self.extra)
        manifest.check(where=self.name)
        tmp = self.directory / f"{MANIFEST_NAME}.tmp{os.getpid()}"
        text = manifest.to_json()
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / MANIFEST_NAME)
        # The shards were hashed as written (read back from the files): record it, so that the
        # server's first open of this store trusts them instead of hashing them again.
        clean = {s.file: {"sha256": s.sha256, **stat_doc(os.stat(self.directory / s.file))} for s in self._shards}
        write_record(self.directory, hashlib.sha256(text.encode()).hexdigest(), clean, [], "nessa ingest")
        return manifest

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None


def write_chunks(directory: Path, chunks: Iterable[tuple[np.ndarray, np.ndarray]], *, progress=None, **writer_kw) -> Manifest:
    """Write ``chunks`` into ``directory`` (which must exist); ``progress`` gets ``update(n)``."""
    writer = StoreWriter(directory, **writer_kw)
    try:
        for samples, labels in chunks:
            writer.append(samples, labels)
            if progress is not None:
                progress.update(len(labels))
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def write_store(dest: str | os.PathLike, samples: np.ndarray, labels: np.ndarray, *, name: str | None = None,
                class_names: Sequence[str] | None = None, shard_bytes: int = DEFAULT_SHARD_BYTES,
                batch_bytes: int = DEFAULT_BATCH_BYTES, overwrite: bool = False) -> Store:
    """Write in-memory arrays as a store at ``dest`` (atomically) and open it."""
    samples = np.asarray(samples)
    labels = np.asarray(labels)
    if samples.ndim < 2:
        raise IngestError(f"samples must be [N, *shape], got shape {list(samples.shape)}")
    if samples.shape[0] == 0:
        raise IngestError(f"{dest}: empty input (no samples)")
    if labels.shape != (samples.shape[0],):
        raise IngestError(f"{dest}: {samples.shape[0]} samples but labels have shape {list(labels.shape)}")
    dest = Path(dest)
    with atomic_dir(dest, overwrite=overwrite) as tmp:
        write_chunks(tmp, [(samples, labels)], name=name or dest.name, sample_shape=samples.shape[1:], dtype=samples.dtype,
                     class_names=class_names, num_classes=len(class_names) if class_names is not None else None,
                     shard_bytes=shard_bytes, batch_bytes=batch_bytes)
    return Store(dest)
