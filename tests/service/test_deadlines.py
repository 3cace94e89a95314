"""A hung server (``kill -STOP``) makes a client's stream fail within its idle deadline, on the
native data plane, the data plane read through gRPC-Python and the main port; keepalive and
request-size settings of the channels and servers (real processes, real sockets)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from tests.conftest import REPO
from storage_service import _grpc_options, _native_channel
from storage_service.client import StorageClient, StorageError
from storage_service.ingest import write_store
from storage_service._proto import nessa_pb2 as pb

IDLE = 1.0  # the clients' stream_idle_timeout in these tests

_SERVE = ("import sys, threading\n"
          "from storage_service.server import create_server\n"
          "server, port = create_server('127.0.0.1:0', sys.argv[1])\n"
          "print(port, server.data_port, flush=True)\n"
          "threading.Event().wait()\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(process, port, data_port)`` of a storage server in its own process over 16 MiB of
    samples: more than sockets and gRPC's flow-control windows hold, so a stopped server really
    leaves a stream waiting half-way."""
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    write_store(root / "a", rng.integers(0, 256, (4096, 4096), dtype=np.uint8), rng.integers(0, 4, 4096), name="a")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)
    line = proc.stdout.readline().split()
    if len(line) != 2:
        proc.kill()
        raise AssertionError(proc.stderr.read())
    try:
        with StorageClient(f"127.0.0.1:{line[0]}") as c:  # warm: the server's first stream pays its imports
            assert sum(b.count for b in c.stream_samples("a", selection="full", batch_bytes=4 << 20)) == 4096
        yield proc, int(line[0]), int(line[1])
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(30)


def _stalls_within_idle(proc, client: StorageClient) -> None:
    """Read a few batches, stop the server, and check the stream fails DEADLINE_EXCEEDED about
    IDLE seconds after the last batch that still arrived (never before IDLE)."""
    rows = 0
    last = time.monotonic()
    batches = client.stream_samples("a", selection="full", seed=1, batch_bytes=64 << 10)
    try:
        for i, batch in enumerate(batches):
            rows += batch.count
            last = time.monotonic()
            if i == 3:
                proc.send_signal(signal.SIGSTOP)
        raise AssertionError(f"the stream ended normally with {rows} rows although the server was stopped")
    except StorageError as exc:
        waited = time.monotonic() - last
        assert exc.code == grpc.StatusCode.DEADLINE_EXCEEDED, exc
        assert f"no message for {IDLE:g} s (stream_idle_timeout)" in exc.details
        assert IDLE * 0.9 <= waited < IDLE + 2.0, waited
        assert 0 < rows < 4096
    finally:
        batches.close()
        proc.send_signal(signal.SIGCONT)


def test_native_data_plane_stream_fails_within_its_idle_deadline(served):
    proc, port, data_port = served
    assert data_port and _native_channel.available()
    with StorageClient(f"127.0.0.1:{port}", stream_idle_timeout=IDLE) as c:
        _stalls_within_idle(proc, c)
        assert isinstance(c._data_channel, _native_channel.NativeChannel)  # it was the native path
        # the server runs again: the same client streams the whole share
        assert sum(b.count for b in c.stream_samples("a", selection="full", seed=1)) == 4096


def test_python_data_plane_stream_fails_within_its_idle_deadline(served, monkeypatch):
    proc, port, _ = served
    monkeypatch.setattr(_native_channel, "available", lambda: False)  # an install without the extension
    with StorageClient(f"127.0.0.1:{port}", stream_idle_timeout=IDLE) as c:
        _stalls_within_idle(proc, c)
        assert type(c._data_channel).__name__ == "_PythonDataChannel"


def test_main_port_stream_fails_within_its_idle_deadline(served):
    proc, port, _ = served
    with StorageClient(f"127.0.0.1:{port}", stream_idle_timeout=IDLE, data_plane=False) as c:
        _stalls_within_idle(proc, c)


