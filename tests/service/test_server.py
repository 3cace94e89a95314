"""The storage service over real loopback sockets: every RPC, bad inputs, streaming semantics."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.service.helpers import make_root, running
from storage_service._proto import nessa_pb2 as pb
from storage_service._proto import nessa_pb2_grpc
from storage_service.client import StorageClient, StorageError
from storage_service.store import Store


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("svc"))


@pytest.fixture(scope="module")
def server(root):
    with running(root) as (srv, port):
        yield srv, port


@pytest.fixture(params=["native", "data-plane-grpcio", "main-port"])
def client(server, request, monkeypatch):
    """A client streaming from the data plane with gRPC C++ (the default), from the data plane
    with gRPC-Python (an install without the extension) or from the main port (gRPC-Python)."""
    from storage_service import _native_channel
    from storage_service.client import _PythonDataChannel

    if request.param == "data-plane-grpcio":
        monkeypatch.setattr(_native_channel, "_native", None)
    with StorageClient(f"127.0.0.1:{server[1]}", timeout=30, retries=0, data_plane=request.param != "main-port") as c:
        kind = {"native": _native_channel.NativeChannel, "data-plane-grpcio": _PythonDataChannel, "main-port": type(None)}
        assert isinstance(c._data_plane_channel(), kind[request.param])
        yield c


def _code(fn, *args, **kw) -> grpc.StatusCode:
    with pytest.raises(StorageError) as info:
        out = fn(*args, **kw)
        if hasattr(out, "__next__"):
            list(out)
    return info.value.code


def _ids(batches) -> np.ndarray:
    return np.concatenate([b.ids for b in batches]) if batches else np.empty(0, np.int64)


def test_list_and_get_datasets(client, root):
    names = [d.name for d in client.list_datasets()]
    assert names == ["a", "img/b"]
    info = client.get_dataset("img/b")
    st = Store(root / "img" / "b")
    assert (info.num_samples, info.num_classes, info.sample_shape, info.dtype) == (90, 3, (3, 4, 4), "uint8")
    assert info.class_counts == [30, 30, 30] and info.class_names == list(st.manifest.class_names)


def test_not_found(client):
    assert _code(client.get_dataset, "missing") == grpc.StatusCode.NOT_FOUND
    assert _code(client.get_selection, "sel-nope") == grpc.StatusCode.NOT_FOUND
    assert _code(client.select, "missing", "random", 0.5) == grpc.StatusCode.NOT_FOUND
    assert _code(client.stream_samples, "a", selection="sel-nope") == grpc.StatusCode.NOT_FOUND
    assert _code(client.stream_samples, "missing") == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("strategy,fraction", [("random", 0.0), ("random", 1.5), ("random", -0.1), ("random", float("nan")), ("random", float("inf")), ("full", 0.5)])
def test_bad_fraction_is_invalid_argument(client, strategy, fraction):
    assert _code(client.select, "a", strategy, fraction) == grpc.StatusCode.INVALID_ARGUMENT


def test_model_strategy_before_any_model_is_failed_precondition(client):
    assert _code(client.select, "a", "craig", 0.1) == grpc.StatusCode.FAILED_PRECONDITION


def test_bad_stream_arguments(client):
    sel = client.select("img/b", "random", 0.5)
    bad = [
        dict(selection="random"),  # no fraction: sent as 0
        dict(selection="full", rank=3, world_size=3),
        dict(selection="full", start_offset=91),
        dict(selection=""),
    ]
    for kw in bad[1:]:
        assert _code(client.stream_samples, "img/b", **kw) == grpc.StatusCode.INVALID_ARGUMENT, kw
    assert _code(client.stream_samples, "img/b", selection="random", fraction=0.0) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(client.stream_samples, "a", selection=sel.id) == grpc.StatusCode.INVALID_ARGUMENT  # other data set
    # Offset == share size is a finished stream, not an error.
    assert list(client.stream_samples("img/b", selection="full", start_offset=90)) == []


def test_select_random_summary_and_get_selection(client, root):
    sel = client.select("a", "random", 0.25, seed=7)
    st = Store(root / "a")
    budgets = [int(np.ceil(0.25 * c)) for c in st.manifest.class_counts]
    assert sel.state == "done" and sel.strategy == "random" and sel.fraction == 0.25 and sel.seed == 7
    assert sel.class_counts == budgets and sel.num_selected == sum(budgets)
    assert client.get_selection(sel.id) == sel
    again = client.select("a", "random", 0.25, seed=7)
    assert again.id == sel.id  # content-addressed
    assert client.select("a", "random", 0.25, seed=8).id != sel.id
    full = client.select("a", "full")
    assert full.num_selected == 600 and full.class_counts == list(st.manifest.class_counts)


def test_stream_returns_exactly_the_selection_with_weights_and_bytes(client, server, root):
    sel = client.select("a", "random", 0.3, seed=1)
    ids_file, w_file = server[0].core.selections.arrays(sel.id)
    batches = list(client.stream_samples("a", selection=sel.id, epoch=2, seed=9, batch_bytes=700))
    ids = _ids(batches)
    assert sorted(ids.tolist()) == sorted(ids_file.tolist()) and len(ids) == sel.num_selected
    assert all(b.count == len(b.ids) <= 700 // 64 for b in batches) and len(batches) > 5
    assert [b.offset for b in batches] == list(np.cumsum([0] + [b.count for b in batches[:-1]]))
    assert all(b.total == len(ids) and b.selection_id == sel.id and b.epoch == 2 for b in batches)
    weight_of = dict(zip(ids_file.tolist(), w_file.tolist()))
    st = Store(root / "a")
    for b in batches:
        samples, labels = st.take(b.ids)
        assert np.array_equal(b.samples, samples) and np.array_equal(b.labels, labels)
        assert b.weights.tolist() == [weight_of[i] for i in b.ids.tolist()]


def test_shuffled_order_permutation_seeded_and_sharded(client):
    one = _ids(list(client.stream_samples("a", selection="full", epoch=0, seed=3)))
    assert sorted(one.tolist()) == list(range(600)) and not np.array_equal(one, np.arange(600))
    assert np.array_equal(one, _ids(list(client.stream_samples("a", selection="full", epoch=0, seed=3))))
    assert not np.array_equal(one, _ids(list(client.stream_samples("a", selection="full", epoch=1, seed=3))))
    shares = [_ids(list(client.stream_samples("a", selection="full", epoch=0, seed=3, rank=r, world_size=3))) for r in range(3)]
    assert sum(len(s) for s in shares) == 600
    assert sorted(np.concatenate(shares).tolist()) == list(range(600))
    assert np.array_equal(shares[1], one[1::3])


def test_cancelled_stream_resumed_from_offset(client):
    kw = dict(selection="random", fraction=0.5, epoch=4, seed=2, rank=1, world_size=2, batch_bytes=640)
    whole = _ids(list(client.stream_samples("a", **kw)))
    got = []
    stream = client.stream_samples("a", **kw)
    for b in stream:
        got.append(b)
        if len(got) == 3:
            break
    stream.close()  # cancels the call on the server
    resume = got[-1].offset + got[-1].count
    rest = list(client.stream_samples("a", start_offset=resume, **kw))
    ids = np.concatenate([_ids(got), _ids(rest)])
    assert len(ids) == len(set(ids.tolist())) == len(whole)
    assert np.array_equal(ids, whole)


def test_eight_concurrent_clients(server):
    results, errors = {}, []

    def reader(k):
        try:
            with StorageClient(f"127.0.0.1:{server[1]}", retries=0) as c:
                ids = _ids(list(c.stream_samples("a", selection="full", seed=k, rank=k % 2, world_size=2, batch_bytes=4096)))
                results[k] = (ids, c.select("img/b", "random", 0.1 * (k + 1), seed=k).num_selected)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(results) == 8
    for k, (ids, n) in results.items():
        assert len(ids) == 300 and len(set(ids.tolist())) == 300
        assert n == sum(int(np.ceil(0.1 * (k + 1) * 30 - 1e-9)) for _ in range(3))


def test_health_and_reflection(server):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as ch:
        h = health_pb2_grpc.HealthStub(ch)
        assert h.Check(health_pb2.HealthCheckRequest(service="nessa.v1.Storage")).status == health_pb2.HealthCheckResponse.SERVING
        r = reflection_pb2_grpc.ServerReflectionStub(ch)
        reply = next(r.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in reply.list_services_response.service}
        assert {"nessa.v1.Storage", "grpc.health.v1.Health"} <= names


def test_generated_stub_reads_the_stream(server):
    """Any gRPC client with the generated classes decodes the hand-built SampleBatch."""
    with grpc.insecure_channel(f"127.0.0.1:{server[1]}", options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        stub = nessa_pb2_grpc.StorageStub(ch)
        msgs = list(stub.StreamSamples(pb.StreamSamplesRequest(dataset="img/b", selection="full", batch_bytes=1000)))
    import pyarrow as pa

    ids = np.concatenate([pa.ipc.open_stream(m.body).read_all().column("id").to_numpy() for m in msgs])
    assert sorted(ids.tolist()) == list(range(90)) and sum(m.header.count for m in msgs) == 90


def test_odd_inputs_never_answer_unknown(server):
    """Garbage bytes, out-of-range enums and huge numbers get a definite status, never UNKNOWN."""
    target = f"127.0.0.1:{server[1]}"
    ident = lambda b: b  # noqa: E731
    odd_requests = {
        "ListDatasets": [b"\xff\xff", b"\x0a\x05abc"],
        "GetDataset": [b"\x0a\x03\xff\xfe\xfd", b"\x0a", pb.GetDatasetRequest(name="../../etc").SerializeToString(), pb.GetDatasetRequest(name="a/../img/b").SerializeToString()],
        "Select": [
            pb.SelectRequest(dataset="a", strategy=99, fraction=0.5).SerializeToString(),
            pb.SelectRequest(dataset="a", strategy=pb.STRATEGY_RANDOM, fraction=0.5, backend=42).SerializeToString(),
            pb.SelectRequest(dataset="a", strategy=pb.STRATEGY_RANDOM, fraction=1e308, seed=2**64 - 1).SerializeToString(),
            pb.SelectRequest(dataset="a", strategy=pb.STRATEGY_CRAIG, fraction=0.5, model_version=2**64 - 1).SerializeToString(),
            b"\x12\xff\xff",
        ],
        "GetSelection": [pb.GetSelectionRequest(id="x" * 10000).SerializeToString(), pb.GetSelectionRequest(id="../../../etc/passwd").SerializeToString()],
    }
    stream_requests = [
        pb.StreamSamplesRequest(dataset="a", selection="full", world_size=2**32 - 1, rank=2**32 - 2, batch_bytes=2**64 - 1).SerializeToString(),
        pb.StreamSamplesRequest(dataset="a", selection="random", fraction=float("nan")).SerializeToString(),
        pb.StreamSamplesRequest(dataset="a", selection="full", start_offset=2**64 - 1).SerializeToString(),
        pb.StreamSamplesRequest(dataset="a", selection="full", seed=2**64 - 1, epoch=2**64 - 1, batch_bytes=1).SerializeToString(),
        b"\x0a\x01",
    ]
    seen = []
    with grpc.insecure_channel(target) as ch:
        for method, requests in odd_requests.items():
            call = ch.unary_unary(f"/nessa.v1.Storage/{method}", request_serializer=ident, response_deserializer=ident)
            for req in requests:
                try:
                    call(req, timeout=20)
                    seen.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    seen.append(exc.code())
        call = ch.unary_stream("/nessa.v1.Storage/StreamSamples", request_serializer=ident, response_deserializer=ident)
        for req in stream_requests:
            try:
                for _ in call(req, timeout=20):
                    break
                seen.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                seen.append(exc.code())
        push = ch.stream_unary("/nessa.v1.Storage/PushModel", request_serializer=ident, response_deserializer=ident)
        for chunks in ([b"\xff"], [], [pb.PushModelChunk(data=b"x").SerializeToString()]):
            try:
                push(iter(chunks), timeout=20)
                seen.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                seen.append(exc.code())
    assert grpc.StatusCode.UNKNOWN not in seen, seen
    assert seen.count(grpc.StatusCode.OK) <= 4  # list (garbage parses as unknown fields), valid name, one stream


def test_restart_keeps_selections(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        sel = c.select("a", "random", 0.2, seed=11)
        first = _ids(list(c.stream_samples("a", selection=sel.id, seed=1)))
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert c.get_selection(sel.id) == sel
        assert np.array_equal(_ids(list(c.stream_samples("a", selection=sel.id, seed=1))), first)
    assert list((root / ".nessa" / "selections").glob("*.arrow"))


def test_graceful_stop_releases_the_port(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (srv, port), StorageClient(f"127.0.0.1:{port}") as c:
        stream = c.stream_samples("a", selection="full", batch_bytes=64)
        next(stream)
        stopper = threading.Thread(target=srv.stop, kwargs={"grace": 5.0})
        stopper.start()
        rest = list(stream)  # the call in flight finishes within the grace period
        stopper.join(10)
        assert 1 + len(rest) == 600 and not stopper.is_alive()
    with running(root, f"127.0.0.1:{port}") as (_, again):
        assert again == port


def test_stopping_server_refuses_new_streams_and_waits_for_those_in_flight(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (srv, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        stream = c.stream_samples("a", selection="full", batch_bytes=64)
        next(stream)
        drained = []
        drainer = threading.Thread(target=lambda: drained.append(srv.core.drain_streams(10.0)))
        drainer.start()
        with pytest.raises(StorageError) as info:
            list(c.stream_samples("a", selection="full"))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE and "stopping" in info.value.details
        assert drainer.is_alive()  # the first stream is still open
        assert 1 + len(list(stream)) == 600
        drainer.join(10)
        assert drained == [True]


def test_stream_whose_closing_status_is_lost_after_the_last_row_ends_cleanly(tmp_path, monkeypatch):
    """A server stopping right after the last batch may reset the connection before the status
    arrives: when every row is here the client ends the stream; when rows are missing it says so."""
    from storage_service._native_channel import NativeRpcError

    root = make_root(tmp_path)
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        real = c._open_stream

        def reset_after(cut):
            def open_stream(request):
                for i, batch in enumerate(real(request)):
                    if i == cut:
                        break
                    yield batch
                raise NativeRpcError(grpc.StatusCode.UNAVAILABLE, "recvmsg:Connection reset by peer")
            return open_stream

        monkeypatch.setattr(c, "_open_stream", reset_after(cut=10**9))
        assert sum(b.count for b in c.stream_samples("a", selection="full", batch_bytes=6400)) == 600
        monkeypatch.setattr(c, "_open_stream", reset_after(cut=2))
        with pytest.raises(StorageError) as info:
            list(c.stream_samples("a", selection="full", batch_bytes=6400))
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("dataset", ["a", "img/b"])  # several record batches / a single one
def test_streamed_bytes_match_the_store(client, root, dataset):
    st = Store(root / dataset)
    batches = list(client.stream_samples(dataset, selection="full", seed=5, batch_bytes=1000))
    assert sum(b.count for b in batches) == len(st)
    for b in batches:
        samples, labels = st.take(b.ids)
        assert np.array_equal(b.samples, samples) and np.array_equal(b.labels, labels)
        assert b.samples.shape[1:] == tuple(st.manifest.sample_shape)
