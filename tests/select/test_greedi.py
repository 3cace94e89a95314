"""GreeDi: partitioned selection close to the unpartitioned one; the merge on its own."""

from __future__ import annotations

import numpy as np
import pytest

from host.facility_location import facility_location, objective
from host.greedi import greedi, greedi_merge, max_pairwise_distance, part_size, split_budget


def _clusters(seed, n=3000, c=30, d=6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(c, d)) * 10
    return (centres[rng.integers(0, c, n)] + rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_greedi_close_to_unpartitioned_on_clustered_data(seed):
    x = _clusters(seed)
    k = 60
    full = facility_location(x, k)
    budget = 4 * 800 * 800  # parts of <= 800 -> 4 parts
    r = greedi(x, k, memory_budget_bytes=budget, seed=seed)
    assert r.parts == 4
    assert len(np.unique(r.ids)) == k
    assert r.objective == pytest.approx(objective(x, r.ids, max_dist=full.max_dist), rel=1e-6)
    assert r.objective >= 0.99 * full.objective
    assert r.weights.sum() == pytest.approx(len(x))


def test_merge_recurses_when_the_union_is_too_big():
    x = _clusters(2, n=2000)
    k = 150  # 5 parts x 150 = 750 candidates > part size 400
    r = greedi(x, k, memory_budget_bytes=4 * 400 * 400)
    full = facility_location(x, k)
    assert len(np.unique(r.ids)) == k
    assert r.objective >= 0.98 * full.objective


def test_proportional_fallback_when_parts_cannot_shrink():
    x = _clusters(3, n=1000)
    r = greedi(x, 600, memory_budget_bytes=4 * 300 * 300)  # k larger than any part
    assert len(np.unique(r.ids)) == 600 and not r.merged
    assert r.weights.sum() == pytest.approx(1000)


def test_greedi_checks_k():
    # k outside [1, n]: a clear error, not an empty-concatenate crash (k = 0) or n ids (k > n)
    x = _clusters(5, n=300)
    for k in (0, 301):
        with pytest.raises(ValueError, match=r"k must be in \[1, 300\]"):
            greedi(x, k, memory_budget_bytes=4 * 100 * 100)


def test_greedi_merge_of_candidates_from_several_hosts():
    """Two 'hosts' each select from their half; the merge of their weighted candidates is as
    good as selecting from everything at once (within 2%)."""
    x = _clusters(4, n=2000)
    halves = [np.arange(0, 1000), np.arange(1000, 2000)]
    cands, wts = [], []
    for h in halves:
        r = facility_location(x[h], 40)
        cands.append(h[r.ids])
        wts.append(r.weights)
    union = np.concatenate(cands)
    m = greedi_merge(x[union], np.concatenate(wts), 40)
    assert m.weights.sum() == pytest.approx(2000)
    chosen = union[m.ids]
    full = facility_location(x, 40)
    assert objective(x, chosen, max_dist=full.max_dist) >= 0.98 * full.objective
    with pytest.raises(ValueError, match="disagree"):
        greedi_merge(x[union], np.ones(3), 10)


def test_helpers():
    assert part_size(4 * 1000 * 1000) == 1000
    with pytest.raises(ValueError, match="too small"):
        part_size(8)
    assert split_budget(10, np.array([50, 30, 20])).tolist() == [5, 3, 2]
    assert split_budget(3, np.array([1, 1, 1, 1])).tolist() == [1, 1, 1, 0]
    assert split_budget(100, np.array([2, 3])).tolist() == [2, 3]
    x = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    ref = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)).max()
    assert max_pairwise_distance(x, block_bytes=4 * 500 * 7) == pytest.approx(ref, rel=1e-4)
