"""Shard checksums: a full check of a store (``verify_store``, ``nessa verify``), the check an
open ``Store`` runs before it serves (``Verification``), and the record that lets the next open
trust shards already hashed (``.nessa-verify.json``).

Verify record (``STORE/.nessa-verify.json``, ``RECORD_FORMAT_VERSION`` = 1), written atomically
by ingest (which hashes every shard as it writes it), by ``nessa verify`` and by the server after
a shard hashed clean, only where the store folder is writable (the record is advice, not part of
the store)::

    {"format": "nessa-verify", "format_version": 1, "manifest_sha256": "<hex>",
     "by": "nessa ingest" | "nessa verify" | "nessa serve", "verified_at": "<UTC ISO 8601>",
     "ok": true | false, "problems": ["..."],
     "shards": {"<file>": {"sha256": "<hex>", "dev": int, "ino": int, "size": int,
                           "mtime_ns": int, "ctime_ns": int}}}

``shards`` holds only shards that hashed clean. An open trusts a shard without hashing it when
the record's ``manifest_sha256`` is the manifest's, and the shard's entry has the manifest's
sha256 and the file still has that device, inode, size, mtime and ctime (a write changes mtime;
setting mtime back changes ctime; a copy is another inode). Readers ignore unknown keys and a
record of another version (they hash instead).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from storage_service.manifest import MANIFEST_NAME, SCHEMA_FIELDS, Manifest, ManifestError

__all__ = ["RECORD_NAME", "RECORD_FORMAT_VERSION", "Verification", "verify_store", "read_record", "write_record", "stat_doc"]

RECORD_NAME = ".nessa-verify.json"
RECORD_FORMAT_VERSION = 1
_CHUNK = 4 << 20
_log = logging.getLogger("nessa.store")


def stat_doc(st: os.stat_result) -> dict:
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def hash_fd(fd: int, size: int, progress=None) -> str:
    """sha256 of the first ``size`` bytes of ``fd`` read with pread (never a map); OSError if the
    file ends early."""
    digest = hashlib.sha256()
    pos = 0
    while pos < size:
        data = os.pread(fd, min(_CHUNK, size - pos), pos)
        if not data:
            raise OSError(f"file ends at {pos} bytes, {size} expected")
        digest.update(data)
        pos += len(data)
        if progress is not None:
            progress(len(data))
    if os.pread(fd, 1, size):
        raise OSError(f"file is longer than {size} bytes")
    return digest.hexdigest()


def read_record(store_dir: str | os.PathLike, manifest_sha256: str) -> dict[str, dict]:
    """The record's shard entries, if it is a version-1 record for this manifest; else {}."""
    try:
        doc = json.loads((Path(store_dir) / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != "nessa-verify" or doc.get("format_version") != RECORD_FORMAT_VERSION:
        return {}
    if doc.get("manifest_sha256") != manifest_sha256 or not isinstance(doc.get("shards"), dict):
        return {}
    return doc["shards"]


def write_record(store_dir: str | os.PathLike, manifest_sha256: str, shards: dict[str, dict], problems: list[str], by: str) -> bool:
    """Write the record atomically (temp + fsync + rename); False where the folder is not writable."""
    doc = {"format": "nessa-verify", "format_version": RECORD_FORMAT_VERSION, "manifest_sha256": manifest_sha256, "by": by,
           "verified_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "ok": not problems,
           "problems": problems, "shards": shards}
    path = Path(store_dir) / RECORD_NAME
    tmp = path.with_name(f"{RECORD_NAME}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as fh:
            fh.write(json.dumps(doc, indent=1) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return True
    except OSError as exc:
        _log.debug("cannot write %s: %s", path, exc)
        tmp.unlink(missing_ok=True)
        return False


@dataclass(frozen=True)
class _StoreView:
    path: Path
    manifest: Manifest
    manifest_sha256: str
    _shards: list


class Verification:
    """Checksums of an open ``Store``'s shards, read through the store's own descriptors (the
    inodes it serves). ``run(background)`` trusts what the record allows and hashes the rest,
    now or in a thread; ``state`` is ``pending``, ``running``, ``ok`` or ``failed``."""

    def __init__(self, store, *, by: str = "nessa serve", record: bool = True):
        # What it needs of the store, not the store (which holds this object: no reference
        # cycle, so a replaced store's maps close as soon as its last reader lets go).
        self._store = _StoreView(store.path, store.manifest, store.manifest_sha256, list(store._shards))
        self._by = by
        self._record = record
        self.state = "pending"
        self.problems: list[str] = []
        self.done_bytes = 0
        self.total_bytes = sum(s.identity.size for s in store._shards)
        self._trusted: set[str] | None = None  # shard files a valid verify record vouches for
        self._done = threading.Event()

    def untrusted_bytes(self) -> int:
        """Bytes to hash: the shards a valid record does not vouch for (computed once)."""
        if self._trusted is None:
            self._trusted = self._trusted_files()
        return sum(s.identity.size for s, info in zip(self._store._shards, self._store.manifest.shards) if info.file not in self._trusted)

    def _trusted_files(self) -> set[str]:
        st = self._store
        record = read_record(st.path, st.manifest_sha256)
        out = set()
        for shard, info in zip(st._shards, st.manifest.shards):
            entry = record.get(info.file)
            try:
                now = stat_doc(os.fstat(shard.fd))
            except OSError:
                continue
            if isinstance(entry, dict) and entry.get("sha256") == info.sha256 and all(entry.get(k) == v for k, v in now.items()):
                out.add(info.file)
        return out

    def run(self, background: bool) -> None:
        self.state = "running"
        if background:
            threading.Thread(target=self._run, name=f"nessa-verify-{self._store.manifest.name}", daemon=True).start()
        else:
            self._run()

    def _run(self) -> None:
        st = self._store
        clean: dict[str, dict] = {}
        trusted: set[str] = set()
        try:
            self.untrusted_bytes()
            trusted = self._trusted
            for shard, info in zip(st._shards, st.manifest.shards):
                file = st.path / info.file
                before = os.fstat(shard.fd)
                if info.file in trusted:
                    self.done_bytes += before.st_size
                    clean[info.file] = {"sha256": info.sha256, **stat_doc(before)}
                    continue
                try:
                    digest = hash_fd(shard.fd, shard.identity.size, self._count)
                except OSError as exc:
                    self.problems.append(f"{file}: cannot read: {exc}")
                    continue
                after = os.fstat(shard.fd)
                if digest != info.sha256:
                    self.problems.append(f"{file}: sha256 mismatch (file {digest[:16]}…, manifest {info.sha256[:16]}…)")
                elif (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                    self.problems.append(f"{file}: changed while it was being verified")
                else:
                    clean[info.file] = {"sha256": digest, **stat_doc(after)}
        except Exception as exc:  # noqa: BLE001 - reported as the data set's failure, never a crash of the thread
            self.problems.append(f"{st.path}: verification failed: {type(exc).__name__}: {exc}")
        if self._record and len(clean) > len(trusted):
            write_record(st.path, st.manifest_sha256, clean, self.problems, self._by)
        self.state = "failed" if self.problems else "ok"
        if self.problems:
            _log.error("data set %r (%s) failed its checksums: %s", st.manifest.name, st.path, "; ".join(self.problems))
        self._done.set()

    def _count(self, n: int) -> None:
        self.done_bytes += n

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the check has finished (ok or failed) within ``timeout`` seconds."""
        return self._done.wait(timeout)

    def progress(self) -> str:
        pct = 100.0 * self.done_bytes / self.total_bytes if self.total_bytes else 100.0
        return f"{self.done_bytes / 1e6:.0f} of {self.total_bytes / 1e6:.0f} MB ({pct:.0f}%)"


def verify_store(path: str | os.PathLike, *, record: bool = False, by: str = "nessa verify") -> list[str]:
    """Check a store directory without trusting anything (usable when ``Store(path)`` would fail):
    every shard's sha256, Arrow readability, schema, row count, ids, label range and the per-class
    counts. Returns the problems found; with ``record`` writes the verify record."""
    path = Path(path)
    try:
        manifest = Manifest.load(path)
        manifest_sha = hashlib.sha256((path / MANIFEST_NAME).read_bytes()).hexdigest()
    except (ManifestError, OSError) as exc:
        return [str(exc)]
    problems: list[str] = []
    clean: dict[str, dict] = {}
    counts = np.zeros(manifest.num_classes, dtype=np.int64)
    for shard in manifest.shards:
        file = path / shard.file
        try:
            fd = os.open(file, os.O_RDONLY)
        except OSError as exc:
            problems.append(f"{file}: cannot read: {exc.strerror}")
            continue
        try:
            before = os.fstat(fd)
            try:
                digest = hash_fd(fd, before.st_size)
            except OSError as exc:
                problems.append(f"{file}: cannot read: {exc}")
                continue
            if digest != shard.sha256:
                problems.append(f"{file}: sha256 mismatch (file {digest[:16]}…, manifest {shard.sha256[:16]}…)")
            try:
                with os.fdopen(os.dup(fd), "rb") as fh:
                    table = pa.ipc.open_file(fh).read_all()
            except (OSError, pa.ArrowInvalid) as exc:
                problems.append(f"{file}: not a readable Arrow IPC file: {exc}")
                continue
            names = [f.name for f in table.schema]
            if names != [n for n, _ in SCHEMA_FIELDS]:
                problems.append(f"{file}: columns {names}, expected {[n for n, _ in SCHEMA_FIELDS]}")
                continue
            if table.num_rows != shard.rows:
                problems.append(f"{file}: {table.num_rows} rows, manifest says {shard.rows}")
                continue
            ids = table.column("id").to_numpy()
            if not np.array_equal(ids, np.arange(shard.first_id, shard.first_id + shard.rows)):
                problems.append(f"{file}: ids are not the consecutive range starting at {shard.first_id}")
            labels = table.column("label").to_numpy()
            bad = np.flatnonzero((labels < 0) | (labels >= manifest.num_classes))
            if bad.size:
                r = int(bad[0])
                problems.append(f"{file}: row {r} (id {shard.first_id + r}) has label {int(labels[r])}, outside "
                                f"[0, {manifest.num_classes}) ({bad.size} such rows)")
                continue
            counts += np.bincount(labels, minlength=manifest.num_classes)
            after = os.fstat(fd)
            if digest == shard.sha256 and (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
                clean[shard.file] = {"sha256": digest, **stat_doc(after)}
        finally:
            os.close(fd)
    if not problems and counts.tolist() != list(manifest.class_counts):
        problems.append(f"{path}: class counts {counts.tolist()} differ from manifest {manifest.class_counts}")
    for col in manifest.columns:
        problems.extend(_verify_column(path, col, manifest.num_samples))
    if record:
        write_record(path, manifest_sha, clean, problems, by)
    return problems


def _verify_column(path: Path, col, num_samples: int) -> list[str]:
    """An optional column's file (manifest v2): sha256, Arrow readability, type, rows, values."""
    file = path / col.file
    try:
        with open(file, "rb") as fh:
            digest = hash_fd(fh.fileno(), os.fstat(fh.fileno()).st_size)
    except OSError as exc:
        return [f"{file} (column {col.name!r}): cannot read: {exc.strerror or exc}"]
    if digest != col.sha256:
        return [f"{file} (column {col.name!r}): sha256 mismatch (file {digest[:16]}…, manifest {col.sha256[:16]}…)"]
    try:
        with pa.memory_map(str(file), "r") as src:
            table = pa.ipc.open_file(src).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        return [f"{file} (column {col.name!r}): not a readable Arrow IPC file: {exc}"]
    if table.num_columns != 1 or table.num_rows != num_samples:
        return [f"{file} (column {col.name!r}): {table.num_columns} fields x {table.num_rows} rows, expected 1 x {num_samples}"]
    values = table.column(0)
    if col.kind == "embedding":
        want = pa.list_(pa.from_numpy_dtype(np.dtype(col.dtype)), col.dim)
        if values.type != want:
            return [f"{file} (column {col.name!r}): type {values.type}, manifest says {want}"]
        if values.null_count:
            return [f"{file} (column {col.name!r}): {values.null_count} missing rows"]
        for chunk in values.chunks:
            if not np.isfinite(chunk.flatten().to_numpy(zero_copy_only=False)).all():
                return [f"{file} (column {col.name!r}): holds NaN or inf"]
    else:
        if values.type != pa.string() or values.null_count:
            return [f"{file} (column {col.name!r}): type {values.type} with {values.null_count} nulls, expected string without nulls"]
        longest = max((int(pa.compute.max(pa.compute.binary_length(c)).as_py() or 0) for c in values.chunks), default=0)
        if longest > col.max_bytes:
            return [f"{file} (column {col.name!r}): a caption of {longest} bytes, over max_bytes={col.max_bytes}"]
    return []
