"""Service errors raised by the plain functions behind the servicer, each naming its gRPC status.

The servicer turns a ``ServiceError`` into ``context.abort(code, message)``; any other exception
becomes INTERNAL with a message, so the service never answers UNKNOWN.
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
]


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
