"""What ``StorageClient`` returns and raises, and the conversions from the wire messages.

Kept apart from ``client.py`` (the calls themselves); ``storage_service.client`` re-exports the
public names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import grpc
import numpy as np

from host.backends import Backend
from host.strategies import parse_strategy
from storage_service._names import BACKEND_TO_PB, PB_TO_BACKEND, PB_TO_STRATEGY, STRATEGY_TO_PB, backend_names
from storage_service._proto import nessa_pb2 as pb
from storage_service._wire import decode_sample_batch

__all__ = ["StorageError", "SelectionFailed", "DatasetInfo", "ColumnInfo", "EmbeddingInfo", "EmbedFailed", "ModelInfo",
           "SelectionInfo", "SampleBatch"]

_STATES = {pb.SELECTION_STATE_RUNNING: "running", pb.SELECTION_STATE_DONE: "done", pb.SELECTION_STATE_FAILED: "failed"}


class StorageError(Exception):
    """A call failed: ``code`` is the ``grpc.StatusCode``, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class SelectionFailed(StorageError):
    """The server could not compute a selection (``info`` holds its SelectionInfo)."""

    def __init__(self, info: "SelectionInfo"):
        super().__init__(grpc.StatusCode.ABORTED, f"selection {info.id} failed: {info.error}")
        self.info = info


class EmbedFailed(StorageError):
    """An embedding job ended FAILED (``.info``: its EmbeddingInfo)."""

    def __init__(self, info: "EmbeddingInfo"):
        super().__init__(grpc.StatusCode.ABORTED, f"embedding {info.dataset}:{info.column} failed: {info.error}")
        self.info = info


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_samples: int
    num_classes: int
    class_names: list[str]
    class_counts: list[int]
    sample_shape: tuple[int, ...]
    dtype: str
    format_version: int = 0
    columns: list["ColumnInfo"] = field(default_factory=list)  # optional columns (text, emb/...), by name


@dataclass(frozen=True)
class ColumnInfo:
    """An optional store column: ``kind`` "text" or "embedding"."""

    name: str
    kind: str
    dtype: str = ""
    dim: int = 0
    max_bytes: int = 0
    source: str = ""


@dataclass(frozen=True)
class EmbeddingInfo:
    """An embedding job's options, state and progress (``state``: running, done, failed, stopped)."""

    dataset: str
    column: str
    model_version: int
    tower: str
    state: str
    rows_done: int
    rows_total: int
    dim: int = 0
    seconds: float = 0.0
    error: str = ""
    resumed_from: int = 0


@dataclass(frozen=True)
class ModelInfo:
    arch: str
    version: int
    size: int
    sha256: str
    datasets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SelectionInfo:
    id: str
    dataset: str
    strategy: str
    fraction: float
    num_selected: int
    class_counts: list[int]
    objective: float
    seconds: float
    state: str  # "running" | "done" | "failed"
    seed: int = 0
    model_version: int = 0
    backend: str = ""
    error: str = ""
    batch_size: int = 0  # > 0: an ordered selection of num_batches mini-batches (streamed in order)
    num_batches: int = 0
    num_dropped: int = 0  # examples left out as learned
    num_forwarded: int = 0  # examples the server forwarded through the model for it
    embedding_column: str = ""  # sas / sas-fl / clipcov: the (image) embedding column read
    text_embedding_column: str = ""  # clipcov: the caption embedding column read
    latent_classes: int = 0  # embedding strategies: k-means classes asked for (0: the labels)


@dataclass(frozen=True)
class SampleBatch:
    """One received batch; arrays are read-only views of the message (see module docs)."""

    selection_id: str
    epoch: int
    offset: int
    count: int
    total: int
    ids: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    samples: np.ndarray
    nbytes: int
    #: Extra store columns asked for (``stream_samples(columns=...)``): list[str] for text,
    #: read-only float32 ``[count, dim]`` for embeddings.
    columns: dict = field(default_factory=dict)


def _dataset(m: pb.DatasetInfo) -> DatasetInfo:
    return DatasetInfo(
        name=m.name,
        num_samples=m.num_samples,
        num_classes=m.num_classes,
        class_names=list(m.class_names),
        class_counts=[int(c) for c in m.class_counts],
        sample_shape=tuple(int(d) for d in m.sample_shape),
        dtype=m.dtype,
        format_version=m.format_version,
        columns=[ColumnInfo(c.name, c.kind, c.dtype, int(c.dim), int(c.max_bytes), c.source) for c in m.columns],
    )


_EMBED_STATES = {pb.EMBED_STATE_RUNNING: "running", pb.EMBED_STATE_DONE: "done", pb.EMBED_STATE_FAILED: "failed",
                 pb.EMBED_STATE_STOPPED: "stopped"}


