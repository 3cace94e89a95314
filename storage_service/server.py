"""Build and run the storage server: ``create_server(addr, store_root, ...) -> (server, port)``.

The server carries the ``nessa.v1.Storage`` service, the standard gRPC health service
(``grpc.health.v1.Health``, SERVING while up) and server reflection. Beside it, by default,
runs the data plane (``_data_plane``): StreamSamples on gRPC C++ on a second port of the same
host, announced by GetServerInfo. It binds 127.0.0.1 unless told otherwise, speaks TLS when
given a certificate and key, and checks a bearer token when given one. ``stop(grace)`` is
graceful: health turns NOT_SERVING, new streams are refused (UNAVAILABLE), streams in flight get
``grace`` seconds to finish and their last batches a moment to reach the client, then the ports
close.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from storage_service import _data_plane
from storage_service._core import BACKENDS, StorageCore
from storage_service.auth import BearerTokenInterceptor
from storage_service._grpc_options import SERVER_OPTIONS
from storage_service._malloc import keep_freed_memory
from storage_service.models_registry import DEFAULT_MAX_MODEL_BYTES
from storage_service.servicer import SERVICE_NAME, StorageServicer
from storage_service.tls import credentials_from_pems, read_key_pair

__all__ = ["StorageServer", "create_server", "serve_local", "DEFAULT_PORT"]

DEFAULT_PORT = 50051
# How long a graceful stop keeps the sockets open after the last stream has ended, so that the
# batches still in the transport reach the client before the connection closes.
_LINGER_S = 0.25
_log = logging.getLogger("nessa.service")


class StorageServer:
    """A started server: ``port``, ``data_port`` (0: no data plane), ``core``, ``stop(grace)``."""

    def __init__(self, grpc_server: grpc.Server, core: StorageCore, health_servicer: health.HealthServicer, port: int, data_plane=None):
        self.grpc_server = grpc_server
        self.core = core
        self.port = port
        self.data_plane = data_plane
        self.data_port = data_plane.port if data_plane is not None else 0
        self._health = health_servicer

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
) -> tuple[StorageServer, int]:
    """Create, bind and start a server on ``addr`` (port 0 picks a free port).

    ``data_port``: the data plane's port on the same host; 0 picks a free one, or runs none if
    the native extension is not built; None runs none. Returns ``(server, port)``. Raises
    ValueError naming the bad option (missing store root, half a TLS pair, unknown backend,
    port already taken, a data port without the extension, ...).
    """
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
    keep_freed_memory()  # streaming allocates and frees message-sized buffers per batch (see _malloc)
    core = StorageCore(store_root, backend=backend, max_model_bytes=max_model_bytes, select_workers=select_workers)
    interceptors = [BearerTokenInterceptor(token)] if token else []
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="nessa-rpc"),
        interceptors=interceptors,
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=max_workers * 4,
    )
    plane = None
    if data_port is not None and _data_plane.available():
        host = addr.rsplit(":", 1)[0].strip("[]")
        try:
            plane = _data_plane.DataPlaneServer(core, host, data_port, token=token, tls_cert_pem=pems and pems[0], tls_key_pem=pems and pems[1], max_streams=max_workers * 4)
        except ValueError:
            core.close()
            raise ValueError(f"cannot bind the data plane on {host}:{data_port} (port in use or not a local address)") from None
    elif data_port is not None:
        _log.info("no data plane: %s", _data_plane.unavailable_reason())
    server.add_generic_rpc_handlers((StorageServicer(core, data_port=plane.port if plane else 0).handlers(),))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        port = server.add_secure_port(addr, creds) if creds is not None else server.add_insecure_port(addr)
    except RuntimeError as exc:
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
    return StorageServer(server, core, health_servicer, port, plane), port


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
