"""Resource bounds of the storage server, over real gRPC on loopback: request and chunk size
limits, auth before the body, concurrent pushes, streams that cannot starve health checks or
unary calls, the selection queue, retention of models and selections, temp-file cleanup."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from safetensors.torch import save

from host.models import build_model
from storage_service._proto import nessa_pb2 as pb
from storage_service.client import StorageClient, StorageError
from storage_service.ingest import write_store
from tests.service.helpers import make_root, running

_SER = lambda m: m.SerializeToString()  # noqa: E731
_RAW = lambda b: b  # noqa: E731


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("limits"))


def _blob(seed=0) -> bytes:
    torch.manual_seed(seed)
    return save({k: v.contiguous() for k, v in build_model("small_cnn", (1, 8, 8), 4).state_dict().items()})


def _code(fn, *a, **kw):
    with pytest.raises((grpc.RpcError, StorageError)) as info:
        fn(*a, **kw)
    e = info.value
    return (e.code(), e.details()) if isinstance(e, grpc.RpcError) else (e.code, e.details)


def test_request_and_chunk_limits(root):
    with running(root, data_port=None, max_request_bytes=4096, max_push_chunk_bytes=32 << 10) as (_, port), \
            grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        get = ch.unary_unary("/nessa.v1.Storage/GetDataset", request_serializer=_SER, response_deserializer=pb.DatasetInfo.FromString)
        assert get(pb.GetDatasetRequest(name="a"), timeout=5).num_samples == 600
        code, details = _code(get, pb.GetDatasetRequest(name="x" * 5000), timeout=5)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "4096" in details
        # Above the transport limit (the larger of the two): refused by gRPC itself.
        code, _ = _code(get, pb.GetDatasetRequest(name="x" * (100 << 10)), timeout=5)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        # PushModel: chunks up to 32 KiB pass the limit; one message holding a larger model does not.
        blob = _blob()
        assert len(blob) > 32 << 10
        with StorageClient(f"127.0.0.1:{port}") as c:
            assert c.push_model("small_cnn", blob, 1, dataset="a", chunk_bytes=16 << 10).size == len(blob)
            code, details = _code(c.push_model, "small_cnn", blob, 2, dataset="a", chunk_bytes=len(blob))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = ch.unary_unary("/nessa.v1.Storage/GetServerInfo", request_serializer=_SER,
                                  response_deserializer=pb.ServerInfo.FromString)(pb.GetServerInfoRequest(), timeout=5)
            assert info.max_push_chunk_bytes == 32 << 10


def test_auth_is_decided_before_the_body(root):
    """A request over the unary limit without a token is UNAUTHENTICATED (the body is never read),
    the same request with the token RESOURCE_EXHAUSTED."""
    with running(root, data_port=None, token="s3cret") as (_, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        get = ch.unary_unary("/nessa.v1.Storage/GetDataset", request_serializer=_SER, response_deserializer=pb.DatasetInfo.FromString)
        big = pb.GetDatasetRequest(name="x" * (1 << 20))
        assert _code(get, big, timeout=5)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert _code(get, big, timeout=5, metadata=[("authorization", "Bearer s3cret")])[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=_SER, response_deserializer=pb.ModelInfo.FromString)
        assert _code(push, iter([pb.PushModelChunk(data=b"\0" * (1 << 20))]), timeout=5)[0] == grpc.StatusCode.UNAUTHENTICATED
        unknown = ch.unary_unary("/nessa.v1.Storage/Nope", request_serializer=_RAW, response_deserializer=_RAW)
        assert _code(unknown, b"", timeout=5)[0] == grpc.StatusCode.UNAUTHENTICATED


def test_concurrent_pushes_capped(root):
    blob = _blob()
    header = pb.ModelHeader(arch="small_cnn", version=3, size=len(blob), sha256=__import__("hashlib").sha256(blob).hexdigest(), dataset="a")
    release = threading.Event()

    def slow_chunks():
        yield pb.PushModelChunk(header=header, data=blob[:1000])
        release.wait(10)
        yield pb.PushModelChunk(data=blob[1000:])

    with running(root, data_port=None, max_pushes=1) as (srv, port), grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=_SER, response_deserializer=pb.ModelInfo.FromString)
        first = push.future(slow_chunks(), timeout=20)
        deadline = time.monotonic() + 5
        while srv.core.models._pushes._value != 0 and time.monotonic() < deadline:  # the first push holds the slot
            time.sleep(0.01)
        with StorageClient(f"127.0.0.1:{port}", retries=0) as c:
            code, details = _code(c.push_model, "small_cnn", blob, 4, dataset="a")
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "in progress" in details
        # A client that may retry waits for the slot: it is freed 0.3 s later.
        threading.Timer(0.3, release.set).start()
        with StorageClient(f"127.0.0.1:{port}", retries=8) as c:
            assert c.push_model("small_cnn", blob, 4, dataset="a").version == 4
        assert first.result().version == 3


def _big_root(tmp_path):
    """A data set large enough that a stream the client does not read blocks the server (8 MiB)."""
    rng = np.random.default_rng(0)
    write_store(tmp_path / "big", rng.integers(0, 256, (512, 1, 128, 128), dtype=np.uint8), np.arange(512) % 4, name="big")
    return tmp_path


def test_slow_streams_never_starve_health_or_unary_calls(tmp_path):
    """With --workers 4, 16 streams held open by clients that do not read (before: they filled the
    shared 4 x workers limit and health checks failed RESOURCE_EXHAUSTED)."""
    root = _big_root(tmp_path)
    with running(root, data_port=None, max_workers=4) as (srv, port):
        with StorageClient(f"127.0.0.1:{port}", data_plane=False) as c:  # opened (and verified) once, retrying
            assert sum(b.count for b in c.stream_samples("big", selection="full")) == 512
        # No BDP probing: the window stays at 64 KiB, so an unread stream stalls the server at once.
        channels = [grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.http2.bdp_probe", 0)]) for _ in range(16)]
        calls = []
        try:
            for ch in channels:
                stream = ch.unary_stream("/nessa.v1.Storage/StreamSamples", request_serializer=_SER, response_deserializer=_RAW)
                call = stream(pb.StreamSamplesRequest(dataset="big", selection="full", batch_bytes=1 << 20), timeout=30)
                next(call)  # started; then not read any more
                calls.append(call)
            time.sleep(0.3)
            assert srv._pools[0].held == 16  # every stream holds its thread, blocked on flow control
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                health = health_pb2_grpc.HealthStub(ch)
                for _ in range(5):
                    got = health.Check(health_pb2.HealthCheckRequest(service="nessa.v1.Storage"), timeout=2)
                    assert got.status == health_pb2.HealthCheckResponse.SERVING
                with StorageClient(f"127.0.0.1:{port}", timeout=2, data_plane=False) as c:
                    assert [d.name for d in c.list_datasets()] == ["big"]
                    assert c.select("big", "random", 0.1).state == "done"
                # The 17th stream is refused at once rather than queued.
                extra = ch.unary_stream("/nessa.v1.Storage/StreamSamples", request_serializer=_SER, response_deserializer=_RAW)
                code, details = _code(lambda: next(extra(pb.StreamSamplesRequest(dataset="big", selection="full"), timeout=5)))
                assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "streams" in details
        finally:
            for call in calls:
                call.cancel()
            for ch in channels:
                ch.close()


def test_selection_queue_is_bounded(root):
    with running(root, data_port=None, max_queued_selections=1) as (srv, port), StorageClient(f"127.0.0.1:{port}") as c:
        gate = threading.Event()
        srv.core.selections._pool.submit(gate.wait, 10)  # the one selection worker is busy
        try:
            first = c.select("a", "random", 0.1, seed=1, wait=False)
            assert first.state == "running"
            assert c.select("a", "random", 0.1, seed=1, wait=False).id == first.id  # asking again is no new work
            code, details = _code(c.select, "a", "random", 0.1, seed=2, wait=False)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "queued" in details
        finally:
            gate.set()
        assert c.select("a", "random", 0.1, seed=1).state == "done"
        assert c.select("a", "random", 0.1, seed=2).state == "done"  # room again


def test_selection_retention_keeps_the_most_recently_used(tmp_path):
    root = make_root(tmp_path)
    folder = root / ".nessa" / "selections"
    with running(root, data_port=None, keep_selections=2) as (_, port), StorageClient(f"127.0.0.1:{port}", data_plane=False) as c:
        s1 = c.select("a", "random", 0.1, seed=1)
        s2 = c.select("a", "random", 0.1, seed=2)
        other = c.select("img/b", "random", 0.5, seed=1)  # another data set: counted apart
        assert sum(b.count for b in c.stream_samples("a", selection=s1.id)) == s1.num_selected  # s1 used last
        s3 = c.select("a", "random", 0.1, seed=3)
        names = sorted(p.name for p in folder.glob("sel-*.arrow"))
        assert names == sorted(f"{s.id}.arrow" for s in (s1, s3, other))
        assert _code(c.get_selection, s2.id)[0] == grpc.StatusCode.NOT_FOUND
        assert c.get_selection(s1.id).state == "done"
        for seed in range(4, 20):  # many more: the folder stays bounded
            c.select("a", "random", 0.1, seed=seed)
        assert len(list(folder.glob("sel-*.arrow"))) == 3


def test_model_retention_keeps_versions_in_use(tmp_path):
    root = make_root(tmp_path)
    folder = root / ".nessa" / "models"
    with running(root, data_port=None, keep_models=1) as (srv, port), StorageClient(f"127.0.0.1:{port}") as c:
        c.push_model("small_cnn", _blob(1), 1, dataset="a")
        gate = threading.Event()
        srv.core.selections._pool.submit(gate.wait, 10)
        try:
            queued = c.select("a", "craig", 0.2, model_version=1, wait=False)  # queued: uses v1
            c.push_model("small_cnn", _blob(2), 2, dataset="a")
            c.push_model("small_cnn", _blob(3), 3, dataset="a")
            assert srv.core.models.versions() == [1, 3]  # v1 in use, v2 retired, v3 newest
        finally:
            gate.set()
        done = c.select("a", "craig", 0.2, model_version=1)
        assert done.id == queued.id and done.state == "done"
        for v in range(4, 10):
            c.push_model("small_cnn", _blob(v), v, dataset="a")
        assert srv.core.models.versions() == [9]
        assert sorted(p.name for p in folder.iterdir()) == ["v9.json", "v9.safetensors"]


def test_temp_files_of_killed_writes_removed_at_start(tmp_path):
    root = make_root(tmp_path)
    models, selections = root / ".nessa" / "models", root / ".nessa" / "selections"
    models.mkdir(parents=True)
    selections.mkdir(parents=True)
    junk = [models / ".push-0123abcd.tmp", models / "v3.safetensors.tmp123.456", models / "v3.json.tmp9.9",
            selections / ".sel-0123.arrow.tmp4242"]
    keep = [models / "notes.txt", selections / "sel-unrelated.arrow.bak"]
    for path in junk + keep:
        path.write_bytes(b"x" * 100)
    with running(root, data_port=None):
        assert [p for p in junk if p.exists()] == []
        assert all(p.exists() for p in keep)


@pytest.mark.parametrize("flag,value,words", [("--keep-models", "-1", "--keep-models must be >= 0"),
                                              ("--max-request-kib", "nan", "--max-request-kib"),
                                              ("--max-embed-jobs", "0", "--max-embed-jobs must be >= 1")])
def test_bad_limit_flags_named(root, flag, value, words):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "nessa", "serve", str(root), "--port", "0", flag, value],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and words in done.stderr


@pytest.mark.parametrize("option,value", [("max_pushes", 0), ("keep_selections", -1), ("max_request_bytes", 10),
                                          ("max_streams", True), ("max_queued_selections", 1.5), ("max_embed_jobs", 0)])
def test_bad_limit_options_named(root, option, value):
    from storage_service.server import create_server

    with pytest.raises(ValueError, match=option):
        create_server("127.0.0.1:0", root, **{option: value})


def test_retention_applies_at_start_to_what_an_earlier_server_left(tmp_path):
    root = make_root(tmp_path)
    with running(root, data_port=None, keep_selections=0, keep_models=0) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        made = [c.select("a", "random", 0.1, seed=s).id for s in range(5)]
        for v in range(1, 5):
            c.push_model("small_cnn", _blob(v), v, dataset="a")
    assert len(list((root / ".nessa" / "selections").glob("sel-*.arrow"))) == 5
    with running(root, data_port=None, keep_selections=2, keep_models=2) as (srv, port):
        assert sorted(p.stem for p in (root / ".nessa" / "selections").glob("sel-*.arrow")) == sorted(made[-2:])
        assert srv.core.models.versions() == [3, 4]
        assert len(list((root / ".nessa" / "models").iterdir())) == 4


def test_embed_job_cap_is_a_server_option(root):
    from storage_service.embed_jobs import DEFAULT_MAX_JOBS

    with running(root, data_port=None, max_embed_jobs=1) as (srv, _):
        assert srv.core.embeds.max_jobs == 1
    with running(root, data_port=None) as (srv, _):
        assert srv.core.embeds.max_jobs == DEFAULT_MAX_JOBS
