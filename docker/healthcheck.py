#!/usr/bin/env python3
"""Container health check: ask the storage service's gRPC health service (grpc.health.v1).

    healthcheck.py [--host 127.0.0.1] [--port 50051] [--service ""] [--tls-ca CERT]
                   [--server-name NAME] [--token-file FILE] [--timeout 3]

Exit 0 when the service answers SERVING, 1 otherwise (Docker's HEALTHCHECK contract); the
reason goes to stderr. The health service needs no token (storage_service/auth.py leaves it
open for load balancers); ``--token-file`` is sent anyway when given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def check(host: str, port: int, *, service: str = "", tls_ca: Path | None = None, server_name: str | None = None,
          token: str | None = None, timeout: float = 3.0) -> tuple[bool, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"{host}:{port}"
    if tls_ca is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target)
    metadata = [("authorization", f"Bearer {token}")] if token else None
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata)
    except grpc.RpcError as exc:
        return False, f"{target}: {exc.code().name}: {exc.details()}"
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="gRPC health check of a NeSSA storage service")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=50051)
    ap.add_argument("--service", default="", help='service name ("" = the whole server, or nessa.v1.Storage)')
    ap.add_argument("--tls-ca", type=Path, help="PEM certificate to trust (TLS); plain text without it")
    ap.add_argument("--server-name", help="name to check the certificate against (default: --host)")
    ap.add_argument("--token-file", type=Path)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args(argv)
    try:
        token = args.token_file.read_text().strip() if args.token_file else None
        ok, why = check(args.host, args.port, service=args.service, tls_ca=args.tls_ca,
                        server_name=args.server_name, token=token, timeout=args.timeout)
    except OSError as exc:
        ok, why = False, f"cannot read {exc.filename}: {exc.strerror}"
    print(f"healthcheck: {why}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
