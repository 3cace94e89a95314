"""Read side of the sample store: shards behind ``take(ids)``, safe against files that change.

A store is a directory: ``manifest.json`` plus Arrow IPC *file* shards with columns
``id`` (int64), ``label`` (int32), ``sample`` (fixed_size_binary). See README.md here.

``take`` never goes through ``ChunkedArray.take``: each record batch's ``sample`` column is a
contiguous fixed-width buffer, so the rows of a random take are gathered by one pass of C
(``_gather``) straight from the memory-mapped batches.

Files that change under an open store (a shard truncated, rewritten in place or replaced; an
I/O error under the map) fail this store only, with ``StoreDataLoss``, and never the process:
the layout and the labels are read with ``pread`` (``_shard_file``), every read from a map is
a guarded copy (a SIGBUS inside it becomes an error), and the files' identities are re-checked
at most every ``check_interval`` seconds before a read. Without the C extension nothing is
mapped and rows are read with ``pread``. Labels are range-checked at open; shard checksums are
checked by ``verify()`` (everything) or ``start_verification()`` (what the service runs before
it serves a store, see ``store_integrity``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from storage_service import _gather
from storage_service._errors import DataLoss, Unavailable
from storage_service._shard_file import ShardFile, ShardLayoutError
from storage_service.columns import ColumnError, ColumnInfo, ColumnKind, ColumnReader
from storage_service.manifest import MANIFEST_NAME, SCHEMA_FIELDS, Manifest, ManifestError
from storage_service.store_integrity import Verification, verify_store

__all__ = ["Store", "StoreError", "StoreDataLoss", "StoreNotReady", "discover", "verify_store", "SCHEMA_FIELDS"]

#: Seconds between two checks of the shard files' identities (size, mtime, inode) by readers.
DEFAULT_CHECK_INTERVAL = 1.0

_log = logging.getLogger("nessa.store")


class StoreError(ValueError):
    """A store cannot be opened or read as asked (names the store and the problem)."""


class StoreDataLoss(StoreError, DataLoss):
    """The store's files changed, shrank, failed to read or failed their checksums after it was
    opened: this store stays failed (re-open it once the data is restored). A ServiceError with
    status DATA_LOSS, so the service answers it as such without translating it."""


class StoreNotReady(StoreError, Unavailable):
    """The store's checksums are still being verified (status UNAVAILABLE: retry shortly)."""


