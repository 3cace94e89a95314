"""Helpers shared by the storage-service tests: small generated stores and a running server."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import numpy as np

from storage_service.ingest import write_store
from storage_service.server import create_server


def make_root(root: Path) -> Path:
    """A store root with ``a`` (600 x 1x8x8, 4 classes, several shards) and ``img/b`` (90 x 3x4x4)."""
    rng = np.random.default_rng(1234)
    write_store(root / "a", rng.integers(0, 256, (600, 1, 8, 8), dtype=np.uint8), rng.integers(0, 4, 600), name="a", shard_bytes=16 << 10)
    write_store(root / "img" / "b", rng.integers(0, 256, (90, 3, 4, 4), dtype=np.uint8), np.arange(90) % 3, name="b")
    return root


@contextlib.contextmanager
def running(root: Path, addr: str = "127.0.0.1:0", **kw):
    server, port = create_server(addr, root, **kw)
    try:
        yield server, port
    finally:
        server.stop(grace=0.5)


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for localhost / 127.0.0.1 (openssl CLI)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key
