"""Embedding columns computed next to the data: a job per (data set, column), resumable.

``run_embedding(store, dataset, column, model, opts, job_dir)`` embeds every row of ``store``
with ``model`` (``host.embedding``: the image tower over the samples, or the text tower over
the data set's ``text`` column) in chunks of ``opts.chunk_rows`` rows and writes the column at
the end with ``storage_service.columns.write_embedding_chunks`` (atomic: a reader sees the old
column or the new one, never a half-written one).

Finished chunks are kept in a hidden job folder under the store root's state folder,
``<root>/.nessa/embed/<dataset>/<column>/`` (``.nessa`` is skipped by the leftovers sweep and
owned by its writers; this module removes the folder once the column is written, and removes
``*.tmp<pid>`` files of killed chunk writes when a job starts). Each chunk is written under a
temporary name, fsynced and renamed, so a killed job leaves whole chunks only; a job started
again with the same identity resumes after the last contiguous finished chunk
(``resumed_from``). A job folder made with another identity is discarded.

Job folder format (``job.json``, format ``nessa-embed-job`` version 1)::

    format, format_version   "nessa-embed-job", 1
    dataset, column, tower   what is embedded, into which column, with which tower
    manifest_sha256          the data set's manifest hash (its rows); model_sha256 the model's
    chunk_rows, rows_total   rows per chunk file, rows in the data set
    chunks: chunk-<k:06d>.npy (float32 (rows, dim), rows [k*chunk_rows, ...))

``EmbedJobs`` runs jobs on a worker pool for the service (``Embed`` / ``GetEmbedding``): one
job per (data set, column), at most ``max_jobs`` running (``EmbedBusy`` beyond).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Callable

import numpy as np

from storage_service._durable import fsync_dir

__all__ = ["FORMAT", "FORMAT_VERSION", "Tower", "EmbedError", "EmbedBusy", "EmbedExists", "EmbedOptions", "EmbedStatus",
           "EmbedJobs", "DEFAULT_MAX_JOBS", "check_options", "job_dir", "run_embedding", "DEFAULT_BATCH", "DEFAULT_CHUNK_ROWS", "source_tag"]

FORMAT = "nessa-embed-job"
FORMAT_VERSION = 1
DEFAULT_BATCH = 256
DEFAULT_CHUNK_ROWS = 8192
_DTYPES = ("float16", "float32")
_COLUMN = re.compile(r"emb/[A-Za-z0-9_][A-Za-z0-9._-]{0,62}")


class Tower(str, Enum):
    IMAGE = "image"
    TEXT = "text"


class EmbedError(ValueError):
    """A bad option (the message names it); the service answers INVALID_ARGUMENT."""


class EmbedExists(EmbedError):
    """The column exists and overwrite was not asked (ALREADY_EXISTS)."""


class EmbedBusy(RuntimeError):
    """Too many embedding jobs running (RESOURCE_EXHAUSTED)."""


@dataclass(frozen=True)
class EmbedOptions:
    column: str
    tower: Tower = Tower.IMAGE
    batch_size: int = DEFAULT_BATCH
    dtype: str = "float16"
    overwrite: bool = False
    chunk_rows: int = DEFAULT_CHUNK_ROWS


def check_options(column: str, tower: str = "", batch_size: int = 0, dtype: str = "", overwrite: bool = False, *,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS) -> EmbedOptions:
    """Checked options (EmbedError naming the field); empty/0 fields take their defaults."""
    if not isinstance(column, str) or not _COLUMN.fullmatch(column):
        raise EmbedError(f"column: {str(column)[:80]!r} is not an embedding column name; it must start with 'emb/' "
                         "followed by letters, digits, '.', '_' or '-' (e.g. emb/proxy)")
    try:
        tw = Tower(tower or "image")
    except ValueError:
        raise EmbedError(f"tower: must be 'image' or 'text', got {tower!r}") from None
    bs = int(batch_size) or DEFAULT_BATCH
    if bs < 1 or bs > 65536:
        raise EmbedError(f"batch_size: must be in [1, 65536], got {batch_size}")
    dt = dtype or "float16"
    if dt not in _DTYPES:
        raise EmbedError(f"dtype: must be float16 or float32, got {dtype!r}")
    if int(chunk_rows) < 1:
        raise EmbedError(f"chunk_rows: must be >= 1, got {chunk_rows}")
    return EmbedOptions(column, tw, bs, dt, bool(overwrite), int(chunk_rows))


def source_tag(arch: str, sha256: str) -> str:
    """The column's ``source``: which model made it."""
    return f"embed:{arch}@{sha256[:12]}"


