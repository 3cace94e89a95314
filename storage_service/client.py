"""Client library for the NeSSA storage service (``nessa.v1.Storage``), used by the trainer.

Usage::

    from storage_service.client import StorageClient

    with StorageClient("127.0.0.1:50051", token=None, root_cert=None) as c:
        c.list_datasets()                       # -> [DatasetInfo]
        info = c.get_dataset("fm/train")        # -> DatasetInfo(name, num_samples, num_classes,
                                                #    class_names, class_counts, sample_shape, dtype)
        c.push_model("small_cnn", model.state_dict(), version=1, dataset="fm/train")  # -> ModelInfo
        sel = c.select("fm/train", "craig", 0.1, seed=0, model_version=None, backend="cpu")
        # -> SelectionInfo(id, dataset, strategy, fraction, num_selected, class_counts,
        #                  objective, seconds, state, ..., batch_size, num_batches,
        #                  num_dropped, num_forwarded); wait=False returns at once (state
        #                  "running"); poll with c.get_selection(sel.id)
        pa = c.select("fm/train", "nessa-pa", 0.1, model_version=1, batch_size=128, num_batches=5,
                      pool_size=0, run="run-1", drop_threshold=0.0, watch=0, min_keep=0.0)
        for b in c.stream_samples("fm/train", selection=sel.id, epoch=3, seed=0,
                                  rank=0, world_size=1, start_offset=0, batch_bytes=1 << 20):
            b.offset, b.count, b.ids, b.labels, b.weights, b.samples, b.nbytes

Facts the trainer can rely on:

* ``stream_samples`` yields ``SampleBatch`` objects: ``ids`` int64, ``labels`` int32,
  ``weights`` float32 and ``samples`` ``[n, *sample_shape]`` of the store's dtype (uint8 for
  images). They are read-only numpy views of the received message (no copy); copy them (or
  convert, e.g. ``host.models.to_input``) before writing to them.
* ``selection`` is ``"full"``, ``"random"`` (needs ``fraction``) or a selection id. The order is
  a permutation seeded by ``(seed, epoch)``; rank ``r`` of ``world_size`` gets positions
  ``r, r + w, ...`` of it (shares are disjoint and together complete). An *ordered* selection
  (``SelectionInfo.batch_size > 0``: ``nessa-pa``, ``crest``) is not shuffled: it streams in
  training order, and rank ``r`` gets whole mini-batches ``r, r + w, ...`` (``seed`` and
  ``epoch`` do not change it). ``start_offset`` is a row position within the rank's share:
  resume from ``last.offset + last.count``.
* Calls retry with exponential backoff while the server is UNAVAILABLE (``retries`` times). A
  stream interrupted that way is resumed transparently from the next undelivered offset, so
  the caller sees every row of its share exactly once.
* A stream that receives nothing for ``stream_idle_timeout`` seconds (default 60) while the
  caller waits for its next batch is cancelled and raises ``StorageError`` DEADLINE_EXCEEDED
  naming that time (a hung server); time the caller spends between batches does not count.
  Unary calls keep their ``timeout``. Every channel pings the server every 20 s while a call is
  open and drops a connection whose ping goes unanswered for 10 s (UNAVAILABLE, retried as
  above): ``_grpc_options.KEEPALIVE_CHANNEL_OPTIONS``.
* Errors raise ``StorageError`` with ``.code`` (a ``grpc.StatusCode``) and the server's
  message; a failed selection raises ``SelectionFailed``.
* ``token`` sends ``authorization: Bearer <token>``; ``root_cert`` (PEM path or bytes) turns
  on TLS (``server_name`` overrides the name checked against the certificate).
* Streams go to the server's data plane (StreamSamples on gRPC C++, on the port GetServerInfo
  names, same host, same TLS and token) when the server runs one, read with gRPC C++ when this
  install has the native extension, else with gRPC-Python; without a data plane through the
  main port. ``data_plane=False`` always uses the main port. All give the same batches.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from typing import Any, Iterator

import grpc

from storage_service import _idle, _native_channel
from storage_service._client_jobs import JobCalls
from storage_service._client_types import (
    ColumnInfo,
    DatasetInfo,
    EmbedFailed,
    EmbeddingInfo,
    ModelInfo,
    SampleBatch,
    SelectionFailed,
    SelectionInfo,
    StorageError,
    _dataset,
    _decode_batch,
    _model,
)
from storage_service._grpc_options import CHANNEL_OPTIONS, MAX_MESSAGE_BYTES
from storage_service._malloc import keep_freed_memory as _keep_freed_memory
from storage_service._names import FULL_SELECTION, RANDOM_SELECTION
from storage_service._proto import nessa_pb2 as pb

__all__ = [
    "StorageClient",
    "StorageError",
    "SelectionFailed",
    "DatasetInfo",
    "ColumnInfo",
    "EmbeddingInfo",
    "EmbedFailed",
    "ModelInfo",
    "SelectionInfo",
    "SampleBatch",
    "MAX_MESSAGE_BYTES",
    "FULL_SELECTION",
    "RANDOM_SELECTION",
]

_SERVICE = "/nessa.v1.Storage/"
def _read_cert(root_cert) -> bytes:
    if isinstance(root_cert, (bytes, bytearray)):
        return bytes(root_cert)
    with open(root_cert, "rb") as f:
        return f.read()


def _state_bytes(state) -> bytes:
    """safetensors bytes of a model: bytes as given, or a state dict / module saved here."""
    if isinstance(state, (bytes, bytearray, memoryview)):
        return bytes(state)
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise TypeError(f"state must be safetensors bytes or a dict of tensors, got {type(state).__name__}")
    from safetensors.torch import save  # lazy: torch only when pushing tensors

    return save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def _grpc_stream(method, request, metadata, idle_timeout: float | None, what: str) -> Iterator[SampleBatch]:
    call = method(request, metadata=metadata)
    try:
        yield from _idle.watched(call, idle_timeout, what)
    finally:
        call.cancel()  # no-op when finished


class _PythonDataChannel:
    """The data plane read through gRPC-Python (the native extension is not built here)."""

    def __init__(self, channel: grpc.Channel, target: str):
        self._channel = channel
        self.target = target
        ser = lambda m: m.SerializeToString()  # noqa: E731
        self._stream = channel.unary_stream(_SERVICE + "StreamSamples", request_serializer=ser, response_deserializer=_decode_batch)

    def stream(self, request, metadata, *, deserialize=None, idle_timeout: float | None = None):
        # _decode_batch is the deserializer
        return _grpc_stream(self._stream, request, metadata, idle_timeout, f"data plane stream from {self.target}")

    def close(self) -> None:
        self._channel.close()


class StorageClient(JobCalls):
    """A connection to one storage server. Thread-safe; use as a context manager or ``close()``.

    The job calls (``select``, ``get_selection``, ``embed``, ``get_embedding``, ``distill``,
    ``get_distillation``) come from ``JobCalls`` (storage_service/_client_jobs.py); this class
    holds the channels, the retries, model pushes and streams."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        root_cert: str | os.PathLike | bytes | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        server_name: str | None = None,
        keep_freed_memory: bool = True,
        data_plane: bool = True,
        stream_idle_timeout: float | None = 60.0,
    ):
        """``data_plane``: stream from the server's data plane when there is one (module docs).
        ``keep_freed_memory``: raise glibc's mmap/trim thresholds for this process (once), so
        each streamed batch reuses the previous one's pages instead of page-faulting fresh
        memory (about a third of the client's CPU, storage_service/_malloc.py). It changes the
        whole process's allocator; pass False where that is not wanted.
        ``stream_idle_timeout``: seconds a stream may go without a message while the caller
        waits for one before it fails DEADLINE_EXCEEDED (None: never); ``timeout`` bounds each
        unary call."""
        if not isinstance(target, str) or not target:
            raise ValueError(f"target must be 'host:port', got {target!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.stream_idle_timeout = _idle.check_idle_timeout(stream_idle_timeout)
        self.target = target
        self.timeout = float(timeout)
        self.retries = int(retries)
        self._backoff = (float(backoff), float(max_backoff))
        if keep_freed_memory:
            _keep_freed_memory()  # each received batch allocates and frees message-sized buffers
        options = list(CHANNEL_OPTIONS)
        self._root_pem = _read_cert(root_cert) if root_cert is not None else None
        self._server_name = server_name
        self._use_data_plane = bool(data_plane)
        self._data_channel = None  # the data plane's channel once GetServerInfo named a port, else False
        self._data_lock = threading.Lock()
        if root_cert is not None and server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        self._options = options
        self._channel = self._grpc_channel(target)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        ser = lambda m: m.SerializeToString()  # noqa: E731
        uu = lambda name, resp: self._channel.unary_unary(_SERVICE + name, request_serializer=ser, response_deserializer=resp.FromString)  # noqa: E731
        self._list = uu("ListDatasets", pb.ListDatasetsResponse)
        self._get = uu("GetDataset", pb.DatasetInfo)
        self._select = uu("Select", pb.SelectionInfo)
        self._get_sel = uu("GetSelection", pb.SelectionInfo)
        self._info = uu("GetServerInfo", pb.ServerInfo)
        self._push = self._channel.stream_unary(_SERVICE + "PushModel", request_serializer=ser, response_deserializer=pb.ModelInfo.FromString)
        # The body is read in place: the deserializer gets gRPC's bytes and returns views.
        self._stream = self._channel.unary_stream(_SERVICE + "StreamSamples", request_serializer=ser, response_deserializer=_decode_batch)

    # -- plumbing --------------------------------------------------------------------------
    def _grpc_channel(self, target: str) -> grpc.Channel:
        if self._root_pem is None:
            return grpc.insecure_channel(target, options=self._options)
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=self._root_pem), options=self._options)

    def close(self) -> None:
        self._channel.close()
        with self._data_lock:
            if isinstance(self._data_channel, _PythonDataChannel):
                self._data_channel.close()
            self._data_channel = None  # a native channel closes when its last stream is done

    def __enter__(self) -> "StorageClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects (raises StorageError UNAVAILABLE after ``timeout``)."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise StorageError(grpc.StatusCode.UNAVAILABLE, f"{self.target} not reachable within {timeout}s") from None

    def _sleep(self, attempt: int) -> None:
        base, cap = self._backoff
        time.sleep(min(cap, base * 2**attempt) * (0.5 + random.random() / 2))

    def _call(self, method, request, timeout: float | None = None) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    self._sleep(attempt)
                    continue
                raise StorageError(exc.code(), exc.details() or "") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- calls -----------------------------------------------------------------------------
    def list_datasets(self) -> list[DatasetInfo]:
        return [_dataset(d) for d in self._call(self._list, pb.ListDatasetsRequest()).datasets]

    def get_dataset(self, name: str) -> DatasetInfo:
        return _dataset(self._call(self._get, pb.GetDatasetRequest(name=name)))

    def push_model(self, arch, state, version: int, *, dataset: str | None = None, chunk_bytes: int = 1 << 20) -> ModelInfo:
        """Upload ``state`` (safetensors bytes, a state dict or a module) as model ``version``, in
        chunks of ``chunk_bytes`` (at most the server's ``max_push_chunk_bytes``, default 4 MiB).
        Retries while the server is UNAVAILABLE or already receiving its cap of pushes."""
        blob = _state_bytes(state)
        arch = getattr(arch, "value", arch)
        header = pb.ModelHeader(arch=str(arch), version=int(version), size=len(blob), sha256=hashlib.sha256(blob).hexdigest(), dataset=dataset or "")
        view = memoryview(blob)

        def chunks():
            yield pb.PushModelChunk(header=header, data=bytes(view[:chunk_bytes]))
            for pos in range(chunk_bytes, len(blob), chunk_bytes):
                yield pb.PushModelChunk(data=bytes(view[pos : pos + chunk_bytes]))

        # A generator cannot be replayed, so each attempt makes a new one (pushes are idempotent).
        for attempt in range(self.retries + 1):
            try:
                return _model(self._push(chunks(), timeout=self.timeout, metadata=self._metadata))
            except grpc.RpcError as exc:
                # RESOURCE_EXHAUSTED "... already in progress": the server's cap on pushes at once.
                busy = exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "already in progress" in (exc.details() or "")
                if (exc.code() == grpc.StatusCode.UNAVAILABLE or busy) and attempt < self.retries:
                    self._sleep(attempt)
                    continue
                raise StorageError(exc.code(), exc.details() or "") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _unary(self, name: str, resp):
        return self._channel.unary_unary(_SERVICE + name, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=resp.FromString)

    def stream_samples(
        self,
        dataset: str,
        *,
        selection: str = FULL_SELECTION,
        epoch: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_offset: int = 0,
        batch_bytes: int = 1 << 20,
        fraction: float | None = None,
        columns: tuple[str, ...] | list[str] = (),
    ) -> Iterator[SampleBatch]:
        """Yield this rank's share of the epoch's order from ``start_offset`` (see module docs).
        ``columns``: extra store columns ("text", "emb/proxy") in each batch's ``columns``
        (batch version 2; an unknown column is INVALID_ARGUMENT naming it)."""
        if selection == RANDOM_SELECTION and fraction is None:
            raise ValueError("selection='random' needs a fraction")
        request = pb.StreamSamplesRequest(
            dataset=dataset,
            selection=selection,
            fraction=float(fraction or 0.0),
            epoch=int(epoch),
            seed=int(seed),
            rank=int(rank),
            world_size=int(world_size),
            start_offset=int(start_offset),
            batch_bytes=int(batch_bytes),
            columns=list(columns),
        )
        failures = 0
        complete = False
        while True:
            batches = self._open_stream(request)
            try:
                for batch in batches:
                    if columns and any(c not in batch.columns for c in columns):
                        missing = [c for c in columns if c not in batch.columns]
                        raise StorageError(grpc.StatusCode.UNIMPLEMENTED,
                                           f"the server sent no column {missing}: it predates streamed columns")
                    failures = 0
                    request.start_offset = batch.offset + batch.count
                    complete = request.start_offset >= batch.total
                    yield batch
                return
            except _idle.StreamIdle as exc:
                if complete:
                    return  # every row arrived; only the closing status never came
                raise StorageError(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)) from None
            except (grpc.RpcError, _native_channel.NativeRpcError) as exc:
                if complete:
                    return  # every row arrived; only the closing status was lost (server stopped)
                code, details = (exc.code, exc.details) if isinstance(exc, _native_channel.NativeRpcError) else (exc.code(), exc.details() or "")
                if code == grpc.StatusCode.UNAVAILABLE and failures < self.retries:
                    self._forget_data_plane()  # a restarted server may listen on another data port
                    self._sleep(failures)
                    failures += 1
                    continue  # resume from the next undelivered offset
                raise StorageError(code, details) from None
            finally:
                batches.close()  # cancels the call if the caller broke off: the server stops reading

    def server_info(self) -> tuple[int, int]:
        """``(data_port, batch_version)`` of the server (data_port 0: it runs no data plane)."""
        info = self._call(self._info, pb.GetServerInfoRequest())
        return int(info.data_port), int(info.batch_version)

    def _open_stream(self, request: pb.StreamSamplesRequest) -> Iterator[SampleBatch]:
        channel = self._data_plane_channel()
        if channel is not None:
            return channel.stream(request, self._metadata, deserialize=_decode_batch, idle_timeout=self.stream_idle_timeout)
        return _grpc_stream(self._stream, request, self._metadata, self.stream_idle_timeout, f"stream from {self.target}")

    def _data_plane_channel(self):
        """The data plane's channel, asked of the server once; None: stream through the main port."""
        if not self._use_data_plane:
            return None
        with self._data_lock:
            if self._data_channel is None:
                self._data_channel = False
                try:
                    # Part of opening a stream, so bounded by the idle deadline too: a hung
                    # server must not hold a stream's start for the whole call timeout.
                    limit = min(self.timeout, self.stream_idle_timeout or self.timeout)
                    data_port = int(self._call(self._info, pb.GetServerInfoRequest(), timeout=limit).data_port)
                except StorageError as exc:
                    if exc.code != grpc.StatusCode.UNIMPLEMENTED:
                        self._data_channel = None  # ask again next time
                        raise
                    data_port = 0  # a server older than GetServerInfo: no data plane
                if data_port:
                    target = f"{self.target.rsplit(':', 1)[0]}:{data_port}"
                    if _native_channel.available():
                        self._data_channel = _native_channel.NativeChannel(target, root_cert=self._root_pem, server_name=self._server_name)
                    else:  # no native extension here: gRPC-Python still spares the server its copy
                        self._data_channel = _PythonDataChannel(self._grpc_channel(target), target)
            return self._data_channel or None

    def _forget_data_plane(self) -> None:
        with self._data_lock:
            self._data_channel = None