@pytest.mark.parametrize("data_plane", [True, False])
def test_a_new_stream_to_a_stopped_server_fails_within_its_idle_deadline(served, data_plane):
    proc, port, _ = served
    with StorageClient(f"127.0.0.1:{port}", stream_idle_timeout=IDLE, data_plane=data_plane) as c:
        assert c.get_dataset("a").num_samples == 4096  # connected (and the data port known)
        c.server_info()
        c._data_plane_channel()
        proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(StorageError) as err:
                next(iter(c.stream_samples("a", selection="full")))
            assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert IDLE * 0.9 <= time.monotonic() - t0 < IDLE + 2.0
        finally:
            proc.send_signal(signal.SIGCONT)


def test_a_new_client_of_a_stopped_server_fails_within_its_idle_deadline(served):
    """Its first stream asks GetServerInfo for the data port: that too is bounded by the idle
    deadline, not by the (long) call timeout."""
    proc, port, _ = served
    with StorageClient(f"127.0.0.1:{port}", stream_idle_timeout=IDLE, timeout=600, retries=0) as c:
        proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(StorageError) as err:
                next(iter(c.stream_samples("a", selection="full")))
            assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - t0 < IDLE + 2.0
        finally:
            proc.send_signal(signal.SIGCONT)
        assert next(iter(c.stream_samples("a", selection="full"))).count > 0  # and recovers


def test_time_between_batches_is_not_idle_time(served):
    """A slow reader (a long training step) is no hung server: only waits count."""
    _, port, _ = served
    with StorageClient(f"127.0.0.1:{port}", stream_idle_timeout=0.3) as c:
        rows = 0
        for i, batch in enumerate(c.stream_samples("a", selection="full", batch_bytes=4 << 20)):
            rows += batch.count
            if i < 2:
                time.sleep(0.6)
        assert rows == 4096


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "60", True])
def test_stream_idle_timeout_is_checked_at_construction(bad):
    with pytest.raises(ValueError, match="stream_idle_timeout"):
        StorageClient("127.0.0.1:1", stream_idle_timeout=bad)
    assert StorageClient("127.0.0.1:1", stream_idle_timeout=None).stream_idle_timeout is None


def test_keepalive_settings_agree():
    """The client's pings must be allowed by both servers, or a stream that stalls server-side
    for a minute would be cut with GOAWAY too_many_pings."""
    client = dict(_grpc_options.CHANNEL_OPTIONS)
    server = dict(_grpc_options.KEEPALIVE_SERVER_OPTIONS)
    assert client["grpc.keepalive_time_ms"] >= 2 * server["grpc.http2.min_recv_ping_interval_without_data_ms"]
    assert client["grpc.http2.max_pings_without_data"] == 0  # a streaming client sends no data
    assert client["grpc.keepalive_permit_without_calls"] <= server["grpc.keepalive_permit_without_calls"]


def test_data_plane_refuses_a_large_request_and_garbage(served):
    """A 2 MiB request is refused RESOURCE_EXHAUSTED naming the data plane's 64 KiB limit (its
    memory cost: bench/unauth_memory.py); garbage bytes get INVALID_ARGUMENT; a real one works."""
    _, _, data_port = served
    with grpc.insecure_channel(f"127.0.0.1:{data_port}") as ch:
        call = ch.unary_stream("/nessa.v1.Storage/StreamSamples")
        with pytest.raises(grpc.RpcError) as err:
            list(call(b"\x0a" + b"\xff" * (2 << 20), timeout=10))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(_grpc_options.DATA_PLANE_MAX_REQUEST_BYTES) in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            list(call(b"\xff\xff\xff\x07garbage", timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        ok = pb.StreamSamplesRequest(dataset="a", selection="full", batch_bytes=1 << 20).SerializeToString()
        assert sum(len(m) for m in call(ok, timeout=30)) > 16 << 20
