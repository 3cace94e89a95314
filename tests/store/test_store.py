"""The store reader: take, class ids, iteration, verify, concurrency."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp

import numpy as np
import pyarrow as pa
import pytest

from storage_service.ingest import write_store
from storage_service.store import Store, StoreError, discover


@pytest.fixture()
def small(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1000, 5, 7), dtype=np.uint8)
    y = rng.integers(0, 4, size=1000)
    # tiny shards and batches so take() crosses many record batches and shards
    store = write_store(tmp_path / "s", x, y, shard_bytes=35 * 120, batch_bytes=35 * 50)
    return store, x, y


def test_many_shards_and_batches(small):
    store, x, y = small
    assert len(store.manifest.shards) == 9
    assert len(store._views) > len(store.manifest.shards)


def test_take_random_order_matches_source(small):
    store, x, y = small
    ids = np.random.default_rng(1).permutation(1000)[:300]
    samples, labels = store.take(ids)
    assert samples.shape == (300, 5, 7) and samples.dtype == np.uint8
    np.testing.assert_array_equal(samples, x[ids])
    np.testing.assert_array_equal(labels, y[ids])
    # duplicates and empty takes
    s2, l2 = store.take([3, 3, 999, 0])
    np.testing.assert_array_equal(s2, x[[3, 3, 999, 0]])
    assert store.take(np.array([], dtype=np.int64))[0].shape == (0, 5, 7)


def test_take_table_is_arrow(small):
    store, x, y = small
    t = store.take_table([5, 1, 2])
    assert t.column_names == ["id", "label", "sample"]
    assert t.column("id").to_pylist() == [5, 1, 2]
    assert t.column("sample")[0].as_py() == x[5].tobytes()


def test_class_ids_and_labels(small):
    store, x, y = small
    for c in range(4):
        np.testing.assert_array_equal(store.class_ids(c), np.flatnonzero(y == c))
    assert store.manifest.class_counts == np.bincount(y, minlength=4).tolist()
    with pytest.raises(StoreError, match="class 4 out of range"):
        store.class_ids(4)


def test_iter_batches_in_order(small):
    store, x, y = small
    seen = []
    for ids, samples, labels in store.iter_batches(64):
        np.testing.assert_array_equal(samples, x[ids])
        np.testing.assert_array_equal(labels, y[ids])
        seen.append(ids)
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(1000))


def test_bad_ids_named(small):
    store, _, _ = small
    with pytest.raises(StoreError, match="id 1000 out of range"):
        store.take([0, 1000])
    with pytest.raises(StoreError, match="id -1 out of range"):
        store.take([-1])
    with pytest.raises(StoreError, match="1-D integer"):
        store.take(np.zeros((2, 2), dtype=np.int64))


def test_shards_readable_by_plain_arrow(small):
    store, x, y = small
    shard = store.path / store.manifest.shards[0].file
    table = pa.ipc.open_file(pa.memory_map(str(shard))).read_all()
    assert table.schema.field("sample").type == pa.binary(35)
    assert table.column("sample")[0].as_py() == x[0].tobytes()
    import pyarrow.feather as feather  # a second, independent Arrow reader

    assert feather.read_table(str(shard)).num_rows == store.manifest.shards[0].rows


def test_verify_catches_corruption(small):
    store, _, _ = small
    assert store.verify() == []
    shard = store.path / store.manifest.shards[3].file
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    problems = store.verify()
    assert any("sha256 mismatch" in p and shard.name in p for p in problems)


def test_verify_missing_shard(small):
    store, _, _ = small
    (store.path / store.manifest.shards[1].file).unlink()
    assert any("cannot read" in p for p in store.verify())


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no manifest.json"):
        Store(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="invalid JSON"):
        Store(tmp_path)


def test_discover(tmp_path):
    x = np.zeros((4, 2), np.uint8)
    write_store(tmp_path / "a", x, [0, 1, 0, 1])
    write_store(tmp_path / "b" / "train", x, [0, 1, 0, 1])
    assert sorted(discover(tmp_path)) == ["a", "b/train"]


def test_threads_read_concurrently(small):
    store, x, y = small

    def work(seed):
        ids = np.random.default_rng(seed).integers(0, 1000, 500)
        s, l = store.take(ids)
        return np.array_equal(s, x[ids]) and np.array_equal(l, y[ids])

    with cf.ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(32)))


def _proc_take(args):
    path, seed = args
    store = Store(path)
    ids = np.random.default_rng(seed).integers(0, len(store), 200)
    s, l = store.take(ids)
    return ids, s, l


def test_processes_read_concurrently(small):
    store, x, y = small
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        for ids, s, l in pool.map(_proc_take, [(str(store.path), k) for k in range(6)]):
            np.testing.assert_array_equal(s, x[ids])
            np.testing.assert_array_equal(l, y[ids])


def test_fashion_mnist_round_trip(fm_store_root, fashion_mnist_dir):
    from storage_service.ingest.idx import read_idx

    train = Store(fm_store_root / "fm" / "train")
    test = Store(fm_store_root / "fm" / "test")
    assert len(train) == 60000 and len(test) == 10000
    assert train.manifest.class_counts == [6000] * 10 and test.manifest.class_counts == [1000] * 10
    assert train.sample_shape == (28, 28) and train.manifest.dtype == "uint8"
    x = read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz")
    y = read_idx(fashion_mnist_dir / "train-labels-idx1-ubyte.gz")
    ids = np.random.default_rng(0).permutation(60000)
    samples, labels = train.take(ids)
    np.testing.assert_array_equal(samples, x[ids])
    np.testing.assert_array_equal(labels, y[ids])
    assert train.verify() == [] and test.verify() == []


def test_take_bytes_into_a_given_buffer(small):
    store, x, _ = small
    ids = np.array([999, 0, 500, 3, 3])
    out = np.full((5, 35), 7, np.uint8)
    assert store.take_bytes(ids, out=out) is out
    np.testing.assert_array_equal(out, x[ids].reshape(5, -1))
    with pytest.raises(StoreError, match=r"out must be uint8 \[5, 35\]"):
        store.take_bytes(ids, out=np.empty((4, 35), np.uint8))
