"""PushModel checks (safetensors only, known arch, shapes, finite, size cap) and model-based Select."""

from __future__ import annotations

import hashlib
import io
import time

import grpc
import numpy as np
import pytest
import torch
from safetensors.torch import save

from host.models import build_model
from tests.service.helpers import make_root, running
from storage_service._proto import nessa_pb2 as pb
from storage_service.client import StorageClient, StorageError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def target(root):
    with running(root, max_model_bytes=4 << 20) as (_, port):
        yield f"127.0.0.1:{port}"


def _model_a(seed=0):
    torch.manual_seed(seed)
    return build_model("small_cnn", (1, 8, 8), 4)


def _code(fn, *a, **kw):
    with pytest.raises(StorageError) as info:
        fn(*a, **kw)
    return info.value.code, info.value.details


def test_push_checks_and_registers(target):
    with StorageClient(target) as c:
        info = c.push_model("small_cnn", _model_a(), 1, dataset="a")
        assert info.version == 1 and info.arch == "small_cnn" and info.datasets == ["a"]
        blob = save({k: v.contiguous() for k, v in _model_a().state_dict().items()})
        assert info.sha256 == hashlib.sha256(blob).hexdigest() and info.size == len(blob)
        # No data set named: checked against every one, fits only "a" (b is 3x4x4).
        assert c.push_model("small_cnn", blob, 2).datasets == ["a"]
        assert c.push_model("small_cnn", blob, 2).datasets == ["a"]  # same bytes again: a no-op


@pytest.mark.parametrize(
    "case,code,words",
    [
        ("garbage", grpc.StatusCode.INVALID_ARGUMENT, "safetensors"),
        ("pickle", grpc.StatusCode.INVALID_ARGUMENT, "safetensors"),
        ("arch", grpc.StatusCode.INVALID_ARGUMENT, "unknown model arch"),
        ("shapes", grpc.StatusCode.INVALID_ARGUMENT, "shape"),
        ("missing", grpc.StatusCode.INVALID_ARGUMENT, "missing"),
        ("nan", grpc.StatusCode.INVALID_ARGUMENT, "non-finite"),
        ("version", grpc.StatusCode.INVALID_ARGUMENT, "version"),
        ("dataset", grpc.StatusCode.NOT_FOUND, "not found"),
        ("fits-none", grpc.StatusCode.INVALID_ARGUMENT, "fits no data set"),
        ("huge", grpc.StatusCode.RESOURCE_EXHAUSTED, "cap"),
    ],
)
def test_bad_models_refused(target, case, code, words):
    state = _model_a().state_dict()
    arch, version, dataset = "small_cnn", 5, "a"
    if case == "garbage":
        blob = b"\x00" * 100
    elif case == "pickle":
        buf = io.BytesIO()
        torch.save(state, buf)
        blob = buf.getvalue()
    elif case == "arch":
        arch, blob = "vgg_evil", save(dict(state))
    elif case == "shapes":
        blob = save(dict(build_model("small_cnn", (3, 4, 4), 3).state_dict()))
    elif case == "missing":
        blob = save({k: v for k, v in state.items() if not k.startswith("head")})
    elif case == "nan":
        state["head.weight"][0, 0] = float("nan")
        blob = save(dict(state))
    elif case == "version":
        version, blob = 0, save(dict(state))
    elif case == "dataset":
        dataset, blob = "nope", save(dict(state))
    elif case == "fits-none":
        dataset, blob = None, save({k: v.contiguous() for k, v in build_model("small_cnn", (1, 28, 28), 10).state_dict().items()})
    else:
        blob = b"\x00" * (5 << 20)
    with StorageClient(target) as c:
        got, details = _code(c.push_model, arch, blob, version, dataset=dataset)
    assert got == code and words in details


