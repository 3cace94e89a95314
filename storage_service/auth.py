"""Bearer-token authentication for the storage service (a server interceptor).

Clients send ``authorization: Bearer <token>`` metadata. The token comes from a file
(``--token-file``; surrounding whitespace stripped) or the ``NESSA_TOKEN`` environment
variable. Comparison is constant-time. The gRPC health service stays open so load balancers
and orchestrators can probe without the secret; everything else (including reflection) needs
the token. Use it together with TLS: a bearer token on a plaintext socket can be sniffed.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import grpc

__all__ = ["TOKEN_ENV", "load_token", "BearerTokenInterceptor"]

#: Environment variable read when no token file is given.
TOKEN_ENV = "NESSA_TOKEN"
_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def load_token(token_file: str | os.PathLike | None = None, *, env: str = TOKEN_ENV) -> str | None:
    """The token from ``token_file`` if given, else from ``$env``, else None (no auth)."""
    if token_file is not None:
        path = Path(token_file)
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read token file {str(path)!r}: {exc.strerror or exc}") from None
        if not token:
            raise ValueError(f"token file {str(path)!r} is empty")
    else:
        token = os.environ.get(env, "").strip()
        if not token:
            return None
    if any(c.isspace() for c in token) or not token.isprintable():
        raise ValueError("token must be printable and contain no whitespace")
    return token


def _deny(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that refuses the call."""

    def abort(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` (UNAUTHENTICATED)."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("token must be a non-empty string")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method or ""
        if method.startswith(_OPEN_PREFIXES):
            return continuation(handler_call_details)
        sent = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                sent = value.encode() if isinstance(value, str) else bytes(value)
                break
        if sent is not None and hmac.compare_digest(sent, self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:  # unknown method: let gRPC answer UNIMPLEMENTED... after auth
            return grpc.unary_unary_rpc_method_handler(lambda r, c: c.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token"))
        return _deny(handler, "missing bearer token" if sent is None else "wrong bearer token")
