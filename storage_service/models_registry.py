"""Models pushed by trainers: checked, kept on disk, and loaded for model-based selection.

What makes a model file acceptable (safetensors only, never pickle; a known architecture; the
model's exact tensor names, shapes and plain dtypes for the data sets it fits; finite values)
is ``storage_service/_model_checks.py``; this module receives pushes, enforces the size cap,
keeps the files and their records, retires old versions and finds the model to select with.

A push is streamed to a temp file in the models folder while its sha256 is computed, then
checked from that file (header by safetensors, values tensor by tensor in bounded slices), so
the server holds about one chunk of a model in memory, never the model (``bench/push_memory.py``).
At most ``max_pushes`` run at once (RESOURCE_EXHAUSTED beyond). A full disk (ENOSPC, EDQUOT)
is RESOURCE_EXHAUSTED and leaves no file behind.

On-disk format (``<store root>/.nessa/models/``, version ``MODEL_FORMAT_VERSION``):

    v<version>.safetensors    the blob exactly as pushed
    v<version>.json           {"format_version": 1, "arch", "version", "size", "sha256",
                               "datasets": [names it fits]}   (written last, atomically)

Pushing a version that exists replaces it (the selection ids of a model include its sha256,
so old selections stay consistent); pushing identical bytes again is a no-op (safe retries).
Every read of a model file checks its bytes against the recorded sha256 (DATA_LOSS naming the
version when they differ). Retention (``keep``, 0 = keep all): after a push only the ``keep``
highest versions stay, plus any version ``in_use()`` names (the models of queued and running
selections). Temp files of a push or write killed half-way are removed when the registry opens.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from storage_service._durable import fsync_dir
from storage_service._errors import (DataLoss, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, is_disk_full,
                                     shown)
# check_state is re-exported: it was public here before the checks had their own module.
from storage_service._model_checks import (SLICE_BYTES, check_header, check_state, check_values, known_arch, parse_blob,
                                           read_header)

__all__ = [
    "ModelRecord",
    "ModelRegistry",
    "MODEL_FORMAT_VERSION",
    "DEFAULT_MAX_MODEL_BYTES",
    "DEFAULT_MAX_PUSHES",
    "DEFAULT_KEEP_MODELS",
    "check_state",
    "remove_temp_files",
]

MODEL_FORMAT_VERSION = 1
DEFAULT_MAX_MODEL_BYTES = 256 << 20
#: Pushes received at once (each holds a temp file and an RPC thread).
DEFAULT_MAX_PUSHES = 2
#: Model versions ``nessa serve`` keeps (the registry itself keeps all unless told).
DEFAULT_KEEP_MODELS = 4
#: Temp names of interrupted writes: ours (``.push-*.tmp``, ``*.tmp<pid>.<tid>``) and
#: selection_file's (``.<name>.tmp<pid>``).
_TEMP_PATTERNS = ("*.tmp", "*.tmp[0-9]*", ".push-*")


@dataclass(frozen=True)
class ModelRecord:
    arch: str
    version: int
    size: int
    sha256: str
    datasets: list[str] = field(default_factory=list)


def remove_temp_files(directory: str | os.PathLike) -> list[str]:
    """Delete leftovers of writes killed half-way (temp names only) in ``directory``; returns their names."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and any(fnmatch.fnmatchcase(entry.name, p) for p in _TEMP_PATTERNS):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except FileNotFoundError:
                pass
    return removed


