"""gRPC adapter for ``nessa.v1.Storage``: protobuf in, plain calls on ``StorageCore``, protobuf out.

Status codes: a ``ServiceError`` keeps its code (INVALID_ARGUMENT, NOT_FOUND, ...); any other
exception is logged and answered INTERNAL with its message, so callers never see UNKNOWN.
``StreamSamples`` returns ready-made wire bytes (see ``_wire``): ``handlers()`` registers an
identity serializer for it.

Requests arrive as bytes (identity deserializers) and are parsed here, so that a request larger
than its method's limit is RESOURCE_EXHAUSTED naming the limit and undecodable bytes are
INVALID_ARGUMENT (gRPC's own deserialization failure is INTERNAL). Unary requests may be at most
``max_request_bytes``; PushModel's chunks at most ``max_chunk_bytes`` each (the main port's
transport limit is the larger of the two, so nothing larger is ever read). Status messages
never echo unbounded input (``_errors.clip``).
"""

from __future__ import annotations

import functools
import logging
from typing import Iterator

import grpc
from google.protobuf.message import DecodeError

from storage_service._core import StorageCore, StreamParams
from storage_service._errors import InvalidArgument, ResourceExhausted, ServiceError, clip, is_disk_full
from storage_service._proto import nessa_pb2 as pb
from storage_service._wire import BATCH_VERSION
from host.backends import Backend
from host.strategies import Strategy, strategy_names
from storage_service._names import BACKEND_TO_PB, PB_TO_BACKEND, PB_TO_STRATEGY, STRATEGY_TO_PB, backend_names
from storage_service.selections import SelectionRecord

__all__ = ["StorageServicer", "SERVICE_NAME", "stream_params", "status_of", "DEFAULT_MAX_REQUEST_BYTES",
           "DEFAULT_MAX_CHUNK_BYTES"]

SERVICE_NAME = "nessa.v1.Storage"
_log = logging.getLogger("nessa.service")
_STATE_PB = {"running": pb.SELECTION_STATE_RUNNING, "done": pb.SELECTION_STATE_DONE, "failed": pb.SELECTION_STATE_FAILED}
#: Select answers RUNNING this long before the caller's deadline rather than let it expire.
_DEADLINE_MARGIN_S = 0.25
_NO_DEADLINE_WAIT_S = 3600.0
#: Largest unary request (a name, a few numbers: well under 1 KiB in practice).
DEFAULT_MAX_REQUEST_BYTES = 64 << 10
#: Largest PushModel chunk message (StorageClient sends 1 MiB chunks); gRPC's own default limit.
DEFAULT_MAX_CHUNK_BYTES = 4 << 20


def status_of(exc: Exception, method: str) -> tuple[grpc.StatusCode, str]:
    """The status a failed call answers: a ServiceError's own code, a full disk RESOURCE_EXHAUSTED,
    else INTERNAL (logged); the message cut to ``_errors.MAX_DETAILS_CHARS``."""
    if isinstance(exc, ServiceError):
        return exc.code, clip(str(exc))
    if is_disk_full(exc):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"{method}: no room left on the server's disk ({exc.strerror})"
    _log.exception("%s failed", method)
    return grpc.StatusCode.INTERNAL, clip(f"internal error in {method}: {type(exc).__name__}: {exc}")


def _parse(cls, data: bytes, method: str, limit: int, what: str = "request"):
    """``cls`` parsed from ``data``: RESOURCE_EXHAUSTED above ``limit``, INVALID_ARGUMENT if
    undecodable (a message already parsed by a caller's own deserializer passes through)."""
    if isinstance(data, cls):
        return data
    if len(data) > limit:
        raise ResourceExhausted(f"{method} {what} of {len(data)} bytes exceeds the server's limit of {limit} bytes")
    try:
        return cls.FromString(data)
    except DecodeError:
        raise InvalidArgument(f"{method}: the {what} bytes are not a valid {cls.DESCRIPTOR.name}") from None