class Store:
    """An opened, read-only sample store. Safe to share between threads; re-open per process."""

    def __init__(self, path: str | os.PathLike, *, check_interval: float | None = None):
        self.path = Path(path)
        try:
            self.manifest, self.manifest_sha256, self.manifest_identity = Manifest.load_file(self.path)
        except ManifestError as exc:
            raise StoreError(str(exc)) from None
        self._row_bytes = self.manifest.sample_nbytes
        self._check_interval = float(DEFAULT_CHECK_INTERVAL if check_interval is None else check_interval)
        self._shards: list[ShardFile] = []
        try:
            self._open_shards()
        except BaseException:
            self.close()
            raise
        self._class_ids: list[np.ndarray] | None = None
        self._failed: str | None = None
        self._failed_state: list | None = None  # the shard files as they were when the store failed
        self._fail_lock = threading.Lock()
        self._next_check = 0.0
        self.verification: Verification | None = None

    def _open_shards(self) -> None:
        m = self.manifest
        self._views: list[np.ndarray] = []  # per record batch: [rows, row_bytes] uint8 over the map (C gather only)
        self._batch_shard: list[tuple[int, int]] = []  # per record batch: (shard index, batch index in it)
        starts, labels = [], []
        for k, shard in enumerate(m.shards):
            file = self.path / shard.file
            try:
                sf = ShardFile(file, self._row_bytes, map_file=_gather.available())
            except OSError as exc:
                raise StoreError(f"{file}: cannot open shard: {exc.strerror or exc}") from None
            except (ShardLayoutError, pa.ArrowInvalid) as exc:
                raise StoreError(f"{file}: cannot open shard: {exc}") from None
            self._shards.append(sf)
            names = [f.name for f in sf.schema]
            if names != [n for n, _ in SCHEMA_FIELDS] or sf.schema.field(0).type != pa.int64() or sf.schema.field(1).type != pa.int32():
                raise StoreError(f"{file}: columns {sf.schema}, expected id int64, label int32, sample fixed_size_binary")
            col = sf.schema.field(2).type
            if not pa.types.is_fixed_size_binary(col) or col.byte_width != self._row_bytes:
                raise StoreError(f"{file}: sample column is {col}, manifest says {self._row_bytes} bytes per row")
            if sf.rows != shard.rows:
                raise StoreError(f"{file}: holds {sf.rows} rows, manifest says {shard.rows}")
            row = shard.first_id
            for b, layout in enumerate(sf.batches):
                starts.append(row)
                row += layout.rows
                self._batch_shard.append((k, b))
            self._views.extend(sf.views)
            try:
                shard_labels = sf.labels()
            except (OSError, ShardLayoutError) as exc:
                raise StoreError(f"{file}: cannot read labels: {exc}") from None
            bad = np.flatnonzero((shard_labels < 0) | (shard_labels >= m.num_classes))
            if bad.size:
                r = int(bad[0])
                raise StoreError(f"{file}: row {r} (id {shard.first_id + r}) has label {int(shard_labels[r])}, outside "
                                 f"[0, {m.num_classes}) ({bad.size} such rows): the shard or the manifest is damaged")
            labels.append(shard_labels)
        self._starts = np.asarray(starts + [m.num_samples], dtype=np.int64)
        self._bases = _gather.row_bases(self._views) if self._views else None
        lab = np.concatenate(labels).astype(np.int32, copy=False) if labels else np.empty(0, np.int32)
        lab.setflags(write=False)
        counts = np.bincount(lab, minlength=m.num_classes)
        if counts.tolist() != list(m.class_counts):
            raise StoreError(f"{self.path}: labels count {counts.tolist()} per class, manifest says {m.class_counts}")
        self._labels = lab

    # -- facts ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.manifest.num_samples

    def __repr__(self) -> str:
        m = self.manifest
        return f"Store({str(self.path)!r}, name={m.name!r}, n={m.num_samples}, shape={list(m.sample_shape)}, dtype={m.dtype})"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.manifest.sample_shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest.dtype)

    @property
    def num_batches(self) -> int:
        return len(self._starts) - 1

    @property
    def labels(self) -> np.ndarray:
        """All labels in id order (int32, read and range-checked at open)."""
        self._ready()
        return self._labels

    def class_ids(self, c: int) -> np.ndarray:
        """Ids (int64, ascending) of the samples of class ``c``."""
        if not 0 <= c < self.manifest.num_classes:
            raise StoreError(f"{self.path}: class {c} out of range [0, {self.manifest.num_classes})")
        if self._class_ids is None:
            labels = self.labels
            order = np.argsort(labels, kind="stable")
            bounds = np.searchsorted(labels[order], np.arange(self.manifest.num_classes + 1))
            self._class_ids = [order[bounds[k] : bounds[k + 1]].astype(np.int64) for k in range(self.manifest.num_classes)]
        return self._class_ids[c]

    # -- health ----------------------------------------------------------------------------
    @property
    def failed(self) -> str | None:
        """Why this store stopped serving (None while it serves; a checksum check that failed in
        the background counts)."""
        v = self.verification
        if self._failed is None and v is not None and v.state == "failed":
            try:
                self._fail("; ".join(v.problems))
            except StoreDataLoss:
                pass
        return self._failed

    def _disk_state(self) -> list:
        out = []
        for sf in self._shards:
            try:
                st = os.stat(sf.path)
                out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError as exc:
                out.append(exc.errno)
        return out

    def changed_on_disk(self) -> bool:
        """Whether a shard's file (what its path names: device, inode, size, mtime) changed since
        this store failed (restored, or damaged further): a failed store worth opening again."""
        return self._failed_state is not None and self._disk_state() != self._failed_state

    def check(self) -> None:
        """Raise StoreDataLoss if a shard changed since the open (or the store failed before)."""
        if self._failed is not None:
            raise StoreDataLoss(self._failed)
        for sf in self._shards:
            why = sf.change()
            if why is not None:
                self._fail(f"{sf.path} {why}")

    def _ready(self) -> None:
        """Before a read: failed stays failed; wait for a running checksum check; re-check the
        files' identities every ``check_interval`` seconds."""
        if self._failed is not None:
            raise StoreDataLoss(self._failed)
        v = self.verification
        if v is not None and v.state != "ok":
            v.wait()
            if v.state == "failed":
                self._fail("; ".join(v.problems))
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_interval
            self.check()

    def _fail(self, why: str) -> None:
        with self._fail_lock:
            if self._failed is None:
                self._failed_state = self._disk_state()
                self._failed = f"data set {self.manifest.name!r} ({self.path}): {why}; it is failed until re-opened"
                _log.error("%s", self._failed)
        raise StoreDataLoss(self._failed)

    def _fault(self) -> None:
        """A guarded read faulted (SIGBUS) or came up short: say which shard, then fail."""
        for sf in self._shards:
            why = sf.change()
            if why is not None:
                self._fail(f"{sf.path} {why}")
        self._fail("a shard could not be read (I/O error under the memory map, or a file shrank and grew back)")

    def start_verification(self, *, sync_bytes: int | None = None, record: bool = True, by: str = "nessa serve") -> Verification:
        """Check every shard's sha256 (trusting what a valid verify record covers) before any read
        returns data: reads wait for it, and fail with StoreDataLoss if it fails. The hashing runs
        now, or in a thread when more than ``sync_bytes`` need it (then ``require_verified``
        lets a caller answer at once instead of waiting). Idempotent."""
        v = self.verification
        background = False
        if v is None:
            v = Verification(self, by=by, record=record)
            self.verification = v
            background = sync_bytes is not None and v.untrusted_bytes() > sync_bytes
            v.run(background=background)
        if not background and v.state == "failed":
            self._fail("; ".join(v.problems))
        return v

    def require_verified(self) -> None:
        """Raise StoreNotReady while the checksum check runs, StoreDataLoss if it failed."""
        if self._failed is not None:
            raise StoreDataLoss(self._failed)
        v = self.verification
        if v is not None and v.state != "ok":
            if v.state == "failed" or v.wait(0):
                if v.state == "failed":
                    self._fail("; ".join(v.problems))
                return
            raise StoreNotReady(f"data set {self.manifest.name!r} is being verified (shard checksums, {v.progress()}); "
                                f"retry shortly")

    # -- reads ---------------------------------------------------------------------------
    def _check_ids(self, ids) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise StoreError(f"ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= self.manifest.num_samples):
            bad = ids[(ids < 0) | (ids >= self.manifest.num_samples)][0]
            raise StoreError(f"id {int(bad)} out of range [0, {self.manifest.num_samples}) in store {self.manifest.name!r}")
        return ids

    def take_bytes(self, ids, out: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``ids`` as ``[n, row_bytes]`` uint8, in the order given.

        Without ``out`` the rows land in a new array; with ``out`` (``[n, row_bytes]`` uint8,
        e.g. a slice of an outgoing message buffer) they are gathered straight into it.
        StoreDataLoss if a shard changed or failed to read.
        """
        self._ready()
        ids = self._check_ids(ids)
        if out is not None and (out.shape != (ids.size, self._row_bytes) or out.dtype != np.uint8):
            raise StoreError(f"out must be uint8 [{ids.size}, {self._row_bytes}], got {out.dtype} {list(out.shape)}")
        if ids.size == 0:
            return out if out is not None else np.empty((0, self._row_bytes), dtype=np.uint8)
        target = out if out is not None and out.flags.c_contiguous and out.flags.writeable else np.empty((ids.size, self._row_bytes), np.uint8)
        if self._bases is not None:
            # One guarded pass in C (_gather_native.c): each row copied once; a SIGBUS comes back as False.
            if not _gather.gather_rows(self._bases, self._starts, np.ascontiguousarray(ids), self._row_bytes, target):
                self._fault()
        else:
            self._pread_rows(ids, target)
        if out is not None and target is not out:
            out[...] = target
            return out
        return target

    def _pread_rows(self, ids: np.ndarray, out: np.ndarray) -> None:
        """Without the C extension: one pread per row (nothing mapped, so nothing can fault);
        about 100x the C gather's time (BENCHMARKS.md, "Shards that change under the server")."""
        rb = self._row_bytes
        batch = np.searchsorted(self._starts, ids, side="right") - 1
        base = np.array([self._shards[k].batches[j].sample_offset for k, j in self._batch_shard], np.int64)
        offsets = (base[batch] + (ids - self._starts[batch]) * rb).tolist()
        fds = [self._shards[k].fd for k, _ in self._batch_shard]
        flat = memoryview(out.reshape(-1))
        preadv = os.preadv
        try:
            if len(fds) == 1:
                fd = fds[0]
                ok = all(preadv(fd, [flat[i * rb : i * rb + rb]], off) == rb for i, off in enumerate(offsets))
            else:
                ok = all(preadv(fds[b], [flat[i * rb : i * rb + rb]], off) == rb
                         for i, (b, off) in enumerate(zip(batch.tolist(), offsets)))
        except OSError:
            ok = False
        if not ok:
            self._fault()

    def take(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """``(samples [n, *sample_shape], labels int32 [n])`` for ``ids``, in the order given."""
        ids = self._check_ids(ids)
        rows = self.take_bytes(ids)
        samples = rows.view(self.dtype).reshape((ids.size, *self.manifest.sample_shape))
        return samples, self._labels[ids]

    def take_table(self, ids) -> pa.Table:
        """The rows of ``ids`` as an Arrow table (``id``, ``label``, ``sample``), in the order given."""
        ids = self._check_ids(ids)
        rows = self.take_bytes(ids)
        sample = pa.FixedSizeBinaryArray.from_buffers(pa.binary(self._row_bytes), ids.size, [None, pa.py_buffer(rows)])
        return pa.table({"id": pa.array(ids, pa.int64()), "label": pa.array(self._labels[ids], pa.int32()), "sample": sample})

    def iter_batches(self, batch_size: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(ids, samples, labels)`` in id order; samples are copies (a guarded read, so a shard
        that shrinks under the iteration raises StoreDataLoss instead of faulting)."""
        if batch_size < 1:
            raise StoreError(f"batch_size must be >= 1, got {batch_size}")
        shape = self.manifest.sample_shape
        for b, (k, j) in enumerate(self._batch_shard):
            sf = self._shards[k]
            start, rows = int(self._starts[b]), sf.batches[j].rows
            for lo in range(0, rows, batch_size):
                self._ready()
                n = min(batch_size, rows - lo)
                out = np.empty((n, self._row_bytes), np.uint8)
                if not sf.copy_rows(j, lo, out):
                    self._fault()
                ids = np.arange(start + lo, start + lo + n, dtype=np.int64)
                yield ids, out.view(self.dtype).reshape((n, *shape)), self._labels[ids]

    def sample_runs(self) -> list[tuple[Path, list[tuple[int, int]], int]]:
        """Per shard ``(path, [(file offset, rows) of each record batch's sample bytes], first id)``,
        from the layout read at open (no map touched): for readers that pread or DMA the sample
        bytes themselves (the P2P path)."""
        return [(Path(sf.path), [(b.sample_offset, b.rows) for b in sf.batches], info.first_id)
                for sf, info in zip(self._shards, self.manifest.shards)]

    # -- optional columns (storage_service/columns.py) ---------------------------------------
    @property
    def columns(self) -> dict[str, ColumnInfo]:
        """The store's optional columns by name (``text``, ``emb/<name>``), as its manifest lists them."""
        return {c.name: ColumnInfo.from_file(c) for c in self.manifest.columns}

    def _column(self, name: str, kind: ColumnKind) -> ColumnReader:
        self._ready()
        entry = next((c for c in self.manifest.columns if c.name == name), None)
        if entry is None:
            have = ", ".join(c.name for c in self.manifest.columns) or "none"
            raise ColumnError(f"column {name!r}: no such column in data set {self.manifest.name!r} (columns: {have})")
        if entry.kind != kind.value:
            raise ColumnError(f"column {name!r} is a {entry.kind} column, not {kind.value}")
        readers = self.__dict__.setdefault("_column_readers", {})
        if name not in readers:  # opened (and its sha256 checked) on first use, then kept
            readers[name] = ColumnReader(self.path, entry, self.manifest.num_samples)
        return readers[name]

    def embeddings(self, name: str, ids=None) -> np.ndarray:
        """Embedding column ``name`` as float32 ``(n, dim)``: rows of ``ids`` in that order, or all
        rows in id order; reads only that column's file (memory-mapped)."""
        reader = self._column(name, ColumnKind.EMBEDDING)
        return reader.embeddings(None if ids is None else self._check_ids(ids))

    def texts(self, ids=None) -> list[str]:
        """The caption column ``text``: values of ``ids`` in that order, or all in id order."""
        reader = self._column("text", ColumnKind.TEXT)
        return reader.texts(None if ids is None else self._check_ids(ids))

    # -- integrity -----------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Re-hash every shard and re-check ids, labels and counts. Returns the problems found."""
        return verify_store(self.path)

    def close(self) -> None:
        """Unmap and close the shards now (otherwise when the last reference goes); reads then fail."""
        self._failed = getattr(self, "_failed", None) or f"store {str(self.path)!r} is closed"
        self._views, self._bases = [], None
        for sf in self._shards:
            sf.close()


def discover(root: str | os.PathLike) -> dict[str, Path]:
    """Every store below ``root``, keyed by its posix path relative to ``root`` ("." for root itself)."""
    root = Path(root)
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if MANIFEST_NAME in filenames:
            rel = Path(dirpath).relative_to(root).as_posix()
            found[rel] = Path(dirpath)
            dirnames[:] = []  # a store does not nest stores
    return found
