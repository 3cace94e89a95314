"""The client half of the data plane: a gRPC C++ channel that reads ``StreamSamples``.

The server half (``_data_plane``) serves StreamSamples through gRPC C++ on a second port; this
module reads it with gRPC C++ and copies the received slices once into the ``bytes`` that
``decode_sample_batch`` views. Both halves live in one optional extension
(``_native_stream.cc``, built when the gRPC C++ headers are installed); ``available()`` says
whether it was built. Client side: imports no server module.
"""

from __future__ import annotations

import grpc

from storage_service import _idle
from storage_service._grpc_options import KEEPALIVE_CHANNEL_OPTIONS, MAX_MESSAGE_BYTES
from storage_service._proto import nessa_pb2 as pb

try:
    from storage_service import _native_stream as _native
except ImportError as _exc:  # built without the gRPC C++ headers
    _native = None
    _IMPORT_ERROR = str(_exc)
else:
    _IMPORT_ERROR = ""

__all__ = ["available", "unavailable_reason", "NativeChannel", "NativeCall", "NativeRpcError"]

_CODES = {code.value[0]: code for code in grpc.StatusCode}


def available() -> bool:
    """Whether the native extension was built (see the module docs)."""
    return _native is not None


def unavailable_reason() -> str:
    return "" if _native is not None else f"storage_service._native_stream is not built ({_IMPORT_ERROR})"


def require() -> None:
    """Raise RuntimeError (saying how to build it) unless the extension was built."""
    if _native is None:
        raise RuntimeError(unavailable_reason() + "; install the gRPC C++ headers (Debian: libgrpc++-dev) and reinstall")


class NativeRpcError(Exception):
    """A data plane call ended with a non-OK status: ``code`` (``grpc.StatusCode``), ``details``."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class NativeCall:
    """One StreamSamples call in flight: an iterator of received messages with a thread-safe
    ``cancel()`` (what ``_idle.watched`` needs). Raises NativeRpcError at the end if the call did
    not finish OK."""

    def __init__(self, channel, request: bytes, metadata, deserialize=None):
        self._call = _native.call_start(channel, _native.STREAM_METHOD, request, tuple(metadata), 0.0)
        self._deserialize = deserialize
        self._done = False

    def __iter__(self) -> "NativeCall":
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        message = _native.call_next(self._call)
        if message is None:
            self._done = True
            code, details = _native.call_finish(self._call)
            if code != 0:
                raise NativeRpcError(_CODES.get(code, grpc.StatusCode.UNKNOWN), details)
            raise StopIteration
        return message if self._deserialize is None else self._deserialize(message)

    def cancel(self) -> None:
        _native.call_cancel(self._call)  # no-op once finished


class NativeChannel:
    """A gRPC C++ channel to a data plane (keepalive on); ``stream()`` runs one StreamSamples call."""

    def __init__(self, target: str, *, root_cert: bytes | None = None, server_name: str | None = None):
        require()
        self.target = target
        self._channel = _native.channel_new(target, root_cert, server_name or None, MAX_MESSAGE_BYTES, KEEPALIVE_CHANNEL_OPTIONS)

    def stream(self, request: pb.StreamSamplesRequest, metadata=(), *, deserialize=None, idle_timeout: float | None = None):
        """Yield each received SampleBatch (``deserialize(bytes)``, default: the bytes).

        Raises NativeRpcError at the end if the call did not finish OK, ``_idle.StreamIdle`` if
        a message took longer than ``idle_timeout`` seconds to arrive (None: no limit). Closing
        the generator early cancels the call (the server stops reading the store).
        """
        call = NativeCall(self._channel, request.SerializeToString(), metadata, deserialize)
        try:
            yield from _idle.watched(call, idle_timeout, f"data plane stream from {self.target}")
        finally:
            call.cancel()
