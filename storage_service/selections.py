"""Selections: strategies (a registry keyed by ``Strategy``), a worker pool, and their files.

A selection is content-addressed: its id hashes the data set (name and size), strategy,
fraction, seed, backend and the model's version and sha256, so asking again finds the same
selection (and a retried Select never computes twice). Work runs on a small worker pool, off
the RPC threads; ``wait`` blocks for at most a given time.

On disk: ``<store root>/.nessa/selections/<id>.arrow``, the selection file format of
:mod:`storage_service.selection_file` (the same files ``nessa select`` writes), with ``id`` and
``model_version`` in its summary. Only finished selections are written; a restart forgets
running and failed ones (selecting again recomputes them).
"""

from __future__ import annotations

import hashlib
import json
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
from host.strategies import Strategy
from storage_service._errors import FailedPrecondition, InvalidArgument, NotFound
from storage_service.sampling import random_subset
from storage_service.selection_file import SELECTION_FORMAT_VERSION, read_selection, read_summary, write_selection

__all__ = [
    "Strategy",
    "STRATEGIES",
    "SelectionParams",
    "SelectionRecord",
    "SelectionManager",
    "SELECTION_FORMAT_VERSION",
    "check_fraction",
    "selection_id",
]



@dataclass(frozen=True)
class SelectionParams:
    dataset: str
    strategy: Strategy
    fraction: float
    seed: int
    backend: str
    model_version: int = 0  # 0 when the strategy needs no model
    model_sha256: str = ""


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


#: The record's fields a selection file's summary stores (state and error are not persisted).
_RECORD_FIELDS = tuple(f.name for f in fields(SelectionRecord) if f.name not in ("state", "error"))


@dataclass(frozen=True)
class _Result:
    ids: np.ndarray  # int64
    weights: np.ndarray  # float32, aligned with ids
    objective: float = 0.0


# -- strategies ----------------------------------------------------------------------------
def _full(store, params: SelectionParams, model) -> _Result:
    n = len(store)
    return _Result(np.arange(n, dtype=np.int64), np.ones(n, np.float32))


def _random(store, params: SelectionParams, model) -> _Result:
    ids = random_subset(store.labels, params.fraction, params.seed)
    return _Result(ids, np.ones(len(ids), np.float32))


def _craig(store, params: SelectionParams, model) -> _Result:
    import host

    shape = tuple(store.manifest.sample_shape)
    parts = []
    # Chunks bound memory: one chunk of samples plus the [N, C] features.
    for _, samples, labels in store.iter_batches(65536):
        parts.append(host.gradient_features(model, samples, labels, sample_shape=shape, batch_size=512, backend=params.backend))
    features = np.concatenate(parts) if parts else np.empty((0, store.manifest.num_classes), np.float32)
    sel = host.select(features, store.labels, params.fraction, optimizer="lazy", seed=params.seed, backend=params.backend)
    ids = np.asarray(sel.ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    return _Result(ids[order], np.asarray(sel.weights, dtype=np.float32)[order], float(sel.objective))


#: Strategy -> fn(store, params, model or None) -> _Result.
STRATEGIES: dict[Strategy, Callable] = {Strategy.FULL: _full, Strategy.RANDOM: _random, Strategy.CRAIG: _craig}


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


def selection_id(params: SelectionParams, num_samples: int) -> str:
    doc = {**asdict(params), "strategy": params.strategy.value, "fraction": repr(float(params.fraction)), "n": int(num_samples)}
    return "sel-" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


# -- manager -------------------------------------------------------------------------------
class SelectionManager:
    """Runs, remembers and persists selections under ``directory``."""

    def __init__(self, directory: str | os.PathLike, *, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.directory = Path(directory)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nessa-select")
        self._lock = threading.Lock()
        self._records: dict[str, SelectionRecord] = {}
        self._futures: dict[str, Future] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._load_existing()

    def _path(self, sel_id: str) -> Path:
        return self.directory / f"{sel_id}.arrow"

    def _load_existing(self) -> None:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("sel-*.arrow")):
            try:
                doc = read_summary(path)
                rec = SelectionRecord(state="done", error="", **{k: doc[k] for k in _RECORD_FIELDS})
            except (OSError, KeyError, ValueError, TypeError):
                continue  # a foreign, damaged or other-version file is not a selection of ours
            self._records[rec.id] = rec

    def _save(self, rec: SelectionRecord, result: _Result) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_selection(self._path(rec.id), result.ids, result.weights, {k: getattr(rec, k) for k in _RECORD_FIELDS})

    def get(self, sel_id: str) -> SelectionRecord:
        with self._lock:
            rec = self._records.get(sel_id)
        if rec is None:
            raise NotFound(f"selection {sel_id!r} not found")
        return rec

    def start(self, sel_id: str, params: SelectionParams, store, load_model: Callable[[], object] | None) -> SelectionRecord:
        """The record for ``sel_id``; submits the work unless it is done or running."""
        with self._lock:
            rec = self._records.get(sel_id)
            if rec is not None and rec.state != "failed":
                return rec
            rec = SelectionRecord(sel_id, params.dataset, params.strategy.value, params.fraction, params.seed, params.model_version, params.backend, "running")
            self._records[sel_id] = rec
            self._futures[sel_id] = self._pool.submit(self._run, rec, params, store, load_model)
            return rec

    def _run(self, rec: SelectionRecord, params: SelectionParams, store, load_model) -> None:
        t0 = time.perf_counter()
        try:
            model = load_model() if load_model is not None else None
            result = STRATEGIES[params.strategy](store, params, model)
            counts = np.bincount(store.labels[result.ids], minlength=store.manifest.num_classes)
            done = replace(rec, state="done", num_selected=int(len(result.ids)), class_counts=[int(c) for c in counts], objective=float(result.objective), seconds=time.perf_counter() - t0)
            self._save(done, result)
        except Exception as exc:  # noqa: BLE001 - reported to the client as state FAILED
            done = replace(rec, state="failed", error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
        with self._lock:
            self._records[rec.id] = done
            self._futures.pop(rec.id, None)

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
        """``(ids, weights)`` of a finished selection (read from its file, then cached)."""
        rec = self.get(sel_id)
        if rec.state != "done":
            raise FailedPrecondition(f"selection {sel_id} is {rec.state}, not done" + (f": {rec.error}" if rec.error else ""))
        with self._lock:
            cached = self._arrays.get(sel_id)
        if cached is None:
            ids, weights, _ = read_selection(self._path(sel_id))
            cached = (ids, weights)
            with self._lock:
                if len(self._arrays) > 32:
                    self._arrays.clear()
                self._arrays[sel_id] = cached
        return cached

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
