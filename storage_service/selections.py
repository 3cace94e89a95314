"""Selections: content-addressed ids, a worker pool that runs the strategies (:mod:`._strategies`), and their files.

A selection is content-addressed: its id hashes the data set (name and size), strategy,
fraction, seed, backend, the model's version and sha256, and the mini-batch and drop options
(batch_size, num_batches, pool_size, run, drop_threshold, watch, min_keep, after their defaults
are filled in by ``resolve_options``), so asking again finds the same selection (and a retried
Select never computes twice). Options left at their "unused" value do not enter the hash, so
full / random / craig ids are the same as before those options existed. The id does not hash a
run's loss history: asking again for the same id returns the first result. Work runs on a small
worker pool, off the RPC threads; ``wait`` blocks for at most a given time.

Strategies (``STRATEGIES``; ``fn(store, params, model)``, model-based ones
``fn(store, params, model, history)`` with the run's ``learned.LossHistory`` or None):

* ``full``, ``random``: no model.
* ``craig``: features of the whole data set, per-class lazy greedy (``host.select``).
* ``nessa-ss``: ``craig`` over the candidates left after dropping the run's learned examples.
* ``nessa-pa``, ``crest``: ``num_batches`` pools of ``pool_size`` candidates
  (``host.minibatch.draw_pools``, after dropping learned examples when ``drop_threshold > 0``),
  features for the union of the pools only, one weighted coreset of ``batch_size`` per pool
  (``host.minibatch.minibatch_coresets``); the result is *ordered*, batch after batch.

Every model-based strategy reports the losses of the examples it forwarded into the run's loss
history when ``run`` is set (the rule: :mod:`storage_service.learned`).

On disk: ``<store root>/.nessa/selections/<id>.arrow``, the selection file format of
:mod:`storage_service.selection_file` (the same files ``nessa select`` writes), with ``id`` and
``model_version`` in its summary. Only finished selections are written; a restart forgets
running and failed ones (selecting again recomputes them).

Bounds (``set_limits``; the manager alone keeps everything, ``nessa serve`` sets both): at most
``max_queued`` selections queued or running (a new one beyond is RESOURCE_EXHAUSTED; asking for
one already queued is not), and per data set only the ``keep`` most recently used finished
selections (made, asked for, or streamed) stay on disk and in memory; a running selection is
never removed. Temp files of a write killed half-way are removed when the manager opens.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as _FutureTimeout  # distinct from TimeoutError before 3.11
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from host.budget import check_fraction as _check_fraction
from host.strategies import Strategy, spec
from storage_service._errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, clip, is_disk_full, shown
from storage_service.learned import MAX_WATCH, LossHistories
from storage_service.models_registry import remove_temp_files
from storage_service._strategies import STRATEGIES, SelectionParams, _Result
from storage_service.selection_file import SELECTION_FORMAT_VERSION, read_selection, read_summary, write_selection

__all__ = [
    "Strategy",
    "STRATEGIES",
    "SelectionParams",
    "SelectionRecord",
    "SelectionManager",
    "SELECTION_FORMAT_VERSION",
    "check_fraction",
    "resolve_options",
    "resolve_embedding_options",
    "selection_id",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NUM_BATCHES",
    "DEFAULT_WATCH",
    "DEFAULT_MIN_KEEP",
    "MAX_NUM_BATCHES",
    "DEFAULT_KEEP_SELECTIONS",
    "DEFAULT_MAX_QUEUED",
]

#: What ``nessa serve`` keeps and queues by default (the manager alone: no bounds).
DEFAULT_KEEP_SELECTIONS = 16
DEFAULT_MAX_QUEUED = 16

#: Mini-batch strategies: rows per mini-batch and mini-batches per selection when not given.
DEFAULT_BATCH_SIZE = 128
DEFAULT_NUM_BATCHES = 5
#: CREST's pool: this fraction of the data set (``random_subset_size`` 0.01), >= 2 batches.
CREST_POOL_FRACTION = 0.01
#: Dropping learned examples: observations in the window, and the share never dropped.
DEFAULT_WATCH = 3
DEFAULT_MIN_KEEP = 0.5
#: Upper bounds on a request (memory and time of one selection stay bounded).
MAX_NUM_BATCHES = 1 << 16
MAX_RUN_CHARS = 256


#: SelectionParams' fields that arrived with the mini-batch strategies: left out of the id's
#: hash while at their default, so earlier selections keep their ids.
_NEW_PARAM_DEFAULTS = {f.name: f.default for f in fields(SelectionParams)
                       if f.name in ("batch_size", "num_batches", "pool_size", "run", "drop_threshold", "watch", "min_keep",
                                     "embedding_column", "text_embedding_column", "latent_classes")}


@dataclass(frozen=True)
class SelectionRecord:
    id: str
    dataset: str
    strategy: str
    fraction: float
    seed: int
    model_version: int
    backend: str
    state: str  # "running" | "done" | "failed"
    num_selected: int = 0
    class_counts: list[int] = field(default_factory=list)
    objective: float = 0.0
    seconds: float = 0.0
    error: str = ""
    # Ordered selections (nessa-pa, crest): rows are num_batches mini-batches of batch_size,
    # streamed in file order.
    ordered: bool = False
    batch_size: int = 0
    num_batches: int = 0
    pool_size: int = 0
    run: str = ""
    drop_threshold: float = 0.0
    watch: int = 0
    min_keep: float = 0.0
    num_dropped: int = 0  # examples left out as learned
    num_forwarded: int = 0  # examples forwarded through the model (features computed)
    # Embedding strategies (sas, sas-fl, clipcov): the columns read and the latent classes asked for.
    embedding_column: str = ""
    text_embedding_column: str = ""
    latent_classes: int = 0


#: The record's fields a selection file's summary stores (state and error are not persisted).
_RECORD_FIELDS = tuple(f.name for f in fields(SelectionRecord) if f.name not in ("state", "error"))


def check_fraction(strategy: Strategy, fraction: float) -> float:
    """The fraction to use, or InvalidArgument (full takes 0 or 1; others (0, 1], host.budget's rule)."""
    if strategy is Strategy.FULL:
        if fraction not in (0.0, 1.0):
            raise InvalidArgument(f"strategy 'full' keeps every sample: fraction must be 1 (or unset), got {fraction}")
        return 1.0
    try:
        return _check_fraction(fraction)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def _count(name: str, value, *, most: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgument(f"{name} must be an integer >= 0 (0: the default), got {value!r}")
    if most is not None and value > most:
        raise InvalidArgument(f"{name} must be <= {most}, got {value}")
    return int(value)


def _real(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} must be finite, got {value}")
    return value


def resolve_options(strategy: Strategy, fraction: float, num_samples: int, *, batch_size: int = 0, num_batches: int = 0,
                    pool_size: int = 0, run: str = "", drop_threshold: float = 0.0, watch: int = 0,
                    min_keep: float = 0.0) -> dict:
    """The mini-batch and drop options of a Select, checked (InvalidArgument naming the field)
    and with their defaults filled in; options a strategy does not use come back as 0 / "".

    Mini-batch strategies (nessa-pa, crest): ``batch_size`` 0 -> 128 (at most the data set),
    ``num_batches`` 0 -> 5, ``pool_size`` 0 -> nessa-pa ``round(batch_size / fraction)``, crest
    ``max(round(0.01 * N), 2 * batch_size)``; never below ``batch_size``, at most N. Model-based
    strategies: ``run`` names the loss history; with ``drop_threshold > 0`` (which needs a
    ``run``), ``watch`` 0 -> 3 and ``min_keep`` 0 -> 0.5. nessa-ss needs ``drop_threshold > 0``.
    """
    n = int(num_samples)
    batch_size = _count("batch_size", batch_size)
    num_batches = _count("num_batches", num_batches, most=MAX_NUM_BATCHES)
    pool_size = _count("pool_size", pool_size)
    watch = _count("watch", watch, most=MAX_WATCH)
    if not isinstance(run, str):
        raise InvalidArgument(f"run must be a string, got {type(run).__name__}")
    if len(run) > MAX_RUN_CHARS:
        raise InvalidArgument(f"run must be at most {MAX_RUN_CHARS} characters, got {len(run)}")
    drop_threshold = _real("drop_threshold", drop_threshold)
    if drop_threshold < 0:
        raise InvalidArgument(f"drop_threshold must be >= 0 (0: never drop), got {drop_threshold}")
    min_keep = _real("min_keep", min_keep)
    if not 0.0 <= min_keep <= 1.0:
        raise InvalidArgument(f"min_keep must be in [0, 1] (0: {DEFAULT_MIN_KEEP}), got {min_keep}")
    if batch_size and pool_size and pool_size < batch_size:
        raise InvalidArgument(f"pool_size ({pool_size}) must be >= batch_size ({batch_size}): each pool yields one mini-batch")
    s = spec(strategy)
    if strategy is Strategy.NESSA_SS and not drop_threshold > 0:
        raise InvalidArgument("strategy 'nessa-ss' drops learned examples: it needs drop_threshold > 0")
    if not s.needs_model:  # no features, no losses: nothing to record or drop
        run, drop_threshold, watch, min_keep = "", 0.0, 0, 0.0
    elif drop_threshold > 0:
        if not run:
            raise InvalidArgument("drop_threshold > 0 needs a run: examples are dropped by the loss history of the run "
                                  "(set run to a name shared by the run's selections)")
        watch = watch or DEFAULT_WATCH
        min_keep = min_keep or DEFAULT_MIN_KEEP
    else:
        watch, min_keep = 0, 0.0  # losses are recorded, nothing is dropped
    if not s.minibatch:
        batch_size = num_batches = pool_size = 0
    else:
        batch_size = batch_size or DEFAULT_BATCH_SIZE
        if batch_size > n:
            raise InvalidArgument(f"batch_size {batch_size} is larger than the data set ({n} samples)")
        num_batches = num_batches or DEFAULT_NUM_BATCHES
        if not pool_size:
            if strategy is Strategy.CREST:
                pool_size = max(int(round(CREST_POOL_FRACTION * n)), 2 * batch_size)
            else:
                pool_size = max(int(round(batch_size / fraction)), batch_size)
        elif pool_size < batch_size:
            raise InvalidArgument(f"pool_size ({pool_size}) must be >= batch_size ({batch_size}): each pool yields one mini-batch")
        pool_size = min(pool_size, n)
    return dict(batch_size=batch_size, num_batches=num_batches, pool_size=pool_size, run=run, drop_threshold=drop_threshold,
                watch=watch, min_keep=min_keep)


def resolve_embedding_options(strategy: Strategy, store, *, embedding_column: str = "", text_embedding_column: str = "",
                              latent_classes: int = 0) -> dict:
    """SelectionParams' embedding fields for ``strategy``, checked against ``store`` (InvalidArgument
    naming the field): sas / sas-fl need ``embedding_column``; clipcov also ``text_embedding_column`` of the
    same width; ``latent_classes`` at most the data set's size. Other strategies: all unset."""
    if not spec(strategy).embeddings:
        for name, v in (("embedding_column", embedding_column), ("text_embedding_column", text_embedding_column),
                        ("latent_classes", latent_classes)):
            if v:
                raise InvalidArgument(f"{name} is only for the embedding strategies (sas, sas-fl, clipcov), not {strategy.value!r}")
        return {}
    cols = store.columns
    n = len(store)

    def column(field_name: str, name: str):
        if not name:
            raise InvalidArgument(f"{field_name} is required by strategy {strategy.value!r} (an embedding column such as 'emb/proxy')")
        info = cols.get(name)
        if info is None or info.kind.value != "embedding":
            have = ", ".join(c for c, i in cols.items() if i.kind.value == "embedding") or "none"
            raise InvalidArgument(f"{field_name}: {name!r} is not an embedding column of this data set (embedding columns: {have})")
        return info

    image = column("embedding_column", embedding_column)
    if strategy is Strategy.CLIPCOV:
        text = column("text_embedding_column", text_embedding_column)
        if text.dim != image.dim:
            raise InvalidArgument(f"text_embedding_column {text.name!r} has width {text.dim} but embedding_column "
                                  f"{image.name!r} has width {image.dim}; they must share one space")
    elif text_embedding_column:
        raise InvalidArgument(f"text_embedding_column is only for clipcov, not {strategy.value!r}")
    k = _count("latent_classes", latent_classes)
    if k > n:
        raise InvalidArgument(f"latent_classes ({k}) must be at most the data set's {n} examples")
    return dict(embedding_column=embedding_column, text_embedding_column=text_embedding_column, latent_classes=k)


def selection_id(params: SelectionParams, num_samples: int) -> str:
    doc = {k: v for k, v in asdict(params).items() if k not in _NEW_PARAM_DEFAULTS or v != _NEW_PARAM_DEFAULTS[k]}
    doc.update(strategy=params.strategy.value, fraction=repr(float(params.fraction)), n=int(num_samples))
    for key in ("drop_threshold", "min_keep"):
        if key in doc:
            doc[key] = repr(float(doc[key]))
    return "sel-" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


# -- manager -------------------------------------------------------------------------------
class SelectionManager:
    """Runs, remembers and persists selections under ``directory``."""

    def __init__(self, directory: str | os.PathLike, *, workers: int = 1, keep: int = 0, max_queued: int = 0):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.keep = self.max_queued = 0
        self.set_limits(keep=keep, max_queued=max_queued)
        self.directory = Path(directory)
        self.removed_temp_files = remove_temp_files(self.directory)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nessa-select")
        self._lock = threading.Lock()
        self._records: dict[str, SelectionRecord] = {}
        self._futures: dict[str, Future] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # Last use of each selection (a counter, higher = more recent): retention keeps the
        # most recently used ones of each data set.
        self._used: dict[str, int] = {}
        self._clock = 0
        #: Per-(data set, run) loss histories of the model-based strategies (memory only).
        self.histories = LossHistories()
        self._load_existing()
        self._retire_all()

    def set_limits(self, *, keep: int, max_queued: int) -> None:
        """``keep`` finished selections per data set (0: all); ``max_queued`` queued or running (0: no bound)."""
        for name, value in (("keep", keep), ("max_queued", max_queued)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0 (0: no bound), got {value!r}")
        self.keep, self.max_queued = keep, max_queued
        if hasattr(self, "_records"):
            self._retire_all()

    def _retire_all(self) -> None:
        """Apply retention to every data set (what an earlier server left beyond the bound goes)."""
        with self._lock:
            datasets = {r.dataset for r in self._records.values()}
        for name in sorted(datasets):
            self._retire(name)

    def _touch(self, sel_id: str) -> None:
        """Mark ``sel_id`` used now (call with the lock held)."""
        self._clock += 1
        self._used[sel_id] = self._clock

    def model_versions_in_use(self) -> set[int]:
        """Model versions of the selections queued or running (retention must keep them)."""
        with self._lock:
            return {r.model_version for r in self._records.values() if r.state == "running" and r.model_version}

    def _path(self, sel_id: str) -> Path:
        return self.directory / f"{sel_id}.arrow"

    def _load_existing(self) -> None:
        if not self.directory.is_dir():
            return
        paths = []
        for path in self.directory.glob("sel-*.arrow"):
            try:
                paths.append((path.stat().st_mtime_ns, path))
            except OSError:
                continue
        for _, path in sorted(paths):  # oldest first: the clock orders them by last write
            try:
                doc = read_summary(path)
                # Keys a file lacks (written before they existed) take the record's defaults.
                rec = SelectionRecord(state="done", error="", **{k: doc[k] for k in _RECORD_FIELDS if k in doc})
            except (OSError, KeyError, ValueError, TypeError):
                continue  # a foreign, damaged or other-version file is not a selection of ours
            self._records[rec.id] = rec
            self._touch(rec.id)

    def _save(self, rec: SelectionRecord, result: _Result) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_selection(self._path(rec.id), result.ids, result.weights, {k: getattr(rec, k) for k in _RECORD_FIELDS},
                        ordered=result.ordered, batch_size=result.batch_size)

    def get(self, sel_id: str) -> SelectionRecord:
        with self._lock:
            rec = self._records.get(sel_id)
        if rec is None:
            raise NotFound(f"selection {shown(sel_id)} not found (never made, or retired: the server keeps the "
                           f"{self.keep or 'all'} most recently used per data set)")
        return rec

    def start(self, sel_id: str, params: SelectionParams, store, load_model: Callable[[], object] | None) -> SelectionRecord:
        """The record for ``sel_id``; submits the work unless it is done or running."""
        with self._lock:
            rec = self._records.get(sel_id)
            if rec is not None and rec.state != "failed":
                self._touch(sel_id)
                return rec
            if self.max_queued and len(self._futures) >= self.max_queued:
                raise ResourceExhausted(f"{len(self._futures)} selections are already queued or running (the server's cap, "
                                        "--max-queued-selections); retry when one is done")
            rec = SelectionRecord(sel_id, params.dataset, params.strategy.value, params.fraction, params.seed, params.model_version,
                                  params.backend, "running", ordered=spec(params.strategy).minibatch,
                                  batch_size=params.batch_size, num_batches=params.num_batches, pool_size=params.pool_size,
                                  run=params.run, drop_threshold=params.drop_threshold, watch=params.watch,
                                  min_keep=params.min_keep, embedding_column=params.embedding_column,
                                  text_embedding_column=params.text_embedding_column,
                                  latent_classes=params.latent_classes)
            self._records[sel_id] = rec
            self._touch(sel_id)
            self._futures[sel_id] = self._pool.submit(self._run, rec, params, store, load_model)
            return rec

    def _run(self, rec: SelectionRecord, params: SelectionParams, store, load_model) -> None:
        t0 = time.perf_counter()
        try:
            model = load_model() if load_model is not None else None
            fn = STRATEGIES[params.strategy]
            if spec(params.strategy).needs_model:
                history = self.histories.get(params.dataset, params.run, len(store)) if params.run else None
                result = fn(store, params, model, history)
            else:
                result = fn(store, params, model)
            counts = np.bincount(store.labels[result.ids], minlength=store.manifest.num_classes)
            done = replace(rec, state="done", num_selected=int(len(result.ids)), class_counts=[int(c) for c in counts],
                           objective=float(result.objective), seconds=time.perf_counter() - t0, ordered=result.ordered,
                           batch_size=result.batch_size, num_batches=result.num_batches, num_dropped=result.num_dropped,
                           num_forwarded=result.num_forwarded)
            self._save(done, result)
        except Exception as exc:  # noqa: BLE001 - reported to the client as state FAILED
            error = (f"ResourceExhausted: no room on the server's disk for the selection file ({exc.strerror})"
                     if is_disk_full(exc) else f"{type(exc).__name__}: {exc}")
            done = replace(rec, state="failed", error=clip(error), seconds=time.perf_counter() - t0)
        with self._lock:
            self._records[rec.id] = done
            self._futures.pop(rec.id, None)
            self._touch(rec.id)
        self._retire(rec.dataset)

    def _retire(self, dataset: str) -> None:
        """Forget (and delete the files of) ``dataset``'s finished selections beyond the ``keep``
        most recently used; running ones always stay."""
        if not self.keep:
            return
        with self._lock:
            done = [r.id for r in self._records.values() if r.dataset == dataset and r.state != "running"]
            done.sort(key=lambda i: self._used.get(i, 0), reverse=True)
            gone = done[self.keep :]
            for sel_id in gone:
                del self._records[sel_id]
                self._used.pop(sel_id, None)
                self._arrays.pop(sel_id, None)
        for sel_id in gone:
            self._path(sel_id).unlink(missing_ok=True)

    def wait(self, sel_id: str, timeout: float | None) -> SelectionRecord:
        """The record once done or failed, or still running after ``timeout`` seconds."""
        with self._lock:
            fut = self._futures.get(sel_id)
        if fut is not None:
            try:
                fut.result(timeout=timeout)
            except _FutureTimeout:
                pass
        return self.get(sel_id)

    def arrays(self, sel_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, weights)`` of a finished selection (read from its file, then cached); for an
        ordered selection (``get(id).ordered``) in training order, mini-batch after mini-batch."""
        rec = self.get(sel_id)
        if rec.state != "done":
            raise FailedPrecondition(f"selection {sel_id} is {rec.state}, not done" + (f": {rec.error}" if rec.error else ""))
        with self._lock:
            cached = self._arrays.get(sel_id)
            self._touch(sel_id)
        if cached is None:
            try:
                ids, weights, _ = read_selection(self._path(sel_id))
            except FileNotFoundError:
                raise NotFound(f"selection {shown(sel_id)} was retired (its file is gone); select again") from None
            cached = (ids, weights)
            with self._lock:
                if len(self._arrays) > 32:
                    self._arrays.clear()
                self._arrays[sel_id] = cached
        return cached

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