def test_checksum_and_header_checked(target):
    blob = save(dict(_model_a().state_dict()))
    with grpc.insecure_channel(target) as ch:
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=lambda m: m.SerializeToString(), response_deserializer=pb.ModelInfo.FromString)
        header = pb.ModelHeader(arch="small_cnn", version=3, size=len(blob), sha256="0" * 64, dataset="a")
        with pytest.raises(grpc.RpcError) as info:
            push(iter([pb.PushModelChunk(header=header, data=blob)]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "checksum" in info.value.details()
        header.sha256 = hashlib.sha256(blob).hexdigest()
        header.size = len(blob) + 1
        with pytest.raises(grpc.RpcError) as info:
            push(iter([pb.PushModelChunk(header=header, data=blob)]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        header.size = 10 << 20  # announced size over the cap: refused before the bytes arrive
        with pytest.raises(grpc.RpcError) as info:
            push(iter([pb.PushModelChunk(header=header)]))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_craig_selection_with_pushed_model(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (srv, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert _code(c.select, "a", "craig", 0.2)[0] == grpc.StatusCode.FAILED_PRECONDITION
        c.push_model("small_cnn", _model_a(1), 7, dataset="a")
        assert _code(c.select, "a", "craig", 0.2, model_version=8)[0] == grpc.StatusCode.FAILED_PRECONDITION  # SERVICE.md: unknown version
        assert _code(c.select, "img/b", "craig", 0.2)[0] == grpc.StatusCode.FAILED_PRECONDITION  # no model fits b
        pending = c.select("a", "craig", 0.2, seed=3, wait=False)
        assert pending.state == "running" and pending.model_version == 7
        sel = c.select("a", "craig", 0.2, seed=3)
        assert sel.id == pending.id and sel.state == "done" and sel.strategy == "craig" and sel.model_version == 7
        counts = [int(np.ceil(0.2 * n - 1e-9)) for n in c.get_dataset("a").class_counts]
        assert sel.class_counts == counts and sel.num_selected == sum(counts) and sel.objective > 0
        ids, weights = srv.core.selections.arrays(sel.id)
        assert abs(float(weights.sum()) - len(ids)) < 1e-3 * len(ids) and weights.min() > 0
        streamed = list(c.stream_samples("a", selection=sel.id, seed=5))
        got = dict(zip(np.concatenate([b.ids for b in streamed]).tolist(), np.concatenate([b.weights for b in streamed]).tolist()))
        assert got == dict(zip(ids.tolist(), weights.tolist()))
        # A newer model changes the selection id; the old one stays readable.
        c.push_model("small_cnn", _model_a(2), 8, dataset="a")
        assert c.select("a", "craig", 0.2, seed=3, wait=False).id != sel.id
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert c.get_selection(sel.id) == sel  # persisted across restart
        again = c.select("a", "craig", 0.2, seed=3, model_version=7)
        assert again == sel  # the model survived the restart too, and the id is reused


def test_push_in_odd_chunks_is_stored_byte_exact(tmp_path):
    """Chunks of any size (1 byte, odd sizes, a header-only first chunk) reassemble on disk exactly."""
    root = make_root(tmp_path)
    blob = save({k: v.contiguous() for k, v in _model_a(4).state_dict().items()})
    header = pb.ModelHeader(arch="small_cnn", version=9, size=len(blob), sha256=hashlib.sha256(blob).hexdigest(), dataset="a")
    cuts = [0, 1, 2, 9, 4096, 4097, 30_000, len(blob)]
    chunks = [pb.PushModelChunk(header=header)] + [pb.PushModelChunk(data=blob[a:b]) for a, b in zip(cuts, cuts[1:])]
    with running(root, data_port=None) as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=pb.ModelInfo.FromString)
        assert push(iter(chunks), timeout=10).sha256 == header.sha256
    folder = root / ".nessa" / "models"
    assert (folder / "v9.safetensors").read_bytes() == blob
    assert sorted(p.name for p in folder.iterdir()) == ["v9.json", "v9.safetensors"]  # no temp file left


def test_interrupted_push_leaves_nothing(tmp_path):
    """A client that dies half-way through a push: no model, no temp file, the slot free again."""
    root = make_root(tmp_path)
    blob = save({k: v.contiguous() for k, v in _model_a(5).state_dict().items()})
    header = pb.ModelHeader(arch="small_cnn", version=2, size=len(blob), sha256=hashlib.sha256(blob).hexdigest(), dataset="a")

    def dying():
        yield pb.PushModelChunk(header=header, data=blob[:20_000])
        raise RuntimeError("client crashed")

    with running(root, data_port=None, max_pushes=1) as (srv, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=pb.ModelInfo.FromString)
        with pytest.raises(grpc.RpcError) as info:
            push(dying(), timeout=10)
        assert info.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)
        folder = root / ".nessa" / "models"
        left = lambda: list(folder.iterdir()) if folder.is_dir() else []  # noqa: E731
        deadline = time.monotonic() + 5
        while (left() or srv.core.models._pushes._value == 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert left() == [] and srv.core.models.versions() == []
        with StorageClient(f"127.0.0.1:{port}") as c:  # the push slot was released
            assert c.push_model("small_cnn", blob, 2, dataset="a").version == 2


def test_bfloat16_model_selects(tmp_path):
    """A model pushed in bf16 passes the checks and is used (cast on load) by a model-based Select."""
    root = make_root(tmp_path)
    state = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous() for k, v in _model_a(6).state_dict().items()}
    with running(root, data_port=None) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert c.push_model("small_cnn", save(state), 1, dataset="a").datasets == ["a"]
        sel = c.select("a", "craig", 0.2, model_version=1)
        assert sel.state == "done" and sel.num_selected > 0 and sel.objective > 0
