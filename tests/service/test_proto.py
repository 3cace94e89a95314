"""The committed stubs match proto/nessa.proto, and every element of the contract is documented."""

from __future__ import annotations

import re

import pytest

from storage_service._proto import generate, nessa_pb2


_GRPC_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '[^']*'$", re.M)


def _unstamped(text: str) -> str:
    return _GRPC_STAMP.sub("GRPC_GENERATED_VERSION = ''", text)


def test_grpc_stub_floor_matches_pyproject():
    committed = (generate.STUB_DIR / "nessa_pb2_grpc.py").read_text()
    stamp = _GRPC_STAMP.search(committed).group(0).split("'")[1]
    pyproject = (generate.STUB_DIR.parents[1] / "pyproject.toml").read_text()
    assert re.search(r'"grpcio>=([\d.]+)"', pyproject).group(1) == stamp


def test_committed_stubs_are_current(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools is a dev dependency")
    generate.generate(tmp_path)
    from google.protobuf import descriptor_pb2

    # Same descriptor as protoc makes from the .proto today: the stubs are not stale.
    fresh = descriptor_pb2.FileDescriptorProto()
    text = (tmp_path / "nessa_pb2.py").read_text()
    committed_text = (generate.STUB_DIR / "nessa_pb2.py").read_text()
    version = lambda t: re.search(r"Protobuf Python Version: (\S+)", t).group(1)  # noqa: E731
    if version(text) == version(committed_text):
        # Same protoc: identical files, but for the grpcio-tools version the grpc stub stamps (a
        # tools patch release changes nothing else); that stamp is the runtime floor, checked
        # against pyproject by test_grpc_stub_floor_matches_pyproject.
        for name in generate.STUB_FILES:
            fresh_text = _unstamped((tmp_path / name).read_text())
            assert fresh_text == _unstamped((generate.STUB_DIR / name).read_text()), f"{name} is stale: run python -m storage_service._proto.generate"
    ns: dict = {}
    blob = re.search(r"AddSerializedFile\((b'.*?')\)\n", text, re.S).group(1)
    fresh.ParseFromString(eval(blob, ns))  # noqa: S307 - a bytes literal protoc just wrote
    committed = descriptor_pb2.FileDescriptorProto()
    nessa_pb2.DESCRIPTOR.CopyToProto(committed)
    assert committed == fresh


def test_runtime_is_not_older_than_gencode():
    import google.protobuf

    committed = (generate.STUB_DIR / "nessa_pb2.py").read_text()
    gen = tuple(int(x) for x in re.search(r"Protobuf Python Version: (\d+)\.(\d+)\.(\d+)", committed).groups())
    runtime = tuple(int(x) for x in google.protobuf.__version__.split(".")[:3])
    assert runtime >= gen
    # pyproject's lower bound is the gencode version.
    pyproject = (generate.STUB_DIR.parents[1] / "pyproject.toml").read_text()
    bound = re.search(r'"protobuf>=([\d.]+)"', pyproject).group(1)
    assert tuple(int(x) for x in bound.split(".")) == gen


def test_every_element_is_documented():
    lines = (generate.PROTO_DIR / "nessa.proto").read_text().splitlines()
    element = re.compile(r"^\s*(message|enum|service|rpc|repeated|string|bytes|bool|double|float|u?int(32|64)|[A-Z][A-Za-z]*\s+\w+\s*=|[A-Z_0-9]+\s*=)")
    undocumented, checked = [], 0
    for i, line in enumerate(lines):
        if element.match(line):
            checked += 1
            if not lines[i - 1].strip().startswith("//"):
                undocumented.append(f"{i + 1}: {line.strip()}")
    assert undocumented == []
    assert checked > 80  # messages, fields, enums, values, rpcs
    assert "package nessa.v1;" in lines
