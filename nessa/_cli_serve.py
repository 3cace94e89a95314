"""``nessa serve STORE_ROOT``: run the gRPC storage service until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse

from host.backends import backend_names

__all__ = ["register"]


def _port_type(option: str):
    def parse(text: str) -> int:
        try:
            port = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be an integer, got {text!r}") from None
        if not 0 <= port <= 65535:
            raise argparse.ArgumentTypeError(f"{option} must be in [0, 65535], got {port}")
        return port

    return parse


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the stores under STORE_ROOT over gRPC (select + stream subsets)",
        description="Serve every store under STORE_ROOT over gRPC (nessa.v1.Storage, health, reflection). "
        "Binds 127.0.0.1 unless --host says otherwise. Token: --token-file, else $NESSA_TOKEN, else none.",
    )
    p.add_argument("store_root", metavar="STORE_ROOT")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=_port_type("--port"), default=50051, help="port (default 50051; 0 picks a free one)")
    p.add_argument("--data-port", type=_port_type("--data-port"), default=0,
                   help="port of the data plane (StreamSamples on gRPC C++, same host, TLS and token; clients "
                   "find it with GetServerInfo). Default 0: a free port; give one to open it in a firewall")
    p.add_argument("--no-data-plane", action="store_true", help="run no data plane: clients stream through --port")
    p.add_argument("--tls-cert", help="PEM certificate chain (with --tls-key turns on TLS)")
    p.add_argument("--tls-key", help="PEM private key")
    p.add_argument("--token-file", help="file holding the bearer token clients must send")
    p.add_argument("--backend", choices=backend_names(served=True), default="cpu", help="default selection backend (default cpu)")
    p.add_argument("--workers", type=int, default=32, help="RPC threads (default 32)")
    p.add_argument("--select-workers", type=int, default=1, help="selection worker threads (default 1)")
    p.add_argument("--max-model-mb", type=float, default=256.0, help="largest model a client may push, MiB (default 256)")
    p.add_argument("--grace", type=float, default=10.0, help="seconds calls in flight get at shutdown (default 10)")
    g = p.add_argument_group("limits", "bounds on what clients can make the server hold (SERVICE.md, Limits)")
    g.add_argument("--max-streams", type=int, default=None,
                   help="StreamSamples at once per port; more get RESOURCE_EXHAUSTED (default 4 x --workers)")
    g.add_argument("--max-request-kib", type=float, default=64.0, help="largest unary request, KiB (default 64)")
    g.add_argument("--max-push-chunk-mib", type=float, default=4.0, help="largest PushModel chunk message, MiB (default 4)")
    g.add_argument("--max-pushes", type=int, default=2, help="model pushes received at once (default 2)")
    g.add_argument("--max-queued-selections", type=int, default=16,
                   help="selections queued or running at once; 0: no bound (default 16)")
    g.add_argument("--max-embed-jobs", type=int, default=4, help="embedding jobs (nessa embed) running at once (default 4)")
    g.add_argument("--keep-models", type=int, default=4, help="model versions kept on disk; 0: all (default 4)")
    g.add_argument("--keep-selections", type=int, default=16,
                   help="finished selections kept per data set, most recently used; 0: all (default 16)")
    p.set_defaults(func=_serve)


def _serve(args) -> int:
    import logging
    import signal
    import threading
    from pathlib import Path

    from storage_service.auth import load_token
    from nessa._errors import CliError
    from storage_service.server import create_server

    if not Path(args.store_root).is_dir():
        raise CliError(f"STORE_ROOT {args.store_root!r} is not a directory")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise CliError("--tls-cert and --tls-key go together")
    if args.workers < 2 or args.select_workers < 1:
        raise CliError("--workers must be >= 2 and --select-workers >= 1")
    if not args.max_model_mb > 0:  # also rejects NaN
        raise CliError(f"--max-model-mb must be positive, got {args.max_model_mb}")
    if not args.grace >= 0:
        raise CliError(f"--grace must be >= 0 seconds, got {args.grace}")
    if args.max_streams is not None and args.max_streams < 1:
        raise CliError(f"--max-streams must be >= 1, got {args.max_streams}")
    if not args.max_request_kib >= 1:  # also rejects NaN
        raise CliError(f"--max-request-kib must be >= 1, got {args.max_request_kib}")
    if not args.max_push_chunk_mib >= 1 / 1024:
        raise CliError(f"--max-push-chunk-mib must be >= 1/1024 (1 KiB), got {args.max_push_chunk_mib}")
    for flag, value, least in (("--max-pushes", args.max_pushes, 1), ("--max-queued-selections", args.max_queued_selections, 0),
                               ("--keep-models", args.keep_models, 0), ("--keep-selections", args.keep_selections, 0),
                               ("--max-embed-jobs", args.max_embed_jobs, 1)):
        if value < least:
            raise CliError(f"{flag} must be >= {least}, got {value}")
    if args.backend == "xrt":  # fail now, not at the first selection a client asks for
        from host.device.loader import load_runtime

        try:
            load_runtime("xrt")
        except RuntimeError as exc:
            raise CliError(f"--backend xrt: {exc}") from None
    try:
        token = load_token(args.token_file)
    except ValueError as exc:
        raise CliError(f"--token-file: {exc}") from None
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        server, port = create_server(
            f"{host}:{args.port}",
            args.store_root,
            token=token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            backend=args.backend,
            max_workers=args.workers,
            select_workers=args.select_workers,
            max_model_bytes=int(args.max_model_mb * (1 << 20)),
            data_port=None if args.no_data_plane else args.data_port,
            max_streams=args.max_streams,
            max_request_bytes=int(args.max_request_kib * 1024),
            max_push_chunk_bytes=int(args.max_push_chunk_mib * (1 << 20)),
            max_pushes=args.max_pushes,
            max_queued_selections=args.max_queued_selections,
            keep_models=args.keep_models,
            keep_selections=args.keep_selections,
            max_embed_jobs=args.max_embed_jobs,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    names = server.core.dataset_names()
    print(f"nessa serve: listening on {args.host}:{port} ({'TLS' if args.tls_cert else 'plaintext'}, "
          f"{'token' if token else 'no token'}), data plane on {f'port {server.data_port}' if server.data_port else 'none'}, "
          f"{len(names)} data set(s): {', '.join(names) or '-'}", flush=True)
    stop.wait()
    print("nessa serve: shutting down", flush=True)
    server.stop(grace=args.grace)
    return 0
