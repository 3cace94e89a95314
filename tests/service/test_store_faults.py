"""Stores that change or break under a running server (real gRPC over loopback, in this process:
a SIGBUS would end the test run, so "the server survives" is asserted by the run going on):
only the damaged data set fails, with DATA_LOSS or FAILED_PRECONDITION naming the file; every
other data set keeps streaming on both ports; a re-ingest is followed; leftovers go at start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pytest

from storage_service import store as store_mod
from storage_service._shard_file import ShardFile
from storage_service.client import StorageClient, StorageError
from storage_service.ingest import write_store
from storage_service.store_integrity import RECORD_NAME
from tests.service.helpers import make_root, running


def _rows(client: StorageClient, name: str, **kw) -> tuple[np.ndarray, np.ndarray]:
    ids, samples = [], []
    for b in client.stream_samples(name, batch_bytes=4096, **kw):
        ids.append(b.ids)
        samples.append(np.asarray(b.samples).reshape(len(b.ids), -1))
    return np.concatenate(ids), np.concatenate(samples)


def _clients(port: int):
    # the data plane (gRPC C++, the default) and the main port (gRPC-Python)
    return [StorageClient(f"127.0.0.1:{port}", retries=0), StorageClient(f"127.0.0.1:{port}", retries=0, data_plane=False)]


def _code(fn) -> StorageError:
    with pytest.raises(StorageError) as info:
        fn()
    return info.value


def test_truncated_shard_fails_only_its_data_set_and_the_server_lives_on(tmp_path, caplog):
    root = make_root(tmp_path)
    shard = root / "a" / "shard-00001.arrow"
    original = shard.read_bytes()
    with running(root) as (_, port):
        clients = _clients(port)
        try:
            for c in clients:
                assert len(_rows(c, "a")[0]) == 600 and len(_rows(c, "img/b")[0]) == 90
            # the repro: stream once, truncate a shard to half, stream again
            os.truncate(shard, shard.stat().st_size // 2)
            with caplog.at_level(logging.ERROR, logger="nessa.store"):
                for c in clients:
                    err = _code(lambda: _rows(c, "a"))
                    assert err.code == grpc.StatusCode.DATA_LOSS, err
                    assert "shard-00001.arrow" in err.details and "truncated" in err.details
            assert any("shard-00001.arrow" in r.getMessage() for r in caplog.records)  # logged
            for c in clients:
                ids, _ = _rows(c, "img/b")  # the other data set streams on both ports
                assert sorted(ids.tolist()) == list(range(90))
                assert [d.name for d in c.list_datasets()] == ["img/b"]  # the broken one is left out
                err = _code(lambda: c.get_dataset("a"))
                assert err.code in (grpc.StatusCode.DATA_LOSS, grpc.StatusCode.FAILED_PRECONDITION)
            shard.write_bytes(original)  # restored: the next call opens it again, no restart
            for c in clients:
                assert sorted(_rows(c, "a")[0].tolist()) == list(range(600))
        finally:
            for c in clients:
                c.close()


def test_shard_rewritten_in_place_while_serving_is_data_loss(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "DEFAULT_CHECK_INTERVAL", 0.0)  # check the files before every read
    root = make_root(tmp_path)
    shard = root / "a" / "shard-00002.arrow"
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        _rows(c, "a")
        raw = bytearray(shard.read_bytes())
        raw[len(raw) // 3] ^= 0xFF  # same size, new bytes (and mtime): no SIGBUS, but not the data verified
        with open(shard, "r+b") as fh:
            fh.write(raw)
        err = _code(lambda: _rows(c, "a"))
        assert err.code == grpc.StatusCode.DATA_LOSS and "shard-00002.arrow" in err.details and "modified" in err.details
        assert len(_rows(c, "img/b")[0]) == 90


def test_damage_found_at_open_names_the_shard(tmp_path):
    root = make_root(tmp_path)
    # a flipped sample byte: the checksum catches it before a row is served
    s1 = root / "a" / "shard-00000.arrow"
    sf = ShardFile(s1, 64)
    raw = bytearray(s1.read_bytes())
    raw[sf.batches[0].sample_offset + 5] ^= 0x01
    sf.close()
    s1.write_bytes(bytes(raw))
    # a label of 200 in a data set of 3 classes: refused at open, naming shard and row
    s2 = root / "img" / "b" / "shard-00000.arrow"
    sf = ShardFile(s2, 48)
    raw = bytearray(s2.read_bytes())
    raw[sf.batches[0].label_offset + 4 * 7 : sf.batches[0].label_offset + 4 * 8] = (200).to_bytes(4, "little")
    sf.close()
    s2.write_bytes(bytes(raw))
    write_store(root / "ok", np.zeros((10, 4), np.uint8), np.arange(10) % 2, name="ok")
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        err = _code(lambda: _rows(c, "a"))
        assert err.code == grpc.StatusCode.DATA_LOSS and "shard-00000.arrow: sha256 mismatch" in err.details
        err = _code(lambda: _rows(c, "img/b", selection="random", fraction=0.5))
        assert err.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "shard-00000.arrow: row 7 (id 7) has label 200, outside [0, 3)" in err.details
        assert len(_rows(c, "ok")[0]) == 10


def test_reingest_while_serving_is_followed_and_old_maps_released(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        ids, rows = _rows(c, "a")
        assert c.get_dataset("a").num_samples == 600 and len(ids) == 600
        new = np.full((300, 1, 8, 8), 7, np.uint8)
        write_store(root / "a", new, np.arange(300) % 4, name="a", overwrite=True)  # nessa ingest --overwrite
        assert c.get_dataset("a").num_samples == 300
        ids, rows = _rows(c, "a")
        assert sorted(ids.tolist()) == list(range(300)) and (rows == 7).all()
        # the replaced shards are deleted; nothing of them stays mapped or open (disk is freed)
        maps = Path("/proc/self/maps").read_text()
        fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")]
        stale = [line for line in maps.splitlines() + fds if str(tmp_path) in line and "(deleted)" in line]
        assert stale == []


def test_corrupt_selection_file_is_data_loss(tmp_path):
    root = make_root(tmp_path)
    with running(root) as (server, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        sel = c.select("a", "random", 0.1, seed=3)
        path = root / ".nessa" / "selections" / f"{sel.id}.arrow"
        with pa.memory_map(str(path)) as src:
            table = pa.ipc.open_file(src).read_all()
        weights = table.column("weight").to_numpy().copy()
        weights[2] = np.nan
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(pa.table([table.column("id"), pa.array(weights)], schema=table.schema))
        err = _code(lambda: _rows(c, "a", selection=sel.id))
        assert err.code == grpc.StatusCode.DATA_LOSS and sel.id in err.details and "sha256" in err.details


def test_leftovers_of_killed_writes_are_removed_at_start(tmp_path):
    root = make_root(tmp_path)
    gone = subprocess.Popen(["true"])  # a pid that is gone
    gone.wait()
    killed_ingest = root / f".c.tmp-{gone.pid}-0badc0de"
    (killed_ingest / "train").mkdir(parents=True)
    (killed_ingest / "train" / "shard-00000.arrow").write_bytes(b"\0" * (1 << 20))
    old_style = root / ".d.tmp-12ab34cd"  # an ingest of an older version (no pid): by age
    old_style.mkdir()
    os.utime(old_style, (1e9, 1e9))
    half_manifest = root / "a" / "manifest.json.tmp"
    half_manifest.write_text("{")
    os.utime(half_manifest, (1e9, 1e9))
    half_record = root / "img" / "b" / f"{RECORD_NAME}.tmp{gone.pid}"
    half_record.write_text("{")
    live = subprocess.Popen(["sleep", "30"])
    try:
        running_ingest = root / f".e.tmp-{live.pid}-00c0ffee"  # a live writer's: kept
        running_ingest.mkdir()
        fresh = root / ".f.tmp-aabbccdd"  # no pid, just written: kept
        fresh.mkdir()
        with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
            assert not killed_ingest.exists() and not old_style.exists()
            assert not half_manifest.exists() and not half_record.exists()
            assert running_ingest.exists() and fresh.exists()
            assert sorted(d.name for d in c.list_datasets()) == ["a", "img/b"]
    finally:
        live.kill()
        live.wait()


def test_verify_record_lets_the_next_open_skip_hashing(tmp_path):
    root = make_root(tmp_path)
    doc = json.loads((root / "a" / RECORD_NAME).read_text())  # ingest hashed the shards as it wrote them
    assert doc["ok"] and doc["by"] == "nessa ingest" and len(doc["shards"]) == 3
    (root / "a" / RECORD_NAME).unlink()
    with running(root) as (server, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        _rows(c, "a")  # hashed at open, then recorded by the server
    doc = json.loads((root / "a" / RECORD_NAME).read_text())
    assert doc["ok"] and doc["by"] == "nessa serve" and len(doc["shards"]) == 3
    st = store_mod.Store(root / "a")
    v = st.start_verification(sync_bytes=0)
    assert v.untrusted_bytes() == 0 and v.state == "ok"
    # a shard touched since (same bytes, new mtime) is hashed again, not trusted
    os.utime(root / "a" / "shard-00001.arrow", None)
    st2 = store_mod.Store(root / "a")
    v2 = st2.start_verification(sync_bytes=1 << 30)
    assert 0 < v2.untrusted_bytes() < v2.total_bytes and v2.state == "ok"


def test_large_stores_verify_in_the_background(tmp_path, monkeypatch):
    import time

    from storage_service import _core

    monkeypatch.setattr(_core, "VERIFY_SYNC_BYTES", 0)  # every store counts as large here
    root = make_root(tmp_path)
    shard = root / "img" / "b" / "shard-00000.arrow"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x04
    shard.write_bytes(bytes(raw))

    def settle(fn):
        codes = []
        for _ in range(200):  # UNAVAILABLE while the checksums run, then the answer
            try:
                return fn(), codes
            except StorageError as exc:
                codes.append(exc.code)
                if exc.code != grpc.StatusCode.UNAVAILABLE:
                    return exc, codes
                time.sleep(0.02)
        raise AssertionError(codes)

    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as c:
        assert [d.name for d in c.list_datasets()] == ["a", "img/b"]  # metadata does not wait
        (ids, _), codes = settle(lambda: _rows(c, "a"))
        assert len(ids) == 600 and set(codes) <= {grpc.StatusCode.UNAVAILABLE}
        err, _ = settle(lambda: _rows(c, "img/b"))
        assert isinstance(err, StorageError) and err.code == grpc.StatusCode.DATA_LOSS and "sha256 mismatch" in err.details
        assert [d.name for d in c.list_datasets()] == ["a"]  # known broken now: left out of the list
