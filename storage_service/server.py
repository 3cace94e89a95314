"""Build and run the storage server: ``create_server(addr, store_root, ...) -> (server, port)``.

The server carries the ``nessa.v1.Storage`` service, the standard gRPC health service
(``grpc.health.v1.Health``, SERVING while up) and server reflection. Beside it, by default,
runs the data plane (``_data_plane``): StreamSamples on gRPC C++ on a second port of the same
host, announced by GetServerInfo. It binds 127.0.0.1 unless told otherwise, speaks TLS when
given a certificate and key, and checks a bearer token when given one. ``stop(grace)`` is
graceful: health turns NOT_SERVING, new streams are refused (UNAVAILABLE), streams in flight get
``grace`` seconds to finish and their last batches a moment to reach the client, then the ports
close.

Resource bounds (each a ``create_server`` keyword and a ``nessa serve`` flag, see SERVICE.md
"Limits"): unary requests and PushModel chunks have their own size limits (the main port reads
nothing larger); a push streams to disk, and only ``max_pushes`` run at once; ``max_streams``
streams per port; ``max_queued_selections``; retention of ``keep_models`` model versions and
``keep_selections`` selections per data set. Calls run on separate thread pools (``_Router``):
StreamSamples on its own (``max_streams`` threads), health checks and refusals on a small quick
one, long-lived health watches and reflection on another, every other call on ``max_workers``
threads, so streams never starve health checks or unary calls.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from storage_service import _data_plane
from storage_service._core import BACKENDS, StorageCore
from storage_service.auth import BearerTokenInterceptor, is_quick, refusing_handler
from storage_service._grpc_options import KEEPALIVE_SERVER_OPTIONS, server_options
from storage_service._malloc import keep_freed_memory
from storage_service.models_registry import DEFAULT_KEEP_MODELS, DEFAULT_MAX_MODEL_BYTES, DEFAULT_MAX_PUSHES
from storage_service.embed_jobs import DEFAULT_MAX_JOBS as DEFAULT_MAX_EMBED_JOBS
from storage_service.selections import DEFAULT_KEEP_SELECTIONS, DEFAULT_MAX_QUEUED
from storage_service.servicer import DEFAULT_MAX_CHUNK_BYTES, DEFAULT_MAX_REQUEST_BYTES, SERVICE_NAME, StorageServicer
from storage_service.tls import credentials_from_pems, read_key_pair

__all__ = ["StorageServer", "create_server", "serve_local", "DEFAULT_PORT"]

DEFAULT_PORT = 50051
# How long a graceful stop keeps the sockets open after the last stream has ended, so that the
# batches still in the transport reach the client before the connection closes.
_LINGER_S = 0.25
_log = logging.getLogger("nessa.service")
_STREAM_SAMPLES = f"/{SERVICE_NAME}/StreamSamples"
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
#: Threads for health checks and refusals (each answers at once), and for the long-lived calls
#: that are not StreamSamples (health Watch, reflection streams).
_QUICK_THREADS = 4
_LONG_THREADS = 4


#: Modules that calls import on first use (torch above all), imported before the server serves.
#: Why: an import takes and drops the GIL thousands of times, and every batch a stream sends takes
#: the GIL; under 64 streams the first PushModel spent 19-60 s importing torch (bench/soak.py).
_PRELOAD = ("torch", "safetensors.torch", "host.models", "host.curvature", "host.features", "host.minibatch",
            "host.budget", "host.selection", "host.distill")


def _preload() -> None:
    for name in _PRELOAD:
        importlib.import_module(name)


class _CountingPool(ThreadPoolExecutor):
    """A thread pool that knows how many calls it holds, queued or running (``held``)."""

    def __init__(self, max_workers: int, thread_name_prefix: str):
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._held = 0
        self._held_lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def submit(self, fn, /, *args, **kwargs):
        with self._held_lock:
            self._held += 1
        try:
            return super().submit(self._counted, fn, args, kwargs)
        except BaseException:
            self._release()
            raise

    def _counted(self, fn, args, kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            self._release()

    def _release(self) -> None:
        with self._held_lock:
            self._held -= 1


def _on_pool(handler: grpc.RpcMethodHandler, pool: ThreadPoolExecutor) -> grpc.RpcMethodHandler:
    """``handler`` run on ``pool`` (gRPC-Python's per-behavior ``experimental_thread_pool``)."""
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behavior = getattr(handler, kind, None)
        if behavior is not None and hasattr(handler, "_replace"):
            run = functools.partial(behavior)
            run.experimental_thread_pool = pool
            return handler._replace(**{kind: run})
    return handler


class _Router(grpc.ServerInterceptor):
    """Puts each call on its pool, and refuses a StreamSamples beyond ``max_streams`` at once
    (RESOURCE_EXHAUSTED) rather than queueing it. Runs first, on gRPC's polling thread, with the
    handler the later interceptors (auth) chose."""

    def __init__(self, streams: _CountingPool, quick: ThreadPoolExecutor, long: ThreadPoolExecutor, max_streams: int):
        self._streams, self._quick, self._long, self._max_streams = streams, quick, long, max_streams

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method or ""
        if method == _HEALTH_CHECK or is_quick(handler):
            return _on_pool(handler, self._quick)
        if method == _STREAM_SAMPLES:
            if self._streams.held >= self._max_streams:
                return _on_pool(refusing_handler(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                                 f"{self._max_streams} streams in flight, the server's cap (--max-streams); "
                                                 "retry later"), self._quick)
            return _on_pool(handler, self._streams)
        if handler.response_streaming:
            return _on_pool(handler, self._long)
        return handler  # unary calls and PushModel: the server's own pool of max_workers


class StorageServer:
    """A started server: ``port``, ``data_port`` (0: no data plane), ``core``, ``stop(grace)``."""

    def __init__(self, grpc_server: grpc.Server, core: StorageCore, health_servicer: health.HealthServicer, port: int, data_plane=None):
        self.grpc_server = grpc_server
        self.core = core
        self.port = port
        self.data_plane = data_plane
        self.data_port = data_plane.port if data_plane is not None else 0
        self._health = health_servicer
        self._pools: list[ThreadPoolExecutor] = []  # ours besides gRPC's, shut down after a stop

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving; calls in flight get ``grace`` seconds. Blocks until stopped."""
        self._health.enter_graceful_shutdown()
        grace = max(0.0, grace or 0.0)
        deadline = time.monotonic() + grace
        if self.core.drain_streams(grace):
            # The last batches are with the transport, not yet with the client: keep the
            # sockets open a moment so they arrive before the connection is closed.
            time.sleep(min(_LINGER_S, max(0.0, deadline - time.monotonic())))
        left = max(0.0, deadline - time.monotonic())
        stopped = self.grpc_server.stop(left)
        if self.data_plane is not None:
            self.data_plane.stop(left)
        stopped.wait()
        self.core.close()
        for pool in self._pools:
            pool.shutdown(wait=False)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.grpc_server.wait_for_termination(timeout)

    def __enter__(self) -> "StorageServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop(grace=1.0)


def create_server(
    addr: str = f"127.0.0.1:{DEFAULT_PORT}",
    store_root: str | os.PathLike = ".",
    *,
    token: str | None = None,
    tls_cert: str | os.PathLike | None = None,
    tls_key: str | os.PathLike | None = None,
    backend: str = "cpu",
    max_workers: int = 32,
    select_workers: int = 1,
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    data_port: int | None = 0,
    max_streams: int | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_push_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    max_pushes: int = DEFAULT_MAX_PUSHES,
    max_queued_selections: int = DEFAULT_MAX_QUEUED,
    keep_models: int = DEFAULT_KEEP_MODELS,
    keep_selections: int = DEFAULT_KEEP_SELECTIONS,
    max_embed_jobs: int = DEFAULT_MAX_EMBED_JOBS,
) -> tuple[StorageServer, int]:
    """Create, bind and start a server on ``addr`` (port 0 picks a free port).

    ``data_port``: the data plane's port on the same host; 0 picks a free one, or runs none if
    the native extension is not built; None runs none. Returns ``(server, port)``. Raises
    ValueError naming the bad option (missing store root, half a TLS pair, unknown backend,
    port already taken, a data port without the extension, ...).

    Bounds: ``max_workers`` threads for unary calls and pushes; ``max_streams`` StreamSamples at
    once per port (None: 4 x max_workers; beyond: RESOURCE_EXHAUSTED); ``max_request_bytes`` per
    unary request and ``max_push_chunk_bytes`` per PushModel chunk (>= 1024; beyond:
    RESOURCE_EXHAUSTED); ``max_pushes`` pushes at once; ``max_queued_selections`` selections
    queued or running (0: no bound); ``max_embed_jobs`` embedding jobs running at once;
    ``keep_models`` model versions and ``keep_selections``
    finished selections per data set kept (0: all).
    """
    max_streams = 4 * max_workers if max_streams is None else max_streams
    for name, value, least in (("max_streams", max_streams, 1), ("max_request_bytes", max_request_bytes, 1024),
                               ("max_push_chunk_bytes", max_push_chunk_bytes, 1024), ("max_pushes", max_pushes, 1),
                               ("max_queued_selections", max_queued_selections, 0), ("keep_models", keep_models, 0),
                               ("keep_selections", keep_selections, 0), ("max_embed_jobs", max_embed_jobs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if max_workers < 2:
        raise ValueError(f"max_workers must be >= 2, got {max_workers}")
    if ":" not in addr:
        raise ValueError(f"address must be host:port, got {addr!r}")
    if data_port is not None and not 0 <= data_port <= 65535:
        raise ValueError(f"data_port must be in [0, 65535] or None, got {data_port}")
    if data_port and not _data_plane.available():
        raise ValueError(f"data_port {data_port}: {_data_plane.unavailable_reason()}")
    pems = read_key_pair(tls_cert, tls_key) if tls_cert is not None else None
    creds = credentials_from_pems(*pems) if pems is not None else None
    _preload()
    keep_freed_memory()  # streaming allocates and frees message-sized buffers per batch (see _malloc)
    core = StorageCore(store_root, backend=backend, max_model_bytes=max_model_bytes, select_workers=select_workers)
    core.selections.set_limits(keep=keep_selections, max_queued=max_queued_selections)
    core.max_embed_jobs = max_embed_jobs  # read when the first Embed creates the job pool
    core.models.set_limits(keep=keep_models, in_use=core.selections.model_versions_in_use, max_pushes=max_pushes)
    for folder, names in (("models", core.models.removed_temp_files), ("selections", core.selections.removed_temp_files)):
        if names:
            _log.info("removed %d temp file(s) of interrupted writes from .nessa/%s", len(names), folder)
    pools = [
        _CountingPool(max_streams, "nessa-stream"),
        ThreadPoolExecutor(max_workers=_QUICK_THREADS, thread_name_prefix="nessa-quick"),
        ThreadPoolExecutor(max_workers=_LONG_THREADS, thread_name_prefix="nessa-long"),
    ]
    interceptors = [_Router(*pools, max_streams)] + ([BearerTokenInterceptor(token)] if token else [])
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="nessa-rpc"),
        interceptors=interceptors,
        options=server_options(max(max_request_bytes, max_push_chunk_bytes)) + KEEPALIVE_SERVER_OPTIONS,
        # A backstop on calls held at once, queued included, far above what the pools admit, so
        # that a flood cannot queue without bound; below it health checks are always answered.
        maximum_concurrent_rpcs=4 * (max_workers + max_streams) + 64,
    )
    plane = None
    if data_port is not None and _data_plane.available():
        host = addr.rsplit(":", 1)[0].strip("[]")
        try:
            plane = _data_plane.DataPlaneServer(core, host, data_port, token=token, tls_cert_pem=pems and pems[0], tls_key_pem=pems and pems[1], max_streams=max_streams)
        except ValueError:
            core.close()
            raise ValueError(f"cannot bind the data plane on {host}:{data_port} (port in use or not a local address)") from None
    elif data_port is not None:
        _log.info("no data plane: %s", _data_plane.unavailable_reason())
    servicer = StorageServicer(core, data_port=plane.port if plane else 0, max_request_bytes=max_request_bytes,
                               max_chunk_bytes=max_push_chunk_bytes)
    server.add_generic_rpc_handlers((servicer.handlers(),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = server.add_secure_port(addr, creds) if creds is not None else server.add_insecure_port(addr)
    except RuntimeError:
        _stop(plane)
        core.close()
        # gRPC's own text only says "Failed to bind ... set GRPC_VERBOSITY": name the likely causes.
        raise ValueError(f"cannot bind {addr} (port in use or not a local address)") from None
    if port == 0:
        _stop(plane)
        core.close()
        raise ValueError(f"cannot bind {addr} (in use or not a local address)")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("serving %s on port %d, data plane on %s (tls=%s, token=%s)", store_root, port, plane.port if plane else "none", creds is not None, bool(token))
    started = StorageServer(server, core, health_servicer, port, plane)
    started._pools = pools
    return started, port


def _stop(plane) -> None:
    if plane is not None:
        plane.stop(0)


@contextlib.contextmanager
def serve_local(store_root: str | os.PathLike, **options) -> Iterator[str]:
    """A server over ``store_root`` on a free loopback port, in this process; yields HOST:PORT
    and stops it on exit (demos, benchmarks and tests)."""
    server, port = create_server("127.0.0.1:0", store_root=store_root, **options)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=1.0)
