"""Regenerate the committed stubs from ``proto/nessa.proto``: ``python -m storage_service._proto.generate``.

Why committed (not generated at import): the runtime only needs ``protobuf`` (>= the gencode
version written at the top of ``nessa_pb2.py``; pyproject's lower bound matches it), not
``grpcio-tools``. ``tests/service/test_proto.py`` regenerates into a temporary folder and checks
the stubs are current. The only edit to protoc's output: the ``_grpc`` module imports its
sibling relatively, so the stubs live inside ``storage_service`` (no top-level ``nessa_pb2``).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["generate", "PROTO_DIR", "STUB_DIR", "STUB_FILES"]

STUB_DIR = Path(__file__).resolve().parent
PROTO_DIR = STUB_DIR.parents[1] / "proto"
STUB_FILES = ("nessa_pb2.py", "nessa_pb2.pyi", "nessa_pb2_grpc.py")


def generate(out_dir: str | Path = STUB_DIR, proto_dir: str | Path = PROTO_DIR) -> list[Path]:
    """Run protoc (from grpcio-tools) on ``nessa.proto``; returns the files written."""
    from grpc_tools import protoc  # dev dependency only

    out_dir, proto_dir = Path(out_dir), Path(proto_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rc = protoc.main(
        [
            "protoc",
            f"-I{proto_dir}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(proto_dir / "nessa.proto"),
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed with status {rc} on {proto_dir / 'nessa.proto'}")
    grpc_file = out_dir / "nessa_pb2_grpc.py"
    text = grpc_file.read_text()
    grpc_file.write_text(text.replace("import nessa_pb2 as nessa__pb2", "from . import nessa_pb2 as nessa__pb2"))
    return [out_dir / f for f in STUB_FILES]


if __name__ == "__main__":  # pragma: no cover
    for path in generate(*sys.argv[1:2]):
        print(path)