def job_dir(root: str | os.PathLike, dataset: str, column: str) -> Path:
    """The hidden job folder of (``dataset``, ``column``) under the store root ``root``."""
    return Path(root) / ".nessa" / "embed" / dataset / column.replace("/", "~")


@dataclass
class EmbedStatus:
    dataset: str
    column: str
    model_version: int = 0
    tower: str = "image"
    state: str = "running"  # running | done | failed | stopped
    rows_done: int = 0
    rows_total: int = 0
    dim: int = 0
    seconds: float = 0.0
    error: str = ""
    resumed_from: int = 0


def _atomic_save(path: Path, write: Callable[[object], None]) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _identity(store, dataset: str, opts: EmbedOptions, model_sha: str) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "dataset": dataset, "column": opts.column,
            "tower": opts.tower.value, "manifest_sha256": store.manifest_sha256, "model_sha256": model_sha,
            "chunk_rows": opts.chunk_rows, "rows_total": len(store)}


def _finished_chunks(folder: Path, ident: dict) -> int:
    """Contiguous finished chunks in ``folder`` for ``ident``; a folder of another identity is
    emptied (its chunks belong to other rows or another model)."""
    from storage_service.models_registry import remove_temp_files

    if not folder.is_dir():
        return 0
    remove_temp_files(folder)
    try:
        have = json.loads((folder / "job.json").read_text())
    except (OSError, ValueError):
        have = None
    if have != ident:
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    k = 0
    while (folder / f"chunk-{k:06d}.npy").is_file():
        k += 1
    return k


def _check_text_column(store, dataset: str) -> None:
    cols = getattr(store, "columns", {}) or {}
    if "text" not in cols:
        raise EmbedError(f"tower: 'text' needs the data set's text column; {dataset!r} has none (ingest captions first)")


