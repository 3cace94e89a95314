"""Client library: retries on UNAVAILABLE, transparent stream resume, argument checks."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from tests.service.helpers import make_root, running
from storage_service.client import StorageClient, StorageError
from storage_service.server import create_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retries_until_the_server_comes_up(tmp_path):
    root = make_root(tmp_path)
    port = _free_port()
    box = {}

    def late_start():
        time.sleep(0.8)
        box["server"] = create_server(f"127.0.0.1:{port}", root)[0]

    t = threading.Thread(target=late_start)
    t.start()
    try:
        with StorageClient(f"127.0.0.1:{port}", retries=8, backoff=0.1, max_backoff=0.5) as c:
            assert c.get_dataset("a").num_samples == 600
    finally:
        t.join()
        box["server"].stop(0)


def test_no_retries_gives_unavailable(tmp_path):
    with StorageClient(f"127.0.0.1:{_free_port()}", retries=0, timeout=2) as c:
        with pytest.raises(StorageError) as info:
            c.list_datasets()
    assert info.value.code.name == "UNAVAILABLE"


def test_stream_resumes_across_a_server_restart(tmp_path):
    """The server dies mid-stream and comes back: the caller sees each row once, in order."""
    from storage_service.ingest import write_store

    rng = np.random.default_rng(0)
    # Big enough (16 MiB) that the stream cannot sit in flow-control buffers when the server dies.
    write_store(tmp_path / "big", rng.integers(0, 256, (4096, 4096), dtype=np.uint8), rng.integers(0, 2, 4096), name="big")
    port = _free_port()
    server = create_server(f"127.0.0.1:{port}", tmp_path)[0]
    kw = dict(selection="full", epoch=1, seed=4, rank=0, world_size=1, batch_bytes=64 << 10)
    with StorageClient(f"127.0.0.1:{port}") as c:
        expected = np.concatenate([b.ids for b in c.stream_samples("big", **kw)])
    box, sleeps = {}, []
    with StorageClient(f"127.0.0.1:{port}", retries=10, backoff=0.1, max_backoff=0.5) as c:
        real_sleep = c._sleep
        c._sleep = lambda attempt: (sleeps.append(attempt), real_sleep(attempt))
        got = []
        for b in c.stream_samples("big", **kw):
            got.append(b)
            if len(got) == 5:
                server.stop(0)  # kill it: the stream breaks off with UNAVAILABLE
                threading.Timer(0.5, lambda: box.setdefault("s", create_server(f"127.0.0.1:{port}", tmp_path)[0])).start()
    box["s"].stop(0)
    assert sleeps, "the stream was never interrupted: the test proves nothing"
    ids = np.concatenate([b.ids for b in got])
    assert np.array_equal(ids, expected)
    assert [b.offset for b in got] == list(range(0, 4096, 16))


def test_push_accepts_module_state_dict_or_bytes(tmp_path):
    import torch
    from safetensors.torch import save

    from host.models import build_model

    model = build_model("small_cnn", (1, 8, 8), 4)
    with running(make_root(tmp_path)) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        a = c.push_model("small_cnn", model, 1, dataset="a", chunk_bytes=1000)
        b = c.push_model("small_cnn", model.state_dict(), 2, dataset="a")
        raw = save({k: v.contiguous() for k, v in model.state_dict().items()})
        d = c.push_model("small_cnn", raw, 3)
        assert a.sha256 == b.sha256 == d.sha256 and a.size == len(raw)
        with pytest.raises(TypeError, match="safetensors bytes"):
            c.push_model("small_cnn", [torch.zeros(1)], 4)


def test_constructor_and_argument_checks():
    for kw in (dict(timeout=0), dict(retries=-1)):
        with pytest.raises(ValueError):
            StorageClient("127.0.0.1:1", **kw)
    with pytest.raises(ValueError, match="target"):
        StorageClient("")
    with StorageClient("127.0.0.1:1") as c:
        with pytest.raises(ValueError, match="strategy"):
            c.select("a", "best", 0.5)
        with pytest.raises(ValueError, match="backend"):
            c.select("a", "random", 0.5, backend="gpu")
        with pytest.raises(ValueError, match="fraction"):
            next(c.stream_samples("a", selection="random"))


def test_select_polls_past_the_call_deadline(tmp_path, monkeypatch):
    """A selection slower than the call deadline: Select answers RUNNING, the client polls."""
    from storage_service import selections

    slow_random = selections.STRATEGIES[selections.Strategy.RANDOM]

    def slow(store, params, model):
        time.sleep(1.5)
        return slow_random(store, params, model)

    monkeypatch.setitem(selections.STRATEGIES, selections.Strategy.RANDOM, slow)
    polls = []
    with running(make_root(tmp_path)) as (_, port), StorageClient(f"127.0.0.1:{port}", timeout=0.6) as c:
        real_get = c.get_selection
        monkeypatch.setattr(c, "get_selection", lambda sel_id: polls.append(sel_id) or real_get(sel_id))
        with pytest.raises(StorageError) as info:  # gives up after its own timeout
            c.select("a", "random", 0.5, seed=1, timeout=0.5)
        assert info.value.code.name == "DEADLINE_EXCEEDED"
        running_id = c.select("a", "random", 0.5, seed=1, wait=False).id
        with pytest.raises(StorageError) as info:  # not streamable before it is done
            list(c.stream_samples("a", selection=running_id))
        assert info.value.code.name == "FAILED_PRECONDITION" and "running" in info.value.details
        sel = c.select("a", "random", 0.5, seed=1, timeout=10)
        assert sel.state == "done" and sel.num_selected > 0 and sel.seconds >= 1.5
        assert polls and set(polls) == {sel.id}


def test_empty_backend_means_the_servers_default(tmp_path):
    root = make_root(tmp_path)
    with running(root, backend="emu") as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        assert c.select("a", "random", 0.5, backend="").backend == "emu"
        assert c.select("a", "random", 0.5, backend="cpu").backend == "cpu"
