"""What the long-job commands (`nessa distill`, `nessa embed`) share: where the job runs (in this
process on a store root, or on a storage service followed over gRPC) and the client to it."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_where_args", "service_client"]


def add_where_args(p: argparse.ArgumentParser, verb: str) -> None:
    """``--store ROOT | --server HOST:PORT``, the service's ``--token-file`` / ``--tls-ca``, and
    ``--threads`` / ``--quiet`` for the in-process run; ``verb`` words the help ("distil")."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--store", type=Path, metavar="ROOT", help=f"store root to {verb} in, in this process (default: .)")
    where.add_argument("--server", metavar="HOST:PORT", help=f"ask this storage service to {verb}, and follow its progress")
    p.add_argument("--token-file", type=Path, help="--server: file holding the service's bearer token")
    p.add_argument("--tls-ca", type=Path, help="--server: CA certificate of a TLS service")
    p.add_argument("--threads", type=int, default=1, help="--store: torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def service_client(args: argparse.Namespace):
    """A ``StorageClient`` for ``--server`` with the token and CA the flags name (CliError naming
    the flag when a file cannot be read)."""
    from nessa._errors import CliError
    from storage_service.auth import load_token
    from storage_service.client import StorageClient

    try:
        token = load_token(args.token_file)
    except ValueError as exc:
        raise CliError(f"--token-file: {exc}") from None
    try:
        cert = args.tls_ca.read_bytes() if args.tls_ca is not None else None
    except OSError as exc:
        raise CliError(f"--tls-ca: cannot read {args.tls_ca}: {exc.strerror}") from None
    return StorageClient(args.server, token=token, root_cert=cert)