def _unary(cls):
    """The method takes a parsed ``cls``; failures become a status (never UNKNOWN)."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, data, context):
            try:
                return fn(self, _parse(cls, data, fn.__name__, self.max_request_bytes), context)
            except Exception as exc:  # noqa: BLE001 - mapped to a status, never UNKNOWN
                code, message = status_of(exc, fn.__name__)
            context.abort(code, message)

        return wrapper

    return decorate


_PB_TO_METHOD = {pb.DISTILL_METHOD_DM: "dm", pb.DISTILL_METHOD_DC: "dc", pb.DISTILL_METHOD_RANDOM: "random"}
_METHOD_PB = {v: k for k, v in _PB_TO_METHOD.items()}
_DISTILL_STATE_PB = {"running": pb.DISTILL_STATE_RUNNING, "done": pb.DISTILL_STATE_DONE,
                     "failed": pb.DISTILL_STATE_FAILED, "stopped": pb.DISTILL_STATE_STOPPED}


def _distillation_pb(st) -> pb.DistillationInfo:
    """A ``distill_jobs.DistillStatus`` on the wire."""
    return pb.DistillationInfo(
        name=st.name, source=st.source, method=_METHOD_PB.get(st.method, pb.DISTILL_METHOD_UNSPECIFIED), stages=st.stages,
        ipc=st.ipc, seed=st.seed, iterations=st.iterations, state=_DISTILL_STATE_PB[st.state], stages_done=st.stages_done,
        step=st.step, steps_total=st.steps_total, stage_datasets=list(st.stage_datasets), cpu_seconds=float(st.cpu_s),
        error=clip(st.error), resumed_from=st.resumed_from, soft_labels=st.labels in ("soft", "views"),
        view_epochs=int(st.view_epochs))


def _columns_pb(store) -> list:
    """The store's optional columns (``Store.columns``), sorted by name."""
    cols = getattr(store, "columns", None) or {}
    out = []
    for name in sorted(cols):
        c = cols[name]
        kind = getattr(c.kind, "value", c.kind)
        out.append(pb.ColumnInfo(name=name, kind=str(kind), dtype=str(c.dtype or ""), dim=int(c.dim or 0),
                                 max_bytes=int(c.max_bytes or 0), source=str(c.source or "")))
    return out


_EMBED_STATE_PB = {"running": pb.EMBED_STATE_RUNNING, "done": pb.EMBED_STATE_DONE, "failed": pb.EMBED_STATE_FAILED,
                   "stopped": pb.EMBED_STATE_STOPPED}


def _embedding_pb(st) -> pb.EmbeddingInfo:
    """An ``embed_jobs.EmbedStatus`` on the wire."""
    return pb.EmbeddingInfo(dataset=st.dataset, column=st.column, model_version=int(st.model_version), tower=st.tower,
                            state=_EMBED_STATE_PB[st.state], rows_done=int(st.rows_done), rows_total=int(st.rows_total),
                            dim=int(st.dim), seconds=float(st.seconds), error=clip(st.error),
                            resumed_from=int(st.resumed_from))


def _dataset_pb(name: str, m, store=None) -> pb.DatasetInfo:
    return pb.DatasetInfo(
        columns=_columns_pb(store),
        name=name,
        num_samples=m.num_samples,
        num_classes=m.num_classes,
        class_names=list(m.class_names),
        class_counts=[int(c) for c in m.class_counts],
        sample_shape=[int(d) for d in m.sample_shape],
        dtype=str(m.dtype),
        format_version=int(m.format_version),
    )


def _selection_pb(r: SelectionRecord) -> pb.SelectionInfo:
    return pb.SelectionInfo(
        id=r.id,
        dataset=r.dataset,
        strategy=STRATEGY_TO_PB[Strategy(r.strategy)],
        fraction=r.fraction,
        seed=r.seed,
        model_version=r.model_version,
        backend=BACKEND_TO_PB[Backend(r.backend)] if r.backend in backend_names() else pb.BACKEND_UNSPECIFIED,
        state=_STATE_PB[r.state],
        num_selected=r.num_selected,
        class_counts=r.class_counts,
        objective=r.objective,
        seconds=r.seconds,
        error=r.error,
        batch_size=r.batch_size if r.ordered else 0,
        num_batches=r.num_batches if r.ordered else 0,
        num_dropped=r.num_dropped,
        num_forwarded=r.num_forwarded,
        embedding_column=r.embedding_column,
        text_embedding_column=r.text_embedding_column,
        latent_classes=r.latent_classes,
    )


