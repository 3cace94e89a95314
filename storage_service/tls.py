"""TLS for the storage service: server credentials from PEM files, checked up front."""

from __future__ import annotations

import os
from pathlib import Path

import grpc

__all__ = ["read_pem", "read_key_pair", "server_credentials", "credentials_from_pems"]


def read_pem(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of a PEM file, or ValueError naming ``what`` (e.g. "--tls-cert") and the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{what}: {str(p)!r} is not a PEM file")
    return data


def read_key_pair(cert_file: str | os.PathLike, key_file: str | os.PathLike) -> tuple[bytes, bytes]:
    """``(certificate chain, private key)`` PEM bytes, each checked to hold what it should."""
    cert = read_pem(cert_file, "TLS certificate")
    key = read_pem(key_file, "TLS key")
    if b"PRIVATE KEY-----" not in key:
        raise ValueError(f"TLS key: {str(key_file)!r} holds no private key")
    if b"CERTIFICATE-----" not in cert:
        raise ValueError(f"TLS certificate: {str(cert_file)!r} holds no certificate")
    return cert, key


def server_credentials(cert_file: str | os.PathLike, key_file: str | os.PathLike) -> grpc.ServerCredentials:
    """Credentials for a TLS server with this certificate chain and private key."""
    return credentials_from_pems(*read_key_pair(cert_file, key_file))


def credentials_from_pems(cert: bytes, key: bytes) -> grpc.ServerCredentials:
    """gRPC-Python server credentials from PEM bytes already read and checked (``read_key_pair``)."""
    return grpc.ssl_server_credentials([(key, cert)])
