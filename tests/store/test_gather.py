"""The one-pass C row gather (storage_service/_gather_native.c) behind Store.take_bytes."""

from __future__ import annotations

import numpy as np
import pytest

from storage_service import _gather
from storage_service.ingest import write_store


def test_library_is_built():
    # pip builds it with the C compiler CI installs; without one Store falls back to numpy.
    assert _gather.available()


@pytest.fixture()
def many_batches(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(2000, 3, 11), dtype=np.uint8)
    store = write_store(tmp_path / "s", x, rng.integers(0, 5, 2000), shard_bytes=33 * 300, batch_bytes=33 * 70)
    return store, x.reshape(2000, -1)


@pytest.mark.parametrize("pick", ["permutation", "duplicates", "edges", "one"])
def test_matches_numpy_and_the_source(many_batches, pick):
    store, rows = many_batches
    assert store._bases is not None and len(store._views) > 20
    rng = np.random.default_rng(7)
    ids = {
        "permutation": rng.permutation(2000),
        "duplicates": rng.integers(0, 2000, 5000),
        # the first and last row of every record batch: where a binary search goes wrong
        "edges": np.unique(np.concatenate([store._starts[:-1], store._starts[1:] - 1])),
        "one": np.array([1999]),
    }[pick]
    fast = store.take_bytes(ids)
    bases, store._bases = store._bases, None  # the numpy path
    try:
        slow = store.take_bytes(ids)
    finally:
        store._bases = bases
    np.testing.assert_array_equal(fast, rows[ids])
    np.testing.assert_array_equal(fast, slow)


def test_into_a_given_buffer_and_any_int_dtype(many_batches):
    store, rows = many_batches
    ids = np.array([1999, 0, 700, 700, 3], dtype=np.int32)
    out = np.zeros((5, 33), np.uint8)
    assert store.take_bytes(ids, out=out) is out
    np.testing.assert_array_equal(out, rows[ids])
    region = np.zeros((10, 33), np.uint8)[::2]  # not contiguous: the numpy path fills it
    store.take_bytes(ids, out=region)
    np.testing.assert_array_equal(region, rows[ids])


def test_arguments_are_checked(many_batches):
    store, _ = many_batches
    ids = np.arange(4, dtype=np.int64)
    with pytest.raises(ValueError, match="starts"):
        _gather.gather_rows(store._bases, store._starts[:-1], ids, 33, np.empty((4, 33), np.uint8))
    with pytest.raises(ValueError, match="ids"):
        _gather.gather_rows(store._bases, store._starts, ids.astype(np.int32), 33, np.empty((4, 33), np.uint8))
    with pytest.raises(ValueError, match="out"):
        _gather.gather_rows(store._bases, store._starts, ids, 33, np.empty((4, 32), np.uint8))
    with pytest.raises(ValueError, match="row-contiguous"):
        _gather.row_bases([np.zeros((4, 8), np.uint8)[:, ::2]])
