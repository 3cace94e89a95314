"""Store reads against files that change under them: the SIGBUS guard, the identity checks, the
pread layout reader, checksums before serving, labels at open, leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from storage_service import _gather
from storage_service._shard_file import ShardFile, ShardLayoutError, read_layout
from storage_service.ingest import write_store
from storage_service.leftovers import find_leftovers, remove_leftovers
from storage_service.store import Store, StoreDataLoss, StoreError, StoreNotReady
from tests.conftest import REPO


@pytest.fixture()
def one_shard(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4000, 100), dtype=np.uint8)  # 400 KB: ~100 pages to truncate into
    store = write_store(tmp_path / "s", x, rng.integers(0, 3, 4000))
    return store, x


def test_layout_read_with_pread_matches_arrows_own_reader(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(1000, 35), dtype=np.uint8)
    store = write_store(tmp_path / "s", x, rng.integers(0, 4, 1000), shard_bytes=35 * 120, batch_bytes=35 * 50)
    for info in store.manifest.shards:
        path = store.path / info.file
        sf = ShardFile(path, 35, map_file=False)
        source = pa.memory_map(str(path))
        reader = pa.ipc.open_file(source)
        assert len(sf.batches) == reader.num_record_batches
        for b, layout in enumerate(sf.batches):
            batch = reader.get_batch(b)
            assert layout.rows == batch.num_rows
            assert sf.read(layout.sample_offset, layout.rows * 35) == batch.column(2).buffers()[1].to_pybytes()[: layout.rows * 35]
            assert sf.read(layout.label_offset, layout.rows * 4) == batch.column(1).buffers()[1].to_pybytes()[: layout.rows * 4]
        sf.close()


def test_sample_runs_locate_the_sample_bytes(tmp_path):
    x = np.arange(600, dtype=np.uint8).reshape(100, 6)
    store = write_store(tmp_path / "s", x, np.arange(100) % 2, shard_bytes=6 * 40, batch_bytes=6 * 15)
    got = []
    for path, runs, first in store.sample_runs():
        raw = path.read_bytes()
        for off, rows in runs:
            got.append(np.frombuffer(raw[off : off + rows * 6], np.uint8).reshape(rows, 6))
    np.testing.assert_array_equal(np.concatenate(got), x)


def test_truncated_or_foreign_files_are_refused_by_the_layout_reader(tmp_path, one_shard):
    store, _ = one_shard
    shard = store.path / store.manifest.shards[0].file
    raw = shard.read_bytes()
    for name, data, why in [("half", raw[: len(raw) // 2], "no Arrow footer at the end"), ("junk", b"x" * 100, "not an Arrow IPC file"),
                            ("footer", raw[:-10] + (1 << 30).to_bytes(4, "little") + b"ARROW1", "needs bytes")]:
        f = tmp_path / name
        f.write_bytes(data)
        fd = os.open(f, os.O_RDONLY)
        try:
            with pytest.raises(ShardLayoutError, match=why):
                read_layout(fd, len(data), 100)
        finally:
            os.close(fd)


def test_unguarded_read_of_a_truncated_map_kills_the_process(one_shard):
    # What the guard prevents, shown in a child: numpy reading the same map gets SIGBUS.
    store, _ = one_shard
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from storage_service.store import Store
        st = Store({str(store.path)!r})
        shard = st.path / st.manifest.shards[0].file
        os.truncate(shard, shard.stat().st_size // 2)
        print(int(st._views[0][-1].sum()))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -7, (proc.returncode, proc.stderr)  # SIGBUS


def test_guarded_take_of_a_truncated_shard_raises_data_loss(one_shard):
    store, x = one_shard
    st = Store(store.path, check_interval=1e9)  # no identity check before the read: the guard alone
    assert _gather.available() and st._bases is not None
    ids = np.arange(4000)[::-1].copy()
    np.testing.assert_array_equal(st.take_bytes(ids), x[ids])
    shard = st.path / st.manifest.shards[0].file
    os.truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(StoreDataLoss, match=r"shard-00000.arrow is now \d+ bytes, was \d+ when opened"):
        st.take_bytes(ids)
    with pytest.raises(StoreDataLoss, match="failed until re-opened"):  # stays failed, even for rows still there
        st.take_bytes([0])
    with pytest.raises(StoreDataLoss):
        next(iter(st.iter_batches(100)))
    with pytest.raises(StoreError, match="cannot open shard"):
        Store(store.path)


def test_iteration_is_guarded_too(one_shard):
    store, x = one_shard
    st = Store(store.path, check_interval=1e9)
    it = st.iter_batches(500)
    ids, samples, _ = next(it)
    np.testing.assert_array_equal(samples, x[ids])
    shard = st.path / st.manifest.shards[0].file
    os.truncate(shard, 4096)
    with pytest.raises(StoreDataLoss, match="truncated"):
        list(it)


def test_without_the_extension_rows_are_read_with_pread(one_shard, monkeypatch):
    store, x = one_shard
    monkeypatch.setattr(_gather, "available", lambda: False)
    st = Store(store.path, check_interval=1e9)
    assert st._bases is None and st._views == []  # nothing mapped
    ids = np.random.default_rng(2).permutation(4000)[:700]
    np.testing.assert_array_equal(st.take_bytes(ids), x[ids])
    np.testing.assert_array_equal(np.concatenate([s.reshape(len(i), -1) for i, s, _ in st.iter_batches(999)]), x)
    shard = st.path / st.manifest.shards[0].file
    os.truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(StoreDataLoss, match="truncated"):
        st.take_bytes(ids)


def test_in_place_change_is_caught_by_the_identity_check(one_shard):
    store, _ = one_shard
    st = Store(store.path, check_interval=0.0)
    st.take_bytes([1, 2])
    shard = st.path / st.manifest.shards[0].file
    with open(shard, "r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00")
    with pytest.raises(StoreDataLoss, match="modified after it was opened"):
        st.take_bytes([1, 2])


def test_checksums_before_serving(one_shard):
    store, _ = one_shard
    shard = store.path / store.manifest.shards[0].file
    raw = bytearray(shard.read_bytes())
    raw[3000] ^= 0x10
    shard.write_bytes(bytes(raw))
    st = Store(store.path)
    st.take_bytes([0])  # a plain open does not hash (the library user's choice)
    with pytest.raises(StoreDataLoss, match="sha256 mismatch"):
        st.start_verification()
    with pytest.raises(StoreDataLoss):
        st.take_bytes([0])
    # in the background: reads wait for the result, require_verified answers at once
    st2 = Store(store.path)
    v = st2.start_verification(sync_bytes=0)
    try:
        st2.require_verified()
    except StoreNotReady as exc:
        assert "being verified" in str(exc)
    except StoreDataLoss:
        pass  # already done
    with pytest.raises(StoreDataLoss, match="sha256 mismatch"):
        st2.take_bytes([0])
    assert v.state == "failed"


def test_labels_out_of_range_fail_the_open_naming_shard_and_row(tmp_path):
    store = write_store(tmp_path / "s", np.zeros((50, 4), np.uint8), np.arange(50) % 5)
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest.update(num_classes=3, class_names=["a", "b", "c"], class_counts=[50, 0, 0])  # an edited manifest
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match=r"shard-00000.arrow: row 3 \(id 3\) has label 3, outside \[0, 3\) \(20 such rows\)"):
        Store(store.path)


def test_ingest_names_the_row_with_a_bad_label(tmp_path):
    from storage_service.ingest import IngestError

    with pytest.raises(IngestError, match=r"row 7 has label 200, outside \[0, 3\)"):
        write_store(tmp_path / "s", np.zeros((10, 2), np.uint8), [0, 1, 2, 0, 1, 2, 0, 200, 1, 1], class_names=["a", "b", "c"])
    assert not (tmp_path / "s").exists() and os.listdir(tmp_path) == []  # nothing half-written


def test_leftovers_only_when_their_writer_is_gone(tmp_path):
    import fcntl

    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "st").mkdir()
    dead_file = tmp_path / "st" / f".sel-1.arrow.tmp{gone.pid}"
    dead_file.write_bytes(b"x")
    mine = tmp_path / f".x.tmp{os.getpid()}"  # this process is alive
    mine.write_bytes(b"x")
    locked = tmp_path / ".y.tmp-abcdef01"  # no pid, old, but locked by a live ingest
    locked.mkdir()
    os.utime(locked, (1e9, 1e9))
    fd = os.open(locked, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    user_file = tmp_path / "notes.tmp.txt"  # not a NeSSA name: never touched
    user_file.write_text("keep")
    try:
        found = dict(find_leftovers(tmp_path))
        assert list(found) == [dead_file] and "is gone" in found[dead_file]
    finally:
        os.close(fd)
    removed = [p for p, _ in remove_leftovers(tmp_path)]
    assert sorted(removed) == sorted([dead_file, locked])
    assert mine.exists() and user_file.exists()