def _embedding(m: pb.EmbeddingInfo) -> EmbeddingInfo:
    return EmbeddingInfo(dataset=m.dataset, column=m.column, model_version=int(m.model_version), tower=m.tower,
                         state=_EMBED_STATES.get(m.state, "unknown"), rows_done=int(m.rows_done),
                         rows_total=int(m.rows_total), dim=int(m.dim), seconds=float(m.seconds), error=m.error,
                         resumed_from=int(m.resumed_from))


def _selection(m: pb.SelectionInfo) -> SelectionInfo:
    return SelectionInfo(
        id=m.id,
        dataset=m.dataset,
        strategy=PB_TO_STRATEGY[m.strategy].value if m.strategy in PB_TO_STRATEGY else str(m.strategy),
        fraction=m.fraction,
        num_selected=m.num_selected,
        class_counts=[int(c) for c in m.class_counts],
        objective=m.objective,
        seconds=m.seconds,
        state=_STATES.get(m.state, "unknown"),
        seed=m.seed,
        model_version=m.model_version,
        backend=PB_TO_BACKEND[m.backend].value if m.backend in PB_TO_BACKEND else "",
        error=m.error,
        batch_size=m.batch_size,
        num_batches=m.num_batches,
        num_dropped=m.num_dropped,
        num_forwarded=m.num_forwarded,
        embedding_column=m.embedding_column,
        text_embedding_column=m.text_embedding_column,
        latent_classes=m.latent_classes,
    )


def _model(m: pb.ModelInfo) -> ModelInfo:
    return ModelInfo(arch=m.arch, version=m.version, size=m.size, sha256=m.sha256, datasets=list(m.datasets))


def _decode_batch(data: bytes) -> SampleBatch:
    d = decode_sample_batch(data)
    b, n = d.batch, d.header.count

    def values(i: int, dtype) -> np.ndarray:
        col = b.column(i)
        return np.frombuffer(col.buffers()[1], dtype=dtype, count=col.offset + len(col))[col.offset :]

    col = b.column(3)
    row_bytes = col.type.byte_width
    raw = np.frombuffer(col.buffers()[1], dtype=np.uint8, count=(col.offset + len(col)) * row_bytes)
    samples = raw[col.offset * row_bytes :].view(d.dtype).reshape((len(col), *d.sample_shape))
    if len(col) != n:
        raise StorageError(grpc.StatusCode.DATA_LOSS, f"batch header says {n} rows, body holds {len(col)}")
    return SampleBatch(
        selection_id=d.header.selection_id,
        epoch=d.header.epoch,
        offset=d.header.offset,
        count=n,
        total=d.header.total,
        ids=values(0, np.int64),
        labels=values(1, np.int32),
        weights=values(2, np.float32),
        samples=samples,
        nbytes=d.nbytes,
        columns=d.columns,
    )


def _select_request(dataset: str, strategy, fraction: float, *, seed: int, model_version: int | None, backend: str,
                    wait: bool, batch_size: int, num_batches: int, pool_size: int, run: str, drop_threshold: float,
                    watch: int, min_keep: float) -> pb.SelectRequest:
    """The SelectRequest for ``StorageClient.select``'s arguments, checked here (ValueError
    naming the argument) so that a bad call never reaches the server."""
    key = parse_strategy(strategy)
    backend = getattr(backend, "value", backend)
    if backend != "" and backend not in backend_names():  # "": the server's default (its --backend)
        raise ValueError(f"backend must be '' or one of {', '.join(backend_names())}, got {backend!r}")
    for name, value in (("batch_size", batch_size), ("num_batches", num_batches), ("pool_size", pool_size), ("watch", watch)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise ValueError(f"{name} must be an integer >= 0 (0: the server's default), got {value!r}")
    if batch_size and pool_size and pool_size < batch_size:
        raise ValueError(f"pool_size ({pool_size}) must be >= batch_size ({batch_size})")
    if not isinstance(run, str):
        raise ValueError(f"run must be a string, got {type(run).__name__}")
    for name, value, high in (("drop_threshold", drop_threshold, math.inf), ("min_keep", min_keep, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= high:
            bound = "finite and >= 0" if high == math.inf else "in [0, 1]"
            raise ValueError(f"{name} must be {bound} (0: the server's default), got {value!r}")
    request = pb.SelectRequest(
        dataset=dataset,
        strategy=STRATEGY_TO_PB[key],
        fraction=float(fraction),
        seed=int(seed),
        model_version=int(model_version or 0),
        backend=BACKEND_TO_PB[Backend(backend)] if backend else pb.BACKEND_UNSPECIFIED,
        no_wait=not wait,
        batch_size=batch_size,
        num_batches=num_batches,
        pool_size=pool_size,
        run=run,
        drop_threshold=float(drop_threshold),
        watch=watch,
        min_keep=float(min_keep),
    )
    return request
