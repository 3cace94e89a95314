"""The data plane (StreamSamples on gRPC C++, storage_service/_data_plane.py) over real sockets."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import grpc
import numpy as np
import pyarrow as pa
import pytest

from tests.service.helpers import make_root, running, self_signed
from storage_service import _data_plane, _native_channel
from storage_service._proto import nessa_pb2 as pb
from storage_service._proto import nessa_pb2_grpc
from storage_service.client import StorageClient, StorageError
from storage_service.server import create_server

TOKEN = "data-plane-token"


def test_extension_is_built():
    # CI installs the gRPC C++ headers (libgrpc++-dev), so the optional extension must be there.
    assert _data_plane.available(), _data_plane.unavailable_reason()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("dp"))


@pytest.fixture(scope="module")
def server(root):
    with running(root) as (srv, port):
        yield srv, port


def _ids(batches) -> np.ndarray:
    return np.concatenate([b.ids for b in batches])


def test_server_info_names_the_data_port(server):
    srv, port = server
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        info = nessa_pb2_grpc.StorageStub(ch).GetServerInfo(pb.GetServerInfoRequest())
    assert info.data_port == srv.data_port and info.data_port not in (0, port) and info.batch_version == 1


def test_both_ports_stream_the_same_batches(server):
    kw = dict(selection="random", fraction=0.7, epoch=3, seed=5, rank=1, world_size=3, batch_bytes=500)
    with StorageClient(f"127.0.0.1:{server[1]}") as fast, StorageClient(f"127.0.0.1:{server[1]}", data_plane=False) as slow:
        a, b = list(fast.stream_samples("a", **kw)), list(slow.stream_samples("a", **kw))
    assert len(a) == len(b) > 3
    for x, y in zip(a, b):
        assert (x.offset, x.count, x.total, x.selection_id, x.epoch) == (y.offset, y.count, y.total, y.selection_id, y.epoch)
        for f in ("ids", "labels", "weights", "samples"):
            assert np.array_equal(getattr(x, f), getattr(y, f)), f
        assert not x.samples.flags.writeable  # views of the received message, not copies


def test_any_grpc_client_reads_the_data_port(server):
    """Same service name, method and messages: the generated gRPC-Python stub works unchanged."""
    with grpc.insecure_channel(f"127.0.0.1:{server[0].data_port}", options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        stub = nessa_pb2_grpc.StorageStub(ch)
        msgs = list(stub.StreamSamples(pb.StreamSamplesRequest(dataset="img/b", selection="full", batch_bytes=1000)))
        with pytest.raises(grpc.RpcError) as info:
            stub.ListDatasets(pb.ListDatasetsRequest())  # the data plane serves StreamSamples only
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    ids = np.concatenate([pa.ipc.open_stream(m.body).read_all().column("id").to_numpy() for m in msgs])
    assert sorted(ids.tolist()) == list(range(90)) and sum(m.header.count for m in msgs) == 90


@pytest.mark.parametrize(
    "request_bytes, code",
    [
        (b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT),  # not a StreamSamplesRequest
        (pb.StreamSamplesRequest(dataset="nope", selection="full").SerializeToString(), grpc.StatusCode.NOT_FOUND),
        (pb.StreamSamplesRequest(dataset="a", selection="0" * 16).SerializeToString(), grpc.StatusCode.NOT_FOUND),
        (pb.StreamSamplesRequest(dataset="a", selection="full", rank=2, world_size=2).SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.StreamSamplesRequest(dataset="a", selection="full", start_offset=601).SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.StreamSamplesRequest(dataset="a", selection="random").SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_requests_get_their_status(server, request_bytes, code):
    with grpc.insecure_channel(f"127.0.0.1:{server[0].data_port}") as ch:
        call = ch.unary_stream("/nessa.v1.Storage/StreamSamples", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as info:
            list(call(request_bytes, timeout=10))
    assert info.value.code() == code, info.value.details()


def test_native_client_reports_status_codes(server):
    ch = _native_channel.NativeChannel(f"127.0.0.1:{server[0].data_port}")
    with pytest.raises(_native_channel.NativeRpcError) as info:
        list(ch.stream(pb.StreamSamplesRequest(dataset="nope", selection="full")))
    assert info.value.code == grpc.StatusCode.NOT_FOUND and "nope" in info.value.details


def test_cancel_midway_frees_the_stream(server):
    """Closing a stream early cancels it; the server keeps serving (and its thread is released)."""
    with StorageClient(f"127.0.0.1:{server[1]}") as c:
        for _ in range(20):  # more cancelled streams than the server has stream threads
            stream = c.stream_samples("a", batch_bytes=64)
            assert next(stream).count == 1
            stream.close()
        assert len(_ids(list(c.stream_samples("a", batch_bytes=4096)))) == 600


def test_lent_buffers_are_released(tmp_path):
    """Every batch the server lends to gRPC (and every received one) is freed once sent/read."""
    from storage_service.ingest import write_store

    rng = np.random.default_rng(0)
    write_store(tmp_path / "big", rng.integers(0, 256, (2048, 4096), dtype=np.uint8), rng.integers(0, 2, 2048), name="big")
    with running(tmp_path) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        list(c.stream_samples("big", batch_bytes=1 << 20))  # warm-up: caches, encoders, channel
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            nbytes = sum(b.samples.nbytes for b in c.stream_samples("big", batch_bytes=1 << 20))
            time.sleep(0.2)  # gRPC drops its slice references on its own threads
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert nbytes == 8 << 20
    assert grown < 1 << 20, f"{grown} bytes still held after streaming {nbytes}"


def test_stop_with_a_stream_in_flight(tmp_path):
    from storage_service.ingest import write_store

    rng = np.random.default_rng(1)
    # 64 MiB in 1,024 batches: far more than flow-control windows hold during the grace period.
    write_store(tmp_path / "big", rng.integers(0, 256, (4096, 16384), dtype=np.uint8), rng.integers(0, 2, 4096), name="big")
    srv, port = create_server("127.0.0.1:0", tmp_path)
    got, errors = [], []
    with StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        stream = c.stream_samples("big", batch_bytes=64 << 10)
        got.append(next(stream))
        t0 = time.monotonic()
        stopper = threading.Thread(target=srv.stop, args=(0.2,))
        stopper.start()
        try:
            for b in stream:  # a slow reader: the stream cannot end within the grace period
                got.append(b)
                if stopper.is_alive():
                    time.sleep(0.01)
        except StorageError as exc:
            errors.append(exc.code)
        stopper.join(10)
    assert not stopper.is_alive() and time.monotonic() - t0 < 10
    assert errors and errors[0] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert len(got) < 1024  # it did not run to the end


def test_no_data_plane_when_disabled(root):
    with running(root, data_port=None) as (srv, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert srv.data_port == 0 and c.server_info() == (0, 1)
        assert c._data_plane_channel() is None
        assert sum(b.count for b in c.stream_samples("img/b")) == 90


def test_data_port_taken_is_named(root, server):
    with pytest.raises(ValueError, match="data plane"):
        create_server("127.0.0.1:0", root, data_port=server[1])
    with pytest.raises(ValueError, match="data_port"):
        create_server("127.0.0.1:0", root, data_port=70000)


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp-tls")
    cert, key = self_signed(tmp)
    with running(make_root(tmp / "root"), token=TOKEN, tls_cert=cert, tls_key=key) as (srv, port):
        yield srv, port, cert


def test_tls_and_token_on_the_data_plane(secure):
    srv, port, cert = secure
    request = pb.StreamSamplesRequest(dataset="img/b", selection="full")
    target = f"127.0.0.1:{srv.data_port}"
    ok = _native_channel.NativeChannel(target, root_cert=cert.read_bytes())
    assert sum(len(m) > 0 for m in ok.stream(request, [("authorization", f"Bearer {TOKEN}")])) >= 1
    for metadata, message in (([], "missing"), ([("authorization", "Bearer nope")], "wrong"), ([("authorization", f"Bearer {TOKEN}x")], "wrong")):
        with pytest.raises(_native_channel.NativeRpcError) as info:
            list(ok.stream(request, metadata))
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED and message in info.value.details
    plain = _native_channel.NativeChannel(target)  # no TLS: the handshake fails
    with pytest.raises(_native_channel.NativeRpcError) as info:
        list(plain.stream(request, [("authorization", f"Bearer {TOKEN}")]))
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    with StorageClient(f"localhost:{port}", token=TOKEN, root_cert=cert) as c:  # the client's default path
        assert c._data_plane_channel() is not None
        assert sorted(_ids(list(c.stream_samples("img/b", batch_bytes=100))).tolist()) == list(range(90))


def test_streams_beyond_the_bound_are_refused_then_served(tmp_path):
    """At most 4 x max_workers streams at once (like the main port): the next one is
    RESOURCE_EXHAUSTED, and the bound frees up when streams end."""
    from storage_service.ingest import write_store

    rng = np.random.default_rng(2)
    # 64 MiB: far more than gRPC's flow-control windows hold, so an unread stream keeps its thread.
    write_store(tmp_path / "big", rng.integers(0, 256, (4096, 16384), dtype=np.uint8), rng.integers(0, 2, 4096), name="big")
    with running(tmp_path, max_workers=2) as (srv, port):
        ch = _native_channel.NativeChannel(f"127.0.0.1:{srv.data_port}")
        request = pb.StreamSamplesRequest(dataset="big", selection="full", batch_bytes=1 << 20)
        open_streams = [ch.stream(request) for _ in range(8)]
        for s in open_streams:
            assert len(next(s)) > 1 << 20
        with pytest.raises(_native_channel.NativeRpcError) as info:
            list(ch.stream(request))
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        for s in open_streams:
            s.close()
        deadline = time.monotonic() + 10
        while True:  # cancelled streams give their threads back
            try:
                assert sum(1 for _ in ch.stream(request)) == 64
                break
            except _native_channel.NativeRpcError as exc:
                assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.1)


def test_client_without_the_extension_reads_the_data_plane_with_grpc_python(secure, monkeypatch):
    from storage_service.client import _PythonDataChannel

    srv, port, cert = secure
    monkeypatch.setattr(_native_channel, "_native", None)  # as on an install without libgrpc++-dev
    with StorageClient(f"localhost:{port}", token=TOKEN, root_cert=cert) as c:
        assert isinstance(c._data_plane_channel(), _PythonDataChannel)
        assert sorted(_ids(list(c.stream_samples("img/b", batch_bytes=100))).tolist()) == list(range(90))
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(f"localhost:{srv.data_port}", creds) as ch:  # the token is checked there too
        stub = nessa_pb2_grpc.StorageStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.StreamSamples(pb.StreamSamplesRequest(dataset="img/b", selection="full"), metadata=[("authorization", "Bearer wrong")]))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_server_without_get_server_info_streams_on_its_main_port(root):
    """An older server answers GetServerInfo UNIMPLEMENTED: the client streams from the main port."""
    from concurrent.futures import ThreadPoolExecutor

    from storage_service._core import StorageCore
    from storage_service.servicer import SERVICE_NAME, StorageServicer

    core = StorageCore(root)
    old = grpc.server(ThreadPoolExecutor(4))
    handler = grpc.unary_stream_rpc_method_handler(StorageServicer(core).StreamSamples, pb.StreamSamplesRequest.FromString, lambda wire: wire)
    old.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {"StreamSamples": handler}),))
    port = old.add_insecure_port("127.0.0.1:0")
    old.start()
    try:
        with StorageClient(f"127.0.0.1:{port}") as c:
            assert c._data_plane_channel() is None
            assert sum(b.count for b in c.stream_samples("img/b")) == 90
    finally:
        old.stop(0)
        core.close()


def test_exit_without_stop_is_clean(tmp_path):
    """A program that exits with a data plane still serving an open stream exits 0 (without the
    atexit stop, gRPC's threads met a finalizing interpreter: 'terminate called ...', SIGABRT)."""
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from pathlib import Path
from tests.service.helpers import make_root
from storage_service.server import create_server
from storage_service.client import StorageClient
srv, port = create_server("127.0.0.1:0", make_root(Path({str(tmp_path)!r})))
stream = StorageClient(f"127.0.0.1:{{port}}").stream_samples("a", batch_bytes=64)
print(next(stream).count)
"""
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr[-2000:]


def test_token_is_checked_before_the_request_is_read(secure):
    """An oversized request without the token is refused UNAUTHENTICATED, not RESOURCE_EXHAUSTED:
    the data plane answered from the headers and never read the body (reading it is what costs
    memory: bench/unauth_memory.py). With the token, the same request hits the 64 KiB limit."""
    srv, _, cert = secure
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    body = b"\x0a" + b"\x00" * (4 << 20)
    with grpc.secure_channel(f"localhost:{srv.data_port}", creds, options=[("grpc.max_send_message_length", 8 << 20)]) as ch:
        call = ch.unary_stream("/nessa.v1.Storage/StreamSamples")
        for metadata, code in (((), grpc.StatusCode.UNAUTHENTICATED),
                               ((("authorization", f"Bearer {TOKEN}"),), grpc.StatusCode.RESOURCE_EXHAUSTED)):
            with pytest.raises(grpc.RpcError) as err:
                list(call(body, metadata=metadata, timeout=30))
            assert err.value.code() == code, err.value.details()
        request = pb.StreamSamplesRequest(dataset="img/b", selection="full").SerializeToString()
        assert sum(len(m) for m in call(request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30)) > 0


@pytest.mark.parametrize("data_plane", [True, False])
def test_more_streams_than_batch_builders_all_complete(server, data_plane):
    """Streams take turns building batches (``BATCH_BUILDERS`` at once, so other calls' Python is not
    starved of the GIL): with three times as many streams read in lockstep, each still gets every
    row exactly once."""
    from storage_service._core import BATCH_BUILDERS

    n = 3 * BATCH_BUILDERS
    with StorageClient(f"127.0.0.1:{server[1]}", data_plane=data_plane) as c:
        streams = [c.stream_samples("a", selection="full", seed=k, batch_bytes=300) for k in range(n)]
        got = [[] for _ in range(n)]
        live = set(range(n))
        while live:  # one batch from each live stream in turn: every stream is open at once
            for k in sorted(live):
                batch = next(streams[k], None)
                if batch is None:
                    live.discard(k)
                else:
                    got[k].append(batch.ids)
    for k in range(n):
        ids = np.concatenate(got[k])
        assert sorted(ids.tolist()) == list(range(600)), k
