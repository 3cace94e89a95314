"""Epoch orders, rank shares, random subsets and batch sizing of StreamSamples."""

from __future__ import annotations

import numpy as np
import pytest

from storage_service.sampling import MAX_BATCH_BYTES, class_budget, epoch_order, random_subset, rank_positions, rows_per_batch, share


def test_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = epoch_order(1000, seed=3, epoch=1)
    assert sorted(a.tolist()) == list(range(1000))
    assert np.array_equal(a, epoch_order(1000, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(1000, seed=3, epoch=2))
    assert not np.array_equal(a, epoch_order(1000, seed=4, epoch=1))
    assert not np.array_equal(a, np.arange(1000))


@pytest.mark.parametrize("n,world", [(10, 3), (1000, 4), (7, 8), (0, 2), (97, 1)])
def test_rank_shares_are_disjoint_and_complete(n, world):
    ids = np.arange(n, dtype=np.int64) * 5
    weights = np.arange(n, dtype=np.float32)
    parts = [share(ids, weights, seed=1, epoch=2, rank=r, world_size=world) for r in range(world)]
    got = np.concatenate([p[0] for p in parts])
    assert sorted(got.tolist()) == ids.tolist()
    sizes = [len(p[0]) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    for pid, pw in parts:
        assert np.array_equal(pw, pid / 5)  # weights travel with their ids


def test_bad_ranks_refused():
    for rank, world in [(-1, 2), (2, 2), (0, 0)]:
        with pytest.raises(ValueError):
            rank_positions(10, rank, world)


def test_random_subset_budgets_per_class():
    labels = np.repeat(np.arange(4), [10, 30, 1, 59])
    ids = random_subset(labels, 0.1, seed=5)
    assert np.bincount(labels[ids], minlength=4).tolist() == [1, 3, 1, 6]
    assert len(np.unique(ids)) == len(ids) and np.all(np.diff(ids) > 0)
    assert np.array_equal(ids, random_subset(labels, 0.1, seed=5))
    assert not np.array_equal(random_subset(labels, 0.5, seed=5), random_subset(labels, 0.5, seed=6))
    assert class_budget(30, 0.1) == 3 and class_budget(7, 1.0) == 7
    # ceil(f * n_c) >= 1 for any f > 0 (as host.select's budgets): the noise guard must not make it 0
    assert class_budget(5, 1e-10) == 1 and class_budget(0, 0.5) == 0
    assert np.bincount(labels[random_subset(labels, 1e-10, seed=1)], minlength=4).tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="fraction"):
        random_subset(labels, 0.0, seed=1)


def test_rows_per_batch():
    assert rows_per_batch(784, 1 << 20) == (1 << 20) // 784
    assert rows_per_batch(784, 0) == (1 << 20) // 784
    assert rows_per_batch(10_000_000, 1) == 1
    assert rows_per_batch(1, 1 << 40) == MAX_BATCH_BYTES