class ModelRegistry:
    """Thread-safe set of pushed models, persisted under ``directory``.

    ``datasets()`` returns ``{name: (sample_shape, num_classes)}`` of the data sets models may be
    checked against; ``load_state(version)`` returns the tensors for selection. ``keep`` (0: all)
    and ``in_use`` (versions retention must not remove) can be set later with ``set_limits``.
    """

    def __init__(self, directory: str | os.PathLike, datasets: Callable[[], dict], *, max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
                 max_pushes: int = DEFAULT_MAX_PUSHES, keep: int = 0, in_use: Callable[[], Iterable[int]] | None = None):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._datasets = datasets
        self._lock = threading.Lock()
        self._records: dict[int, ModelRecord] = {}
        # version -> (size, mtime_ns, inode) of the file last hashed and found intact.
        self._verified: dict[int, tuple[int, int, int]] = {}
        self.keep = 0
        self._in_use: Callable[[], Iterable[int]] = lambda: ()
        self.set_limits(keep=keep, in_use=in_use, max_pushes=max_pushes)
        self.removed_temp_files = remove_temp_files(self.directory)
        self._load_existing()
        self._retire(0)

    def set_limits(self, *, keep: int | None = None, in_use: Callable[[], Iterable[int]] | None = None,
                   max_pushes: int | None = None) -> None:
        """Keep the ``keep`` highest versions (0: all) and any version ``in_use()`` names; receive
        at most ``max_pushes`` pushes at once. None leaves a setting as it is. Call before serving."""
        if keep is not None:
            if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
                raise ValueError(f"keep (models kept) must be an integer >= 0 (0: all), got {keep!r}")
            self.keep = keep
        if in_use is not None:
            self._in_use = in_use
        if max_pushes is not None:
            if isinstance(max_pushes, bool) or not isinstance(max_pushes, int) or max_pushes < 1:
                raise ValueError(f"max_pushes must be an integer >= 1, got {max_pushes!r}")
            self.max_pushes = max_pushes
            self._pushes = threading.BoundedSemaphore(max_pushes)
        if hasattr(self, "_records"):  # what an earlier server left beyond the bound goes now
            self._retire(0)

    def _load_existing(self) -> None:
        if not self.directory.is_dir():
            return
        for meta in sorted(self.directory.glob("v*.json")):
            try:
                doc = json.loads(meta.read_text())
                if doc.get("format_version") != MODEL_FORMAT_VERSION:
                    continue  # a newer server's file: leave it alone
                rec = ModelRecord(doc["arch"], int(doc["version"]), int(doc["size"]), doc["sha256"], list(doc["datasets"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a half-written or foreign file is not a model
            if (self.directory / f"v{rec.version}.safetensors").is_file():
                self._records[rec.version] = rec

    def _path(self, version: int) -> Path:
        return self.directory / f"v{int(version)}.safetensors"

    # -- push ------------------------------------------------------------------------------
    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise ResourceExhausted(f"model of {size} bytes exceeds the server's cap of {self.max_bytes} bytes")

    def push(self, arch: str, version: int, blob: bytes, *, sha256: str = "", dataset: str = "") -> ModelRecord:
        """Check and store a model given whole; see ``push_chunks``."""
        return self.push_chunks(arch, version, (blob,), size=len(blob), sha256=sha256, dataset=dataset)

    def push_chunks(self, arch: str, version: int, chunks: Iterable[bytes], *, size: int = 0, sha256: str = "",
                    dataset: str = "") -> ModelRecord:
        """Receive a model chunk by chunk into a temp file, check it and store it; returns its record.

        ``size`` (0: unknown) and ``sha256`` ("" : unchecked) are what the sender announced.
        Raises InvalidArgument / NotFound / ResourceExhausted (size cap, ``max_pushes`` pushes
        already in progress, disk full); nothing is stored unless every check passes.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version <= 0:
            raise InvalidArgument(f"model version must be an integer > 0, got {version!r}")
        known_arch(arch)
        self.check_size(size)
        if not self._pushes.acquire(blocking=False):
            raise ResourceExhausted(f"{self.max_pushes} model push(es) already in progress (the server's cap, "
                                    "--max-pushes); retry shortly")
        try:
            return self._push(arch, version, chunks, int(size), sha256.lower(), dataset)
        finally:
            self._pushes.release()

    def _push(self, arch: str, version: int, chunks: Iterable[bytes], size: int, sha256: str, dataset: str) -> ModelRecord:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._disk_error(exc, version) from None
        tmp = self.directory / f".push-{uuid.uuid4().hex}.tmp"
        try:
            digest, received = self._receive(tmp, chunks, size, version)
            if size and received != size:
                raise InvalidArgument(f"model header says {size} bytes, {received} arrived")
            if sha256 and sha256 != digest:
                raise InvalidArgument(f"model checksum mismatch: header says {shown(sha256)}, bytes hash to {digest}")
            with self._lock:
                old = self._records.get(version)
            if old is not None and old.sha256 == digest and old.arch == arch and (not dataset or dataset in old.datasets):
                try:
                    self.verify(version)
                    return old
                except DataLoss:
                    pass  # the stored copy went bad: these bytes replace it
            header, data_start = read_header(tmp)
            fits = self._fits(arch, header, dataset)
            check_values(tmp, header, data_start)
            rec = ModelRecord(arch, int(version), received, digest, fits)
            doc = json.dumps({"format_version": MODEL_FORMAT_VERSION, **asdict(rec)}).encode()
            with self._lock:
                try:
                    os.replace(tmp, self._path(version))
                    _atomic_write(self.directory / f"v{version}.json", doc)
                    fsync_dir(self.directory)
                except OSError as exc:
                    raise self._disk_error(exc, version) from None
                self._records[rec.version] = rec
                self._verified.pop(rec.version, None)
            self._retire(rec.version)
            return rec
        finally:
            tmp.unlink(missing_ok=True)

    def _receive(self, tmp: Path, chunks: Iterable[bytes], size: int, version: int) -> tuple[str, int]:
        h = hashlib.sha256()
        received = 0
        try:
            with open(tmp, "wb") as f:
                for data in chunks:
                    received += len(data)
                    self.check_size(received)
                    if size and received > size:
                        raise InvalidArgument(f"model header says {size} bytes, more arrived")
                    h.update(data)
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise self._disk_error(exc, version) from None
        return h.hexdigest(), received

    @staticmethod
    def _disk_error(exc: OSError, version: int) -> Exception:
        if is_disk_full(exc):
            return ResourceExhausted(f"no room to store model v{version} on the server ({exc.strerror}); nothing was stored")
        return exc

    def _fits(self, arch: str, header: dict, dataset: str) -> list[str]:
        known = self._datasets()
        if dataset:
            if dataset not in known:
                raise NotFound(f"data set {shown(dataset)} not found")
            shape, classes = known[dataset]
            check_header(arch, header, shape, classes)
            return [dataset]
        fits, reasons = [], []
        for name, (shape, classes) in sorted(known.items()):
            try:
                check_header(arch, header, shape, classes)
                fits.append(name)
            except InvalidArgument as exc:
                reasons.append(f"{name}: {exc}")
        if not fits:
            raise InvalidArgument("model fits no data set: " + ("; ".join(reasons[:3]) or "the store has none"))
        return fits

    def _retire(self, pushed: int) -> None:
        """Remove versions beyond the ``keep`` highest, never ``pushed`` (0: none) nor one in use."""
        if not self.keep:
            return
        in_use = {int(v) for v in self._in_use()}
        with self._lock:
            old = sorted(self._records, reverse=True)[self.keep :]
            for version in old:
                if version == pushed or version in in_use:
                    continue
                del self._records[version]
                self._verified.pop(version, None)
                # The record file first: a crash in between leaves a blob no record names (ignored).
                for path in (self.directory / f"v{version}.json", self._path(version)):
                    path.unlink(missing_ok=True)

    # -- lookup ----------------------------------------------------------------------------
    def get(self, version: int) -> ModelRecord:
        with self._lock:
            rec = self._records.get(int(version))
        if rec is None:
            raise NotFound(f"model version {version} not found")
        return rec

    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._records)

    def resolve(self, dataset: str, version: int = 0) -> ModelRecord:
        """The model to select ``dataset`` with: ``version``, or the newest that fits it; its file
        checked against its sha256 (DATA_LOSS). An unknown version is FAILED_PRECONDITION."""
        with self._lock:
            records = dict(self._records)
        if not records:
            raise FailedPrecondition("this strategy needs a model: push one with PushModel first")
        if version:
            rec = records.get(int(version))
            if rec is None:
                held = sorted(records)
                raise FailedPrecondition(f"model version {version} is not on the server (never pushed, or retired); "
                                         f"it holds versions {held[-8:]}")
            if dataset not in rec.datasets:
                raise FailedPrecondition(f"model version {version} does not fit data set {shown(dataset)} (fits {rec.datasets})")
        else:
            fitting = [r for r in records.values() if dataset in r.datasets]
            if not fitting:
                raise FailedPrecondition(f"no pushed model fits data set {shown(dataset)}; push one with dataset={shown(dataset)}")
            rec = max(fitting, key=lambda r: r.version)
        self.verify(rec.version)
        return rec

    def verify(self, version: int) -> None:
        """DATA_LOSS unless model ``version``'s file hashes to its recorded sha256 (re-hashed only
        when the file's size, mtime or inode changed since the last check)."""
        rec = self.get(version)
        path = self._path(rec.version)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataLoss(f"model v{rec.version}: its file {path.name} is missing; push the model again") from None
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            if self._verified.get(rec.version) == key:
                return
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while data := f.read(SLICE_BYTES):
                h.update(data)
        self._check_digest(rec, h.hexdigest())
        with self._lock:
            self._verified[rec.version] = key

    @staticmethod
    def _check_digest(rec: ModelRecord, digest: str) -> None:
        if digest != rec.sha256:
            raise DataLoss(f"model v{rec.version}: its file hashes to sha256 {digest[:16]}..., its record says "
                           f"{rec.sha256[:16]}... (changed on disk); push the model again")

    def load_state(self, version: int) -> dict:
        """The tensors of model ``version``, from bytes checked against its sha256 (DATA_LOSS)."""
        rec = self.get(version)
        try:
            blob = self._path(rec.version).read_bytes()
        except FileNotFoundError:
            raise DataLoss(f"model v{rec.version}: its file is missing; push the model again") from None
        self._check_digest(rec, hashlib.sha256(blob).hexdigest())
        return parse_blob(blob)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
