"""Greedy facility location on the CPU: lazy == naive bit for bit, golden agreement, weights,
stochastic bound, max_dist invariance, argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from host import _fl_kernels as K
from host._distances import pairwise_distances
from host.facility_location import (
    DEFAULT_EPSILON,
    facility_location,
    objective,
    stochastic_sample_size,
)
from host.golden.greedy import greedy_fixed


def _data(rng, n, d, kind):
    if kind == "ties":  # few distinct values: many exactly tied gains
        return rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    if kind == "dups":  # duplicated rows
        base = rng.normal(size=(max(1, n // 3), d))
        return base[rng.integers(0, len(base), n)].astype(np.float32)
    return rng.normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("kind", ["gauss", "ties", "dups"])
def test_lazy_equals_naive_exactly(kind, distance_path):
    rng = np.random.default_rng({"gauss": 1, "ties": 2, "dups": 3}[kind])
    for _ in range(60):
        n = int(rng.integers(1, 90))
        x = _data(rng, n, int(rng.integers(1, 6)), kind)
        k = int(rng.integers(1, n + 1))
        weights = rng.integers(0, 4, n).astype(np.float64) if rng.random() < 0.3 else None
        a = facility_location(x, k, optimizer="naive", member_weights=weights)
        b = facility_location(x, k, optimizer="lazy", member_weights=weights)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.gains, b.gains)
        np.testing.assert_array_equal(a.weights, b.weights)
        assert a.objective == b.objective
        assert b.evaluations <= a.evaluations


def test_naive_kernel_picks_lowest_index_on_ties():
    x = np.zeros((6, 2), np.float32)  # all identical: every gain ties at every step
    r = facility_location(x, 4, optimizer="lazy")
    np.testing.assert_array_equal(r.ids, [0, 1, 2, 3])
    np.testing.assert_array_equal(r.weights, [6, 0, 0, 0])  # everyone goes to the lowest id


@pytest.fixture(params=["direct", "gemm"])
def distance_path(request, monkeypatch):
    """Run a test through both distance routes (direct differences for small d, GEMM else)."""
    import host._distances as hd

    monkeypatch.setattr(hd, "_DIRECT_MAX_DIM", 1 << 30 if request.param == "direct" else 0)
    return request.param


def test_matches_golden_integer_greedy(distance_path):
    """1-D integer features with an integer mean: distances, similarities and gains are exact
    integers, so the float greedy must reproduce the golden fixed-point greedy exactly."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(2, 60))
        v = rng.integers(0, 50, n)
        v[-1] += (-int(v.sum())) % n  # integer mean keeps centred features integral
        x = v.astype(np.float32)[:, None]
        k = int(rng.integers(1, n + 1))
        m = int(v.max() - v.min())
        sim = (m - np.abs(v[:, None] - v[None, :])).astype(np.uint16)
        gold = greedy_fixed(sim, k)
        for opt in ("lazy", "naive"):
            r = facility_location(x, k, optimizer=opt)
            np.testing.assert_array_equal(r.ids, gold.ids)
            np.testing.assert_array_equal(r.gains, gold.gains.astype(np.float64))
            np.testing.assert_array_equal(r.weights, gold.weights)
            assert r.objective == gold.objective
            assert r.max_dist == m


def test_naive_matches_float64_reference_objective():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    s = d.max() - d
    k = 15
    cover = np.zeros(len(x))
    chosen = []
    for _ in range(k):  # textbook greedy in float64
        g = np.maximum(s - cover[None, :], 0).sum(1)
        g[chosen] = -1
        j = int(np.argmax(g))
        chosen.append(j)
        cover = np.maximum(cover, s[j])
    r = facility_location(x, k, optimizer="lazy")
    assert r.ids.tolist() == chosen
    assert r.objective == pytest.approx(cover.sum(), rel=1e-5)
    assert objective(x, r.ids, max_dist=r.max_dist) == pytest.approx(cover.sum(), rel=1e-5)


def test_weights_sum_and_assignment():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    r = facility_location(x, 30)
    assert r.weights.sum() == 300
    assert (r.weights >= 1).all()  # every selected element at least covers itself
    d, _ = pairwise_distances(x)
    owner = r.ids[np.argmin(d[r.ids], axis=0)]
    counts = np.array([(owner == j).sum() for j in r.ids])
    np.testing.assert_array_equal(r.weights, counts)
    w = rng.random(300)
    rw = facility_location(x, 30, member_weights=w)
    assert rw.weights.sum() == pytest.approx(w.sum())


def test_max_dist_changes_objective_not_set():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    a = facility_location(x, 20)
    b = facility_location(x, 20, max_dist=a.max_dist + 10.0)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert b.objective == pytest.approx(a.objective + 200 * 10.0, rel=1e-6)
    c = facility_location(x, 20, max_dist=0.0)  # every similarity clipped to 0
    assert c.objective == 0.0 and len(np.unique(c.ids)) == 20


