"""Bearer-token authentication for the storage service (a server interceptor).

Clients send ``authorization: Bearer <token>`` metadata. The token comes from a file
(``--token-file``; surrounding whitespace stripped) or the ``NESSA_TOKEN`` environment
variable. Comparison is constant-time. The gRPC health service stays open so load balancers
and orchestrators can probe without the secret; everything else (including reflection) needs
the token. Use it together with TLS: a bearer token on a plaintext socket can be sniffed.

The decision is made from the call's metadata alone, before any request byte is read: a refused
call gets a request-streaming handler that aborts without reading its request, so an
unauthenticated client cannot make the server buffer a large message (``bench/push_memory.py``,
receive limit raised to 128 MiB: 8 concurrent 120 MiB requests without token cost the server
+20 MiB; refused by a unary handler, which gRPC runs only after reading the body, +755 MiB).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import grpc

__all__ = ["TOKEN_ENV", "load_token", "BearerTokenInterceptor", "refusing_handler", "is_quick"]

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


def refusing_handler(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler that answers ``code`` at once without reading the request (any kind of method:
    the kind is the server's business, the client sees only the status)."""

    def abort(request_iterator, context):
        context.abort(code, message)

    abort._nessa_quick = True  # the server runs it on its small quick pool (server._Router)
    return grpc.stream_stream_rpc_method_handler(abort)


def is_quick(handler: grpc.RpcMethodHandler) -> bool:
    """Whether ``handler`` came from ``refusing_handler``."""
    behavior = handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary
    return bool(getattr(behavior, "_nessa_quick", False))


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
        # Unknown methods are refused the same way: UNIMPLEMENTED only after auth.
        return refusing_handler(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token" if sent is None else "wrong bearer token")
