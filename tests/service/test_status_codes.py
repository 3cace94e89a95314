"""Status codes the issue found wrong, over real gRPC: echoed huge names, float8 weights, an
unknown model version, garbage request bytes, a full disk, a model file changed on disk."""

from __future__ import annotations

import hashlib
import os
import subprocess

import grpc
import pytest
import torch
from safetensors.torch import save

from host.models import build_model
from storage_service._errors import MAX_DETAILS_CHARS
from storage_service._proto import nessa_pb2 as pb
from storage_service.client import SelectionFailed, StorageClient, StorageError
from tests.service.helpers import make_root, running

_SER = lambda m: m.SerializeToString()  # noqa: E731
_RAW = lambda b: b  # noqa: E731


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("codes"))


def _state(seed=0) -> dict:
    torch.manual_seed(seed)
    return {k: v.contiguous() for k, v in build_model("small_cnn", (1, 8, 8), 4).state_dict().items()}


def _code(fn, *a, **kw):
    with pytest.raises((grpc.RpcError, StorageError)) as info:
        fn(*a, **kw)
    e = info.value
    return (e.code(), e.details()) if isinstance(e, grpc.RpcError) else (e.code, e.details)


def test_huge_name_is_not_found_with_a_short_message(root):
    """A 4 MiB name (the server allowing such requests) is NOT_FOUND; echoed whole, the message
    exceeded the client's metadata limit and the client saw RESOURCE_EXHAUSTED."""
    name = "n" * (4 << 20)
    with running(root, data_port=None, max_request_bytes=8 << 20, max_push_chunk_bytes=8 << 20) as (_, port), \
            StorageClient(f"127.0.0.1:{port}", data_plane=False) as c:
        for call in (lambda: c.get_dataset(name), lambda: c.get_selection(name),
                     lambda: list(c.stream_samples(name, selection="full")), lambda: c.select(name, "random", 0.5),
                     lambda: list(c.stream_samples("a", selection=name))):
            code, details = _code(call)
            assert code == grpc.StatusCode.NOT_FOUND, details
            assert len(details) <= MAX_DETAILS_CHARS and "characters" in details


def test_float8_weights_are_invalid_argument(root):
    state = _state()
    state["fc.weight"] = state["fc.weight"].to(torch.float8_e4m3fn)
    with running(root, data_port=None) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        code, details = _code(c.push_model, "small_cnn", save(state), 1, dataset="a")
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "F8_E4M3" in details and "fc.weight" in details
        state = _state()
        state["fc.bias"] = state["fc.bias"].to(torch.bfloat16)
        state["fc.bias"][3] = float("inf")  # non-finite in bf16: caught on the raw bits
        code, details = _code(c.push_model, "small_cnn", save(state), 1, dataset="a")
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "non-finite" in details
        state["fc.bias"][3] = 0.5  # bf16 is a plain float: accepted
        assert c.push_model("small_cnn", save(state), 1, dataset="a").version == 1


def test_unknown_model_version_is_failed_precondition(root):
    with running(root, data_port=None) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        c.push_model("small_cnn", save(_state()), 2, dataset="a")
        code, details = _code(c.select, "a", "craig", 0.2, model_version=99)
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "99" in details and "2]" in details


#: Every RPC of the service, read from the wire contract (a new RPC is covered without editing this).
_METHODS = list(pb.DESCRIPTOR.services_by_name["Storage"].methods)


@pytest.mark.parametrize("method", _METHODS, ids=lambda m: m.name)
def test_garbage_request_bytes_are_invalid_argument(root, method):
    garbage = b"\xff\xff\xff\xff\x0f"  # a truncated varint: no protobuf message
    with running(root, data_port=None) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        path = f"/nessa.v1.Storage/{method.name}"
        kind = {(False, True): ch.unary_stream, (True, False): ch.stream_unary, (False, False): ch.unary_unary}
        stub = kind[(method.client_streaming, method.server_streaming)](path, request_serializer=_RAW, response_deserializer=_RAW)
        if method.server_streaming:
            call = lambda: next(stub(garbage, timeout=5))  # noqa: E731
        elif method.client_streaming:
            call = lambda: stub(iter([garbage]), timeout=5)  # noqa: E731
        else:
            call = lambda: stub(garbage, timeout=5)  # noqa: E731
        code, details = _code(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid" in details


def test_model_file_changed_on_disk_is_data_loss(tmp_path):
    root = make_root(tmp_path)
    with running(root, data_port=None) as (srv, port), StorageClient(f"127.0.0.1:{port}") as c:
        c.push_model("small_cnn", save(_state()), 5, dataset="a")
        path = root / ".nessa" / "models" / "v5.safetensors"
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x01  # one flipped bit in a weight: still valid safetensors, different model
        path.write_bytes(bytes(data))
        code, details = _code(c.select, "a", "craig", 0.2, model_version=5)
        assert code == grpc.StatusCode.DATA_LOSS and "v5" in details and "push the model again" in details
        with pytest.raises(Exception) as info:  # the read used by a selection checks too
            srv.core.models.load_state(5)
        assert type(info.value).__name__ == "DataLoss"
        c.push_model("small_cnn", save(_state()), 5, dataset="a")  # pushing the same bytes again repairs it
        assert c.select("a", "craig", 0.2, model_version=5).state == "done"


@pytest.fixture()
def small_disk(tmp_path):
    """A store root whose .nessa/models and .nessa/selections are 64 KiB tmpfs mounts (a real
    full disk: ENOSPC)."""
    root = make_root(tmp_path)
    mounted = []
    try:
        for name in ("models", "selections"):
            folder = root / ".nessa" / name
            folder.mkdir(parents=True)
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
            if done.returncode != 0:
                pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
            mounted.append(folder)
        yield root
    finally:
        for folder in mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_is_resource_exhausted_and_leaves_nothing(small_disk):
    models = small_disk / ".nessa" / "models"
    with running(small_disk, data_port=None) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        (models / "filler").write_bytes(b"\0" * (30 << 10))
        blob = save(_state())  # ~54 KiB: does not fit in what is left
        code, details = _code(c.push_model, "small_cnn", blob, 1, dataset="a")
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "no room" in details
        assert sorted(p.name for p in models.iterdir()) == ["filler"]
        (models / "filler").unlink()
        assert c.push_model("small_cnn", blob, 1, dataset="a").sha256 == hashlib.sha256(blob).hexdigest()


def test_messages_are_clipped(root):
    """Whatever a message is built from, the status details stay under MAX_DETAILS_CHARS."""
    with running(root, data_port=None) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=_SER, response_deserializer=pb.ModelInfo.FromString)
        header = pb.ModelHeader(arch="a" * 50_000, version=1, size=10, sha256="0" * 64)
        code, details = _code(push, iter([pb.PushModelChunk(header=header, data=b"0" * 10)]), timeout=5)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown model arch" in details and len(details) <= MAX_DETAILS_CHARS


def test_full_disk_fails_a_selection_naming_it(small_disk):
    selections = small_disk / ".nessa" / "selections"
    fd = os.open(selections / "filler", os.O_WRONLY | os.O_CREAT)  # fill the file system to the last byte
    try:
        with pytest.raises(OSError):
            for _ in range(1000):
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    with running(small_disk, data_port=None) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        with pytest.raises(SelectionFailed) as info:
            c.select("a", "full")
        assert info.value.info.state == "failed" and "no room" in info.value.info.error
        assert sorted(p.name for p in selections.iterdir()) == ["filler"]  # no temp file left
        (selections / "filler").unlink()
        assert c.select("a", "full").state == "done"  # selecting again retries it