def stream_params(request: pb.StreamSamplesRequest) -> StreamParams:
    """A StreamSamplesRequest as the core's arguments (shared with the data plane)."""
    return StreamParams(
        dataset=request.dataset,
        selection=request.selection,
        fraction=request.fraction,
        epoch=request.epoch,
        seed=request.seed,
        rank=request.rank,
        world_size=request.world_size or 1,
        start_offset=request.start_offset,
        batch_bytes=request.batch_bytes,
        columns=tuple(request.columns),
    )


class StorageServicer:
    """One instance serves every call; ``StorageCore`` is thread-safe.

    ``data_port``: where the data plane listens (GetServerInfo), 0 when there is none.
    ``max_request_bytes`` / ``max_chunk_bytes``: the largest unary request / PushModel chunk.
    """

    def __init__(self, core: StorageCore, *, data_port: int = 0, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES):
        for name, value in (("max_request_bytes", max_request_bytes), ("max_chunk_bytes", max_chunk_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise ValueError(f"{name} must be an integer >= 1024, got {value!r}")
        self.core = core
        self.data_port = int(data_port)
        self.max_request_bytes = max_request_bytes
        self.max_chunk_bytes = max_chunk_bytes

    @_unary(pb.ListDatasetsRequest)
    def ListDatasets(self, request, context):
        out = pb.ListDatasetsResponse()
        for name in self.core.dataset_names():
            try:
                st = self.core.store(name)
                out.datasets.append(_dataset_pb(name, st.manifest, st))
            except ServiceError:
                continue  # a broken store is left out of the list (GetDataset names the problem)
        return out

    @_unary(pb.GetDatasetRequest)
    def GetDataset(self, request, context):
        st = self.core.store(request.name)
        return _dataset_pb(request.name, st.manifest, st)

    def PushModel(self, request_iterator, context):
        """Chunks go to the registry one by one (a temp file on disk), never joined in memory."""
        try:
            chunks = self._chunks(request_iterator)
            header = next(chunks, None)
            if header is None:
                raise InvalidArgument("PushModel received no chunks")
            if not header.sha256:
                raise InvalidArgument("model header has no sha256 checksum")
            rec = self.core.models.push_chunks(header.arch, int(header.version), chunks, size=int(header.size),
                                               sha256=header.sha256, dataset=header.dataset)
            return pb.ModelInfo(arch=rec.arch, version=rec.version, size=rec.size, sha256=rec.sha256, datasets=rec.datasets)
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never UNKNOWN
            if isinstance(exc, grpc.RpcError) and not context.is_active():
                return None  # the client cancelled or went away: nothing to answer (the temp file is gone)
            code, message = status_of(exc, "PushModel")
        context.abort(code, message)

    def _chunks(self, request_iterator) -> Iterator:
        """The header, then each chunk's data (parsed one at a time from the raw messages)."""
        first = True
        for data in request_iterator:
            chunk = _parse(pb.PushModelChunk, data, "PushModel", self.max_chunk_bytes, "chunk")
            if first:
                if not chunk.HasField("header"):
                    raise InvalidArgument("the first PushModel chunk must carry the header")
                yield chunk.header
                first = False
            elif chunk.HasField("header"):
                raise InvalidArgument("only the first PushModel chunk may carry a header")
            if chunk.data:
                yield chunk.data

    @_unary(pb.SelectRequest)
    def Select(self, request, context):
        strategy = PB_TO_STRATEGY.get(request.strategy)
        if strategy is None:
            raise InvalidArgument(f"unknown or unset strategy {request.strategy}; use one of {', '.join(strategy_names())}")
        if request.backend != pb.BACKEND_UNSPECIFIED and request.backend not in PB_TO_BACKEND:
            raise InvalidArgument(f"unknown backend {request.backend}; use one of {', '.join(backend_names())}")
        rec = self.core.select(
            request.dataset,
            strategy,
            request.fraction,
            seed=request.seed,
            model_version=request.model_version,
            backend=PB_TO_BACKEND[request.backend].value if request.backend in PB_TO_BACKEND else "",
            batch_size=request.batch_size,
            num_batches=request.num_batches,
            pool_size=request.pool_size,
            run=request.run,
            drop_threshold=request.drop_threshold,
            watch=request.watch,
            min_keep=request.min_keep,
            embedding_column=request.embedding_column,
            text_embedding_column=request.text_embedding_column,
            latent_classes=request.latent_classes,
        )
        if rec.state == "running" and not request.no_wait:
            remaining = context.time_remaining()
            budget = _NO_DEADLINE_WAIT_S if remaining is None else remaining - _DEADLINE_MARGIN_S
            if budget > 0:
                rec = self.core.selections.wait(rec.id, budget)
        return _selection_pb(rec)

    @_unary(pb.GetSelectionRequest)
    def GetSelection(self, request, context):
        return _selection_pb(self.core.selections.get(request.id))

    @_unary(pb.GetServerInfoRequest)
    def GetServerInfo(self, request, context):
        return pb.ServerInfo(data_port=self.data_port, batch_version=BATCH_VERSION, max_push_chunk_bytes=self.max_chunk_bytes)

    @_unary(pb.DistillRequest)
    def Distill(self, request, context):
        from host.distill import DistillConfig, DistillError

        method = _PB_TO_METHOD.get(request.method)
        if method is None:
            raise InvalidArgument(f"method: unknown or unset distillation method {request.method}; use dm, dc or random")
        soft = {}
        if request.soft_labels:  # teacher_epochs / label_temperature 0 (unset): the config's defaults
            soft["labels"] = "soft"
            if request.teacher_epochs:
                soft["teacher_epochs"] = int(request.teacher_epochs)
            if request.label_temperature:
                soft["label_temperature"] = float(request.label_temperature)
        if request.view_epochs or request.view_seeds:  # per-view labels are soft labels too
            soft.update(labels="views", view_epochs=int(request.view_epochs), view_seeds=tuple(request.view_seeds))
            if request.view_augment:  # unset: the config's default
                soft["view_augment"] = request.view_augment
        try:
            cfg = DistillConfig(method=method, stages=int(request.stages), ipc=int(request.ipc), seed=int(request.seed),
                                iterations=int(request.iterations) or 200, **soft)
        except DistillError as exc:
            raise InvalidArgument(str(exc).replace("--", "", 1)) from None
        return _distillation_pb(self.core.distill(request.dataset, request.out, cfg))

    @_unary(pb.GetDistillationRequest)
    def GetDistillation(self, request, context):
        return _distillation_pb(self.core.distillation(request.name))

    @_unary(pb.EmbedRequest)
    def Embed(self, request, context):
        return _embedding_pb(self.core.embed(request.dataset, request.column, model_version=int(request.model_version),
                                             tower=request.tower, batch_size=int(request.batch_size),
                                             overwrite=bool(request.overwrite), dtype=request.dtype))

    @_unary(pb.GetEmbeddingRequest)
    def GetEmbedding(self, request, context):
        return _embedding_pb(self.core.embedding(request.dataset, request.column))

    def StreamSamples(self, data, context):
        try:
            request = _parse(pb.StreamSamplesRequest, data, "StreamSamples", self.max_request_bytes)
            for wire in self.core.stream_in_turn(stream_params(request)):
                if not context.is_active():
                    return  # the client cancelled or went away
                yield wire
            return
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never UNKNOWN
            code, message = status_of(exc, "StreamSamples")
        context.abort(code, message)

    def handlers(self) -> grpc.GenericRpcHandler:
        """The generic handler to add to a ``grpc.Server`` (requests arrive as bytes: see the module doc)."""
        ser = lambda m: m.SerializeToString()  # noqa: E731
        identity = lambda wire: wire  # noqa: E731 - StreamSamples yields finished wire bytes
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "ListDatasets": grpc.unary_unary_rpc_method_handler(self.ListDatasets, None, ser),
                "GetDataset": grpc.unary_unary_rpc_method_handler(self.GetDataset, None, ser),
                "PushModel": grpc.stream_unary_rpc_method_handler(self.PushModel, None, ser),
                "Select": grpc.unary_unary_rpc_method_handler(self.Select, None, ser),
                "GetSelection": grpc.unary_unary_rpc_method_handler(self.GetSelection, None, ser),
                "StreamSamples": grpc.unary_stream_rpc_method_handler(self.StreamSamples, None, identity),
                "GetServerInfo": grpc.unary_unary_rpc_method_handler(self.GetServerInfo, None, ser),
                "Distill": grpc.unary_unary_rpc_method_handler(self.Distill, None, ser),
                "GetDistillation": grpc.unary_unary_rpc_method_handler(self.GetDistillation, None, ser),
                "Embed": grpc.unary_unary_rpc_method_handler(self.Embed, None, ser),
                "GetEmbedding": grpc.unary_unary_rpc_method_handler(self.GetEmbedding, None, ser),
            },
        )
