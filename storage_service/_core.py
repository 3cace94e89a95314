"""The storage service's behaviour as plain functions (no gRPC here; servicer.py adapts them).

``StorageCore(root)`` owns the data set catalog (``discover(root)``), the model registry and the
selection manager, all persisted under ``root/.nessa/``. Every method raises a
``storage_service._errors.ServiceError`` subclass for a bad request.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from storage_service._errors import DataLoss, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from storage_service._proto import nessa_pb2 as pb
from storage_service._wire import BatchEncoder, ExtraColumn
from storage_service.models_registry import DEFAULT_MAX_MODEL_BYTES, ModelRecord, ModelRegistry
from storage_service.sampling import batch_share, check_share, random_subset, rows_per_batch, share
from host.strategies import Strategy, spec
from storage_service._names import FULL_SELECTION, RANDOM_SELECTION, backend_names
from storage_service.selections import (SelectionManager, SelectionParams, SelectionRecord, check_fraction,
                                        resolve_embedding_options, resolve_options, selection_id)

__all__ = ["StorageCore", "StreamParams", "BACKENDS", "STATE_DIR"]

#: Backends a selection may run on (host.backends' served backends, by name).
BACKENDS = tuple(backend_names())
#: Folder under the store root for the service's own files (hidden: discover() skips it).
STATE_DIR = ".nessa"
#: The literal selection names StreamSamples accepts besides selection ids.
_BUILTIN = {FULL_SELECTION, RANDOM_SELECTION}
#: A store of more untrusted shard bytes than this is checksummed in a background thread when
#: opened (~0.3 s per 256 MiB here); smaller ones before the call that opened them returns.
VERIFY_SYNC_BYTES = 256 << 20
#: Seconds a failed data set answers DATA_LOSS before the next call tries to open it again
#: (at once when its files change: restored, or damaged further).
_RETRY_FAILED_S = 60.0
#: Streams that build a batch at once, both ports together (``stream_in_turn``). Why: building a
#: batch takes the GIL, and with every stream of a busy server contending for it (64 in
#: bench/soak.py) any other call's Python (a PushModel, a selection) waited behind all of them;
#: threads parked on this semaphore do not contend. Two cores' worth of gathers, with room for
#: the copy of one to overlap the Python of another.
BATCH_BUILDERS = 4
_log = logging.getLogger("nessa.service")


def _remove_leftovers(root: Path) -> None:
    from storage_service.leftovers import remove_leftovers

    for path, why in remove_leftovers(root, skip=(STATE_DIR,)):
        _log.info("removed %s (%s)", path, why)


@dataclass(frozen=True)
class StreamParams:
    dataset: str
    selection: str
    fraction: float = 0.0
    epoch: int = 0
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    start_offset: int = 0
    batch_bytes: int = 0
    columns: tuple[str, ...] = ()  # extra store columns to stream (batch version 2)


class StorageCore:
    """Data sets, models and selections under one store root."""

    def __init__(self, root: str | os.PathLike, *, backend: str = "cpu", max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES, select_workers: int = 1):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"store root {str(self.root)!r} is not a directory")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._stores: dict[str, tuple[object, float]] = {}  # name -> (Store, when opened)
        self._builders = threading.BoundedSemaphore(BATCH_BUILDERS)
        self.max_embed_jobs: int | None = None  # None: embed_jobs' default; create_server sets it
        _remove_leftovers(self.root)
        # Streams in flight, so that a graceful stop can let them finish before it closes the
        # sockets (see drain_streams).
        self._streams = threading.Condition()
        self._active_streams = 0
        self._draining = False
        state = self.root / STATE_DIR
        self.models = ModelRegistry(state / "models", self._dataset_shapes, max_bytes=max_model_bytes)
        self.selections = SelectionManager(state / "selections", workers=select_workers)

    # -- data sets -------------------------------------------------------------------------
    def _paths(self) -> dict[str, Path]:
        from storage_service.store import discover

        return discover(self.root)

    def store(self, name: str):
        """The opened store ``name`` (cached; NOT_FOUND if there is none).

        The cache follows the disk: a manifest that is not the one opened (a re-ingest renamed a
        new store into place, or the data set went away) re-opens the data set, and the old
        store's maps close when the last stream reading it ends. Opening checks labels and
        starts the checksum check: at once for small stores, in a thread for large ones
        (``VERIFY_SYNC_BYTES``) (streams answer UNAVAILABLE until it is done). A store that failed
        (a shard changed, shrank or failed its checksum) answers DATA_LOSS; it is tried again
        when its manifest or a shard file changes, else after ``_RETRY_FAILED_S`` seconds.
        """
        from storage_service.manifest import manifest_identity
        from storage_service.store import Store, StoreDataLoss, StoreError

        with self._lock:
            entry = self._stores.get(name)
        if entry is not None:
            st, opened = entry
            same = manifest_identity(st.path) == st.manifest_identity
            if same and st.failed is None:
                return st
            if same and time.monotonic() - opened < _RETRY_FAILED_S and not st.changed_on_disk():
                raise StoreDataLoss(st.failed)
            with self._lock:
                if self._stores.get(name) is entry:
                    del self._stores[name]
            if st.failed is not None:
                st.close()  # nothing can read it any more; free its maps now
            else:
                _log.info("data set %r changed on disk (re-ingested or removed): re-opening it", name)
        if not name or not isinstance(name, str):
            raise InvalidArgument("data set name is empty")
        with self._open_lock:  # one open (and one checksum pass) per data set at a time
            with self._lock:
                entry = self._stores.get(name)
            if entry is not None and entry[0].failed is None:
                return entry[0]
            path = self._paths().get(name)
            if path is None:
                raise NotFound(f"data set {name!r} not found under the store root")
            opened = time.monotonic()
            try:
                st = Store(path)
            except StoreError as exc:
                _log.error("data set %r cannot be opened: %s", name, exc)
                raise FailedPrecondition(f"data set {name!r} cannot be opened: {exc}") from None
            with self._lock:
                self._stores[name] = (st, opened)
            # A checksum mismatch raises StoreDataLoss here; the store stays cached as failed and
            # answers DATA_LOSS until the retry time or a new manifest.
            st.start_verification(sync_bytes=VERIFY_SYNC_BYTES)
        return st

    def dataset_names(self) -> list[str]:
        return sorted(self._paths())

    def _dataset_shapes(self) -> dict[str, tuple[tuple[int, ...], int]]:
        out = {}
        for name in self.dataset_names():
            try:
                m = self.store(name).manifest
            except (NotFound, FailedPrecondition, DataLoss):
                continue
            out[name] = (tuple(m.sample_shape), int(m.num_classes))
        return out

    # -- models ----------------------------------------------------------------------------
    def push_model(self, header: pb.ModelHeader, blob: bytes) -> ModelRecord:
        if header.size and header.size != len(blob):
            raise InvalidArgument(f"model header says {header.size} bytes, {len(blob)} arrived")
        if not header.sha256:
            raise InvalidArgument("model header has no sha256 checksum")
        return self.models.push(header.arch, int(header.version), blob, sha256=header.sha256, dataset=header.dataset)

    # -- selections ------------------------------------------------------------------------
    def select(self, dataset: str, strategy: Strategy, fraction: float, *, seed: int = 0, model_version: int = 0, backend: str = "",
               batch_size: int = 0, num_batches: int = 0, pool_size: int = 0, run: str = "", drop_threshold: float = 0.0,
               watch: int = 0, min_keep: float = 0.0, embedding_column: str = "", text_embedding_column: str = "",
               latent_classes: int = 0) -> SelectionRecord:
        """Start (or find) a selection; returns its record at once (maybe still running).

        The mini-batch and drop options (0 / "": defaults) are checked and completed by
        ``selections.resolve_options``; every bad value is InvalidArgument naming its field.
        """
        if spec(strategy).distilled:
            raise InvalidArgument(f"strategy {strategy.value!r} selects nothing: it trains on the stages of a distillation "
                                  "(Distill / nessa distill), streamed as data sets")
        store = self.store(dataset)
        fraction = check_fraction(strategy, fraction)
        backend = backend or self.backend
        if backend not in BACKENDS:
            raise InvalidArgument(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        options = resolve_options(strategy, fraction, len(store), batch_size=batch_size, num_batches=num_batches,
                                  pool_size=pool_size, run=run, drop_threshold=drop_threshold, watch=watch, min_keep=min_keep)
        options.update(resolve_embedding_options(strategy, store, embedding_column=embedding_column,
                                                 text_embedding_column=text_embedding_column, latent_classes=latent_classes))
        load_model = None
        model_sha = ""
        if spec(strategy).needs_model:
            rec = self.models.resolve(dataset, model_version)
            model_version, model_sha = rec.version, rec.sha256
            load_model = lambda: self._build_model(rec, store)  # noqa: E731
        else:
            model_version = 0
        params = SelectionParams(dataset, strategy, fraction, int(seed), backend, int(model_version), model_sha, **options)
        return self.selections.start(selection_id(params, len(store)), params, store, load_model)

    def _build_model(self, rec: ModelRecord, store):
        from host.curvature import AUX_PREFIX, CURVATURE_TENSOR
        from host.models import build_model

        m = store.manifest
        model = build_model(rec.arch, tuple(m.sample_shape), int(m.num_classes))
        state = self.models.load_state(rec.version)
        aux = {k: state.pop(k) for k in [k for k in state if k.startswith(AUX_PREFIX)]}
        model.load_state_dict(state)
        if CURVATURE_TENSOR in aux:  # AdaCore's preconditioner, pushed with the model
            model.nessa_curvature = aux[CURVATURE_TENSOR].double().numpy()
        return model.eval()

    # -- streaming -------------------------------------------------------------------------
    def _source(self, p: StreamParams, store) -> tuple[np.ndarray, np.ndarray, int]:
        """``(ids, weights, batch_size)``: batch_size > 0 for an ordered selection (rows in
        training order, mini-batches of that size), 0 for a subset to shuffle.

        Refuses (UNAVAILABLE) a data set whose checksums are still being verified, and a
        selection file whose contents fail their checks (DATA_LOSS) or whose ids do not fit the
        data set as it is now (FAILED_PRECONDITION, e.g. after a re-ingest)."""
        from storage_service.selection_file import SelectionFileError

        store.require_verified()
        n = len(store)
        if p.selection == FULL_SELECTION:
            return np.arange(n, dtype=np.int64), np.ones(n, np.float32), 0
        if p.selection == RANDOM_SELECTION:
            fraction = check_fraction(Strategy.RANDOM, p.fraction)
            ids = random_subset(store.labels, fraction, p.seed)
            return ids, np.ones(len(ids), np.float32), 0
        if not p.selection:
            raise InvalidArgument("selection is empty: give 'full', 'random' or a selection id")
        rec = self.selections.get(p.selection)
        if rec.dataset != p.dataset:
            raise InvalidArgument(f"selection {p.selection} belongs to data set {rec.dataset!r}, not {p.dataset!r}")
        try:
            ids, weights = self.selections.arrays(p.selection)
        except SelectionFileError as exc:
            _log.error("selection %s: %s", p.selection, exc)
            raise DataLoss(f"selection {p.selection} cannot be streamed: {exc}") from None
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
            bad = int(ids[(ids < 0) | (ids >= n)][0])
            raise FailedPrecondition(f"selection {p.selection} holds id {bad}, outside data set {p.dataset!r} "
                                     f"(0 .. {n - 1}; re-ingested since the selection?): select again")
        return ids, weights, (rec.batch_size if rec.ordered else 0)

    def stream_in_turn(self, p: StreamParams) -> Iterator[bytes]:
        """``stream(p)``, each batch built while holding one of ``BATCH_BUILDERS`` turns (the
        sending, by gRPC, happens outside it). What both ports serve."""
        batches = self.stream(p)
        try:
            while True:
                with self._builders:
                    wire = next(batches, None)
                if wire is None:
                    return
                yield wire
        finally:
            batches.close()  # a cancelled stream ends its generator now (drain_streams counts it)

    def stream(self, p: StreamParams) -> Iterator[bytes]:
        """SampleBatch wire bytes for the request; checks everything before the first batch."""
        if self._draining:
            raise Unavailable("the server is stopping; retry on a running server")
        store = self.store(p.dataset)
        world = p.world_size or 1
        try:
            check_share(p.rank, world)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        ids, weights, batch = self._source(p, store)
        if batch:  # ordered mini-batches: file order, whole mini-batches per rank (no shuffle)
            ids, weights = batch_share(ids, weights, batch_size=batch, rank=p.rank, world_size=world)
        else:
            ids, weights = share(ids, weights, seed=p.seed, epoch=p.epoch, rank=p.rank, world_size=world)
        total = len(ids)
        if p.start_offset > total:
            raise InvalidArgument(f"start_offset {p.start_offset} is past the end of this rank's share ({total} rows)")
        m = store.manifest
        row_bytes = int(np.prod(m.sample_shape)) * np.dtype(m.dtype).itemsize
        extra = self._extra_columns(store, p)
        encoder = BatchEncoder(row_bytes, m.sample_shape, m.dtype, extra)
        step = rows_per_batch(row_bytes, p.batch_bytes)
        return self._batches(store, encoder, ids, weights, p, total, step)

    @staticmethod
    def _extra_columns(store, p: StreamParams) -> tuple[ExtraColumn, ...]:
        """The request's extra columns, checked against the store's (INVALID_ARGUMENT naming one)."""
        if not p.columns:
            return ()
        have = getattr(store, "columns", None) or {}
        out = []
        for name in p.columns:
            if name in (c.name for c in out):
                raise InvalidArgument(f"columns: {name!r} asked twice")
            info = have.get(name)
            if info is None:
                known = ", ".join(sorted(have)) or "none"
                raise InvalidArgument(f"columns: data set {p.dataset!r} has no column {name[:80]!r} (it has: {known})")
            kind = str(getattr(info.kind, "value", info.kind))
            out.append(ExtraColumn(name, kind, int(info.dim or 0)))
        return tuple(out)

    @staticmethod
    def _column_values(store, extra: tuple[ExtraColumn, ...], chunk: np.ndarray) -> dict | None:
        if not extra:
            return None
        return {c.name: store.texts(chunk) if c.kind == "text" else store.embeddings(c.name, chunk) for c in extra}

    def _batches(self, store, encoder: BatchEncoder, ids, weights, p: StreamParams, total: int, step: int) -> Iterator[bytes]:
        labels = store.labels
        with self._streams:
            self._active_streams += 1
        try:
            for pos in range(int(p.start_offset), total, step):
                chunk = ids[pos : pos + step]
                header = pb.BatchHeader(selection_id=p.selection, epoch=p.epoch, offset=pos, count=len(chunk), total=total)
                yield encoder.encode(header, chunk, labels[chunk], weights[pos : pos + step], functools.partial(store.take_bytes, chunk),
                                     self._column_values(store, encoder.extra, chunk))
        finally:
            with self._streams:
                self._active_streams -= 1
                self._streams.notify_all()

    def drain_streams(self, timeout: float) -> bool:
        """Refuse new streams (UNAVAILABLE) and wait up to ``timeout`` s for those in flight to end.

        Why not leave it to gRPC's own graceful stop: it closes a connection as soon as its last
        call has handed its final message to the transport; if the client's flow-control updates
        are then still unread on the server's socket, the kernel resets the connection and drops
        what the client had not yet received (seen as "Connection reset by peer" a few batches
        before the end). Returns whether any stream was in flight when the drain began.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._streams:
            self._draining = True
            busy = self._active_streams > 0
            while self._active_streams > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._streams.wait(left)
        return busy

    # -- distillation (storage_service/distill_jobs.py) ----------------------------------
    @functools.cached_property
    def distills(self):
        from storage_service.distill_jobs import DistillJobs

        return DistillJobs(self.root)

    def distill(self, dataset: str, out: str, cfg):
        """Start, resume or find the distillation ``out`` of ``dataset`` (a ``DistillConfig``)."""
        from host.distill import DistillError

        store = self.store(dataset)
        try:
            return self.distills.start(store, dataset, out, cfg)
        except DistillError as exc:
            raise InvalidArgument(str(exc)) from None

    def distillation(self, name: str):
        """The ``DistillStatus`` of ``name``; NOT_FOUND when neither a job nor a stage exists."""
        from host.distill import DistillError

        try:
            return self.distills.status(name)
        except DistillError as exc:
            raise InvalidArgument(str(exc)) from None
        except KeyError:
            raise NotFound(f"no distillation {name!r} under the store root") from None

    # -- embedding columns (storage_service/embed_jobs.py) --------------------------------
    @functools.cached_property
    def embeds(self):
        from storage_service.embed_jobs import DEFAULT_MAX_JOBS, EmbedJobs

        return EmbedJobs(self.root, max_jobs=self.max_embed_jobs or DEFAULT_MAX_JOBS)

    def embed(self, dataset: str, column: str, *, model_version: int = 0, tower: str = "", batch_size: int = 0,
              overwrite: bool = False, dtype: str = ""):
        """Start (or find running) the job computing embedding column ``column`` of ``dataset``
        with pushed model ``model_version`` (0: the newest that fits the data set)."""
        from host.embedding import has_tower
        from storage_service._errors import AlreadyExists, ResourceExhausted
        from storage_service.embed_jobs import EmbedBusy, EmbedError, EmbedExists, check_options, source_tag

        try:
            opts = check_options(column, tower, batch_size, dtype, overwrite)
        except EmbedError as exc:
            raise InvalidArgument(str(exc)) from None
        store = self.store(dataset)
        if model_version:
            rec = self.models.get(int(model_version))  # NOT_FOUND when never pushed or retired
            if dataset not in rec.datasets:
                raise FailedPrecondition(f"model_version: model v{rec.version} does not fit data set {dataset!r} "
                                         f"(fits {rec.datasets})")
        else:
            fitting = [self.models.get(v) for v in self.models.versions()]
            fitting = [r for r in fitting if dataset in r.datasets]
            if not fitting:
                raise NotFound(f"model_version: no pushed model fits data set {dataset!r}; push one first")
            rec = max(fitting, key=lambda r: r.version)
        self.models.verify(rec.version)
        model = self._build_model(rec, store)
        if not has_tower(model, opts.tower.value):
            raise InvalidArgument(f"tower: model v{rec.version} ({rec.arch}) has no {opts.tower.value} tower"
                                  + (" (encode_text); only CLIP-style models embed text" if opts.tower.value == "text" else ""))
        try:
            return self.embeds.start(store, dataset, opts, rec.version, rec.sha256, source_tag(rec.arch, rec.sha256),
                                     lambda: model)
        except EmbedExists as exc:
            raise AlreadyExists(str(exc)) from None
        except EmbedError as exc:
            raise InvalidArgument(str(exc)) from None
        except EmbedBusy as exc:
            raise ResourceExhausted(str(exc)) from None

    def embedding(self, dataset: str, column: str):
        """The ``EmbedStatus`` of (``dataset``, ``column``); NOT_FOUND when there is no job, job
        folder or column of that name."""
        store = self.store(dataset)
        try:
            return self.embeds.status(store, dataset, column)
        except KeyError:
            raise NotFound(f"no embedding column or job {column!r} in data set {dataset!r}") from None

    def close(self) -> None:
        self.selections.shutdown(wait=False)
        if "distills" in self.__dict__:
            self.distills.shutdown(wait=False)
        if "embeds" in self.__dict__:
            self.embeds.shutdown(wait=False)
