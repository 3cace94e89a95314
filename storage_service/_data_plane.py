"""The data plane: ``StreamSamples`` served and read through gRPC C++ (``_native_stream.cc``).

Why a second server: gRPC-Python copies each response into a slice on the server and joins the
received slices on the client through intermediate buffers; for megabyte batches those copies
are most of a stream's CPU. The data plane is a gRPC C++ server on its own port (same host,
same TLS, same bearer token) that serves only ``/nessa.v1.Storage/StreamSamples``, with the
same request and the same ``SampleBatch`` messages, built by the same ``StorageCore.stream``.
The server lends each batch's ``bytes`` to gRPC (no copy); the client copies the received slices
once into the ``bytes`` that ``decode_sample_batch`` views. The main port still serves
StreamSamples too (through gRPC-Python), for any gRPC client; ``GetServerInfo`` tells clients
where the data plane is.

The extension is optional (pip builds it when the gRPC C++ headers are installed, Debian:
``libgrpc++-dev``): ``available()`` says whether it was built; without it a server runs no
data plane, and a client reads a server's data plane with gRPC-Python (``client.py``). This is
the server half; the client half is ``_native_channel`` (the client imports no server module).
"""

from __future__ import annotations

import atexit
import weakref

import grpc
from google.protobuf.message import DecodeError

from storage_service._core import StorageCore
from storage_service._grpc_options import DATA_PLANE_MAX_REQUEST_BYTES, KEEPALIVE_SERVER_OPTIONS, MAX_MESSAGE_BYTES
from storage_service._native_channel import _native, available, require, unavailable_reason
from storage_service._proto import nessa_pb2 as pb
from storage_service.servicer import status_of, stream_params

__all__ = ["available", "unavailable_reason", "DataPlaneServer"]

_LIVE: "weakref.WeakSet[DataPlaneServer]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # A server left running at exit is stopped while Python can still run its handler threads
    # (during interpreter finalization they could no longer take the GIL to finish a call).
    for server in list(_LIVE):
        server.stop(0)


def _stream_handler(core: StorageCore):
    """The callable the C++ server runs per call: request bytes in, wire bytes (then a status) out."""

    def handle(request: bytes):
        try:
            params = stream_params(pb.StreamSamplesRequest.FromString(request))
        except DecodeError:
            yield (grpc.StatusCode.INVALID_ARGUMENT.value[0], "malformed StreamSamplesRequest")
            return
        try:
            yield from core.stream_in_turn(params)  # batches built a few at a time (BATCH_BUILDERS)
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never UNKNOWN
            code, message = status_of(exc, "StreamSamples")
            yield (code.value[0], message)

    return handle


class DataPlaneServer:
    """A started data plane for ``core`` on ``host:port`` (port 0 picks a free one): ``.port``, ``stop()``."""

    def __init__(
        self,
        core: StorageCore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        tls_cert_pem: bytes | None = None,
        tls_key_pem: bytes | None = None,
        max_streams: int = 64,
    ):
        require()
        if not 0 <= port <= 65535:
            raise ValueError(f"data plane port must be in [0, 65535], got {port}")
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        if (tls_cert_pem is None) != (tls_key_pem is None):
            raise ValueError("TLS needs both a certificate and a key")
        addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # One gRPC thread per stream in flight, plus one that keeps polling. It receives only
        # tiny StreamSamplesRequests: a longer message is refused before it is buffered.
        self._server, self.port = _native.server_start(addr, _stream_handler(core), tls_cert_pem, tls_key_pem, token,
                                                       DATA_PLANE_MAX_REQUEST_BYTES, MAX_MESSAGE_BYTES, max_streams + 1,
                                                       KEEPALIVE_SERVER_OPTIONS)
        _LIVE.add(self)

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving; streams in flight get ``grace`` seconds. Idempotent; blocks until stopped."""
        _native.server_stop(self._server, float(grace or 0.0))