def test_stochastic_within_bound_of_lazy_on_average():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(8, 6)) * 4
    x = (centres[rng.integers(0, 8, 800)] + rng.normal(size=(800, 6))).astype(np.float32)
    k = 80
    lazy = facility_location(x, k).objective
    eps = DEFAULT_EPSILON
    runs = [facility_location(x, k, optimizer="stochastic", seed=s) for s in range(5)]
    mean = float(np.mean([r.objective for r in runs]))
    assert mean >= (1 - 1 / math.e - eps) * lazy
    assert mean >= 0.97 * lazy  # empirically far above the worst-case bound
    assert all(len(np.unique(r.ids)) == k for r in runs)
    assert runs[0].ids.tolist() != runs[1].ids.tolist()  # the seed matters
    again = facility_location(x, k, optimizer="stochastic", seed=0)
    np.testing.assert_array_equal(again.ids, runs[0].ids)  # and is reproducible
    assert runs[0].evaluations < facility_location(x, k, optimizer="naive").evaluations
    rand = [objective(x, rng.choice(800, k, replace=False), max_dist=runs[0].max_dist) for _ in range(5)]
    assert mean > max(rand)


def test_stochastic_sample_size():
    assert stochastic_sample_size(1000, 100, 0.01) == math.ceil(10 * math.log(100))
    assert stochastic_sample_size(1000, 100, 0.9) == 2  # the degenerate 0.9 default elsewhere
    assert stochastic_sample_size(10, 10, 1e-9) == 10  # capped at n


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k must be in"),
        (dict(k=11), "k must be in"),
        (dict(k=2, optimizer="greedyish"), "unknown optimizer"),
        (dict(k=2, epsilon=0.0), "epsilon"),
        (dict(k=2, epsilon=1.0), "epsilon"),
        (dict(k=2, max_dist=-1.0), "max_dist"),
        (dict(k=2, member_weights=np.ones(3)), "member_weights"),
    ],
)
def test_bad_arguments(kwargs, match):
    x = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    k = kwargs.pop("k")
    with pytest.raises(ValueError, match=match):
        facility_location(x, k, **kwargs)


def test_nan_features_rejected():
    x = np.ones((5, 2), np.float32)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite.*row 3"):
        facility_location(x, 2)


def test_distance_matrix_blocks_and_diagonal(distance_path, monkeypatch):
    import host._distances as hd

    monkeypatch.setattr(hd, "_BLOCK_BYTES", 1 << 20)  # 256-row blocks: upper parts + mirrored lower parts
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(2500, 7)) + 100).astype(np.float32)  # offset: centring keeps precision
    d, mx = pairwise_distances(x)
    ref = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :50, :]) ** 2).sum(-1))
    np.testing.assert_allclose(d[:, :50], ref, atol=2e-3)  # columns: every row block's lower part
    assert (d == d.T).all()  # exactly symmetric
    assert (np.diag(d) == 0).all()
    assert mx == pytest.approx(float(d.max()))
    dc = np.full(2500, np.float32(mx), np.float32)
    ids, _, _, weights = K.greedy_weights(d, 2, dc, np.ones(1), False, K.LAZY, 2500, 0)
    assert weights.sum() == 2500 and len(set(ids.tolist())) == 2


def test_near_duplicate_distances_are_accurate(distance_path):
    """Softmax features of confident examples are near-duplicates far from the mean: the Gram
    expansion alone would lose all digits there; the refinement recomputes them directly."""
    rng = np.random.default_rng(2)
    base = np.zeros((1, 10), np.float32)
    base[0, 3] = -1.0
    x = np.concatenate([base + rng.normal(scale=1e-4, size=(300, 10)), rng.normal(size=(30, 10))]).astype(np.float32)
    d, _ = pairwise_distances(x)
    ref = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    small = (ref > 0) & (ref < 1e-3)
    assert small.sum() > 10000
    rel = np.abs(d[small] - ref[small]) / ref[small]
    assert rel.max() < 1e-4


def test_reused_matrix_memory_gives_the_same_matrices():
    from host._distances import reuse_matrix_memory

    rng = np.random.default_rng(4)
    xs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (50, 80, 30)]
    fresh = [pairwise_distances(x)[0] for x in xs]
    with reuse_matrix_memory(60):
        got = []
        for x in xs:
            d, _ = pairwise_distances(x)
            got.append(d.copy())
            last = d
        d2, _ = pairwise_distances(xs[2])
        assert np.shares_memory(last, d2)  # one buffer, reused
    for a, b in zip(fresh, got):
        np.testing.assert_array_equal(a, b)
    d3, _ = pairwise_distances(xs[2])
    assert not np.shares_memory(d3, d2)  # released on exit
