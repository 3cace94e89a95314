"""Mini-batch coresets from random pools (host/minibatch.py): pool draws, exact batch sizes,
weights bounded by the pool, the same picks as facility location on the pool, losses from features."""

from __future__ import annotations

import numpy as np
import pytest

from host.minibatch import draw_pools, losses_from_features, minibatch_coresets


def test_pools_are_disjoint_while_candidates_last_then_redrawn():
    rng = np.random.default_rng(0)
    cand = np.arange(100, 400)
    pools = draw_pools(cand, 3, 100, rng)
    assert [len(p) for p in pools] == [100] * 3 and len(np.unique(np.concatenate(pools))) == 300
    more = draw_pools(cand, 4, 100, np.random.default_rng(1))  # 400 > 300: the fourth pool comes from a new draw
    assert all(len(np.unique(p)) == 100 and np.isin(p, cand).all() for p in more)
    assert len(draw_pools(cand[:10], 2, 50, rng)[0]) == 10  # a pool never exceeds the candidates
    with pytest.raises(ValueError, match="no candidates"):
        draw_pools(np.empty(0, np.int64), 1, 5, rng)
    with pytest.raises(ValueError, match="num_pools"):
        draw_pools(cand, 0, 5, rng)


def test_each_pool_gives_exactly_b_with_weights_summing_to_b():
    rng = np.random.default_rng(2)
    n = 2000
    ids = np.arange(10_000, 10_000 + n)  # global ids need not start at 0
    labels = rng.integers(0, 10, n)
    feats = (rng.normal(size=(n, 10)) + np.eye(10)[labels] * 3).astype(np.float32)
    pools = draw_pools(ids, 4, 320, rng)
    sel = minibatch_coresets(feats, labels, ids, pools, 32, seed=3)
    assert sel.batch_size == 32 and sel.num_batches == 4 and len(sel.ids) == 128
    w = sel.weights.reshape(4, 32)
    np.testing.assert_allclose(w.sum(1), 32, rtol=1e-5)
    assert w.max() <= 320 * 32 / 320  # a weight never exceeds the pool it stands for (normalised)
    for p, chunk in zip(pools, sel.ids.reshape(4, 32)):
        assert np.isin(chunk, p).all() and len(np.unique(chunk)) == 32


def test_picks_equal_facility_location_on_the_pool():
    from host.selection import Budget, select

    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 50)
    feats = rng.normal(size=(150, 4)).astype(np.float32)
    ids = np.arange(150)
    pool = rng.permutation(150)[:60]
    got = minibatch_coresets(feats, labels, ids, [pool], 12)
    ref = select(feats[pool], labels[pool], 12 / 60, budget=Budget.GLOBAL)
    np.testing.assert_array_equal(got.ids, pool[ref.ids])
    np.testing.assert_allclose(got.weights, ref.weights)


def test_a_pool_no_larger_than_the_batch_is_the_batch():
    ids = np.arange(10)
    got = minibatch_coresets(np.zeros((10, 3), np.float32), np.zeros(10, np.int64), ids, [ids[:5]], 8)
    assert got.ids.tolist() == [0, 1, 2, 3, 4] and (got.weights == 1).all()


def test_losses_from_features_equal_cross_entropy():
    import torch

    logits = torch.randn(20, 7)
    y = torch.randint(0, 7, (20,))
    g = torch.softmax(logits, 1)
    g[torch.arange(20), y] -= 1.0
    want = torch.nn.functional.cross_entropy(logits, y, reduction="none").numpy()
    np.testing.assert_allclose(losses_from_features(g.numpy(), y.numpy()), want, rtol=1e-4, atol=1e-5)