def run_embedding(store, dataset: str, model, opts: EmbedOptions, folder: Path, *, source: str = "", model_sha: str = "",
                  status: EmbedStatus | None = None, lock: threading.Lock | None = None):
    """Embed every row of ``store`` into column ``opts.column`` (resuming from ``folder``);
    returns the written ``ColumnInfo``. ``status`` (if given) is updated as chunks finish."""
    from host.embedding import embed_images, embed_texts
    from storage_service.columns import write_embedding_chunks

    lock = lock or threading.Lock()
    status = status or EmbedStatus(dataset, opts.column, tower=opts.tower.value)
    n = len(store)
    ident = _identity(store, dataset, opts, model_sha)
    done = _finished_chunks(folder, ident)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_save(folder / "job.json", lambda f: f.write(json.dumps(ident, indent=1).encode()))
    with lock:
        status.rows_total = n
        status.resumed_from = status.rows_done = min(n, done * opts.chunk_rows)
    t0 = time.monotonic()
    nchunks = -(-n // opts.chunk_rows)
    for k in range(done, nchunks):
        lo, hi = k * opts.chunk_rows, min(n, (k + 1) * opts.chunk_rows)
        ids = np.arange(lo, hi, dtype=np.int64)
        if opts.tower is Tower.TEXT:
            out = embed_texts(model, store.texts(ids), batch_size=opts.batch_size)
        else:
            x, _ = store.take(ids)
            out = embed_images(model, x, tuple(store.manifest.sample_shape), batch_size=opts.batch_size)
        if not np.isfinite(out).all():
            raise EmbedError(f"model: embeddings of rows [{lo}, {hi}) are not finite (NaN/inf); nothing was written")
        _atomic_save(folder / f"chunk-{k:06d}.npy", lambda f, out=out: np.save(f, out))
        with lock:
            status.rows_done, status.dim = hi, int(out.shape[1])
            status.seconds += time.monotonic() - t0
        t0 = time.monotonic()
    # The chunk files stream into the column one slice at a time (memory-mapped): a column of
    # any size is written in the memory of one chunk, not of the whole column.
    info = write_embedding_chunks(store.path, opts.column,
                                  lambda _n: (np.load(folder / f"chunk-{k:06d}.npy", mmap_mode="r") for k in range(nchunks)),
                                  dtype=opts.dtype, source=source, overwrite=opts.overwrite)
    shutil.rmtree(folder, ignore_errors=True)  # the column is written; the chunks are spent
    with lock:
        status.dim, status.state = int(info.dim), "done"
    return info


#: Embedding jobs running at once per server (`nessa serve --max-embed-jobs`).
DEFAULT_MAX_JOBS = 4


class EmbedJobs:
    """Embedding jobs of one store root on a worker pool: one per (data set, column)."""

    def __init__(self, root: str | os.PathLike, *, workers: int = 1, max_jobs: int = DEFAULT_MAX_JOBS,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS):
        self.root = Path(root)
        self.max_jobs = int(max_jobs)
        self.chunk_rows = int(chunk_rows)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nessa-embed")
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], EmbedStatus] = {}

    def start(self, store, dataset: str, opts: EmbedOptions, model_version: int, model_sha: str, source: str,
              load_model: Callable[[], object]) -> EmbedStatus:
        """Start (or find running) the job for (``dataset``, ``opts.column``); returns at once.
        Raises EmbedExists, EmbedError (text tower without a text column) or EmbedBusy."""
        opts = replace(opts, chunk_rows=self.chunk_rows)
        cols = getattr(store, "columns", {}) or {}
        if opts.tower is Tower.TEXT:
            _check_text_column(store, dataset)
        key = (dataset, opts.column)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state == "running":
                return replace(job)
            if opts.column in cols and not opts.overwrite:
                raise EmbedExists(f"column: {opts.column!r} already exists in data set {dataset!r}; pass overwrite to replace it")
            running = sum(j.state == "running" for j in self._jobs.values())
            if running >= self.max_jobs:
                raise EmbedBusy(f"{running} embedding jobs are running (at most {self.max_jobs}); try again later")
            job = EmbedStatus(dataset, opts.column, int(model_version), opts.tower.value, "running", rows_total=len(store))
            self._jobs[key] = job
        self._pool.submit(self._run, job, store, dataset, opts, model_sha, source, load_model)
        return replace(job)

    def _run(self, job, store, dataset, opts, model_sha, source, load_model) -> None:
        try:
            model = load_model()
            run_embedding(store, dataset, model, opts, job_dir(self.root, dataset, opts.column), source=source,
                          model_sha=model_sha, status=job, lock=self._lock)
        except BaseException as exc:  # noqa: BLE001 - reported through GetEmbedding
            with self._lock:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def status(self, store, dataset: str, column: str) -> EmbedStatus:
        """This process's job, else what the disk says (done: the column exists; stopped: a job
        folder holds finished chunks). KeyError if neither."""
        with self._lock:
            job = self._jobs.get((dataset, column))
            if job is not None:
                return replace(job)
        cols = getattr(store, "columns", {}) or {}
        if column in cols:
            info = cols[column]
            return EmbedStatus(dataset, column, state="done", rows_done=len(store), rows_total=len(store),
                               dim=int(getattr(info, "dim", 0)))
        folder = job_dir(self.root, dataset, column)
        try:
            have = json.loads((folder / "job.json").read_text())
        except (OSError, ValueError):
            raise KeyError(column) from None
        k = 0
        while (folder / f"chunk-{k:06d}.npy").is_file():
            k += 1
        rows = min(len(store), k * int(have.get("chunk_rows", 0)))
        return EmbedStatus(dataset, column, tower=str(have.get("tower", "image")), state="stopped", rows_done=rows,
                           rows_total=len(store))

    def wait(self, dataset: str, column: str, timeout: float = 60.0) -> EmbedStatus:
        """Block until the job is no longer running (for tests and the in-process CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                job = self._jobs.get((dataset, column))
                if job is None or job.state != "running":
                    return replace(job) if job else None
            time.sleep(0.02)
        raise TimeoutError(f"embedding {dataset}:{column} still running after {timeout} s")

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
