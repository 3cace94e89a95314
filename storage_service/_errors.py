"""Service errors raised by the plain functions behind the servicer, each naming its gRPC status.

The servicer turns a ``ServiceError`` into ``context.abort(code, message)``; any other exception
becomes INTERNAL with a message, so the service never answers UNKNOWN. Messages name what was
wrong but never echo unbounded input: ``shown(value)`` is the form a name takes in a message
(at most ``MAX_SHOWN_CHARS`` characters of its repr), and the servicer cuts a whole message to
``MAX_DETAILS_CHARS`` (gRPC clients refuse status details beyond their metadata limit, 8 KiB by
default, and would report RESOURCE_EXHAUSTED instead of the real code).
"""

from __future__ import annotations

import grpc

__all__ = [
    "ServiceError",
    "InvalidArgument",
    "NotFound",
    "FailedPrecondition",
    "ResourceExhausted",
    "AlreadyExists",
    "Unauthenticated",
    "Unavailable",
    "DataLoss",
    "MAX_SHOWN_CHARS",
    "MAX_DETAILS_CHARS",
    "shown",
    "clip",
    "is_disk_full",
]

#: Longest repr of a client-supplied value inside an error message.
MAX_SHOWN_CHARS = 120
#: Longest status message the service sends.
MAX_DETAILS_CHARS = 2000


def shown(value) -> str:
    """``repr(value)``, cut to MAX_SHOWN_CHARS with its full length named (a name in a message)."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    length = f"{len(value)} characters" if isinstance(value, (str, bytes)) else f"{len(text)} characters shown"
    return f"{text[:MAX_SHOWN_CHARS]}... ({length})"


def clip(message: str) -> str:
    """``message`` cut to MAX_DETAILS_CHARS (the last resort for text built from input)."""
    if len(message) <= MAX_DETAILS_CHARS:
        return message
    return message[: MAX_DETAILS_CHARS - 30] + f"... ({len(message)} characters)"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the file system saying it has no room (ENOSPC) or quota (EDQUOT) left."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class ServiceError(Exception):
    """Base: ``code`` is the gRPC status the client receives, the message its details."""

    code = grpc.StatusCode.INTERNAL


class InvalidArgument(ServiceError, ValueError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError, LookupError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(ServiceError):
    """The server cannot take the call now (it is stopping): a client may retry elsewhere or later."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(ServiceError):
    """Stored bytes no longer match their record (a model file whose sha256 changed on disk)."""

    code = grpc.StatusCode.DATA_LOSS
