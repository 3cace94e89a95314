"""host.sas: the reference's ranking (checked against its lazy greedy), exact per-class budgets,
no duplicates, facility location on cpu vs emu."""

import numpy as np
import pytest

from host.budget import class_budget
from host.sas import pool_budgets, sas_select


def _clustered(seed=0, n=900, k=3, d=16, noise=0.1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    return (centres[y] + noise * rng.normal(size=(n, d))).astype(np.float32), y


@pytest.mark.parametrize("pool_size", [64, 4096])
def test_budget_per_latent_class_is_exact_and_no_duplicates(pool_size):
    x, y = _clustered()
    r = sas_select(x, 0.1, labels=y, seed=1, pool_size=pool_size, objective="facility-location")
    assert np.unique(r.ids).size == r.ids.size
    assert np.array_equal(r.classes, y)  # labels used when latent == 0 and > 1 class
    for c in range(3):
        assert np.isin(r.ids, np.flatnonzero(y == c)).sum() == class_budget(int((y == c).sum()), 0.1)


def test_kmeans_classes_when_asked():
    x, y = _clustered(n=400)
    r = sas_select(x, 0.2, labels=y, latent=5, seed=0)
    assert np.unique(r.classes).size == 5
    for c in range(5):
        assert np.isin(r.ids, np.flatnonzero(r.classes == c)).sum() == class_budget(int((r.classes == c).sum()), 0.2)


def test_prefers_central_examples_over_outliers():
    rng = np.random.default_rng(2)
    d = 8
    core = np.eye(d)[0] + 0.05 * rng.normal(size=(95, d))  # one tight mode
    outliers = rng.normal(size=(5, d)) * 3  # scattered far from it
    x = np.vstack([core, outliers]).astype(np.float32)
    # facility location's first pick is the medoid (most similar to the class in total); later
    # picks cover what is left, outliers included (coverage, not a centrality ranking)
    first = sas_select(x, 0.01, latent=1, seed=0, objective="facility-location").ids
    assert first[0] < 95
    ranked = sas_select(x, 0.5, latent=1, seed=0).ids  # the reference objective: central first
    assert not np.isin(ranked, np.arange(95, 100)).any()


def test_pool_budgets_sum_and_bounds():
    sizes = np.array([7, 7, 6, 1])
    for k in range(0, 22):
        b = pool_budgets(sizes, k)
        assert b.sum() == k and (b <= sizes).all() and (b >= 0).all()


def test_cpu_and_emu_cover_the_same_modes():
    # each latent class is 4 tight sub-modes; a budget of 4 per class must take one of each
    rng = np.random.default_rng(4)
    modes = rng.normal(size=(2, 4, 8))
    y = np.repeat([0, 1], 40)
    sub = np.tile(np.repeat(np.arange(4), 10), 2)
    x = (modes[y, sub] + 0.01 * rng.normal(size=(80, 8))).astype(np.float32)
    for backend in ("cpu", "emu"):
        r = sas_select(x, 0.1, labels=y, seed=0, backend=backend, objective="facility-location")
        assert sorted(zip(y[r.ids], sub[r.ids])) == [(c, s) for c in (0, 1) for s in range(4)], backend


def test_errors_name_the_option():
    x, y = _clustered(n=60)
    with pytest.raises(ValueError, match="latent_classes"):
        sas_select(x, 0.1, latent=61)
    bad = x.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="emb/proxy contains NaN or infinite"):
        sas_select(bad, 0.1, option="emb/proxy")
    with pytest.raises(ValueError, match="fraction"):
        sas_select(x, 0.0)
    with pytest.raises(ValueError, match="objective: unknown SAS objective 'graph-cut'"):
        sas_select(x, 0.1, objective="graph-cut")


def test_input_left_untouched_unless_consumed():
    x, y = _clustered(n=200)
    keep = x.copy()
    a = sas_select(x, 0.1, labels=y)
    assert np.array_equal(x, keep)  # normalised on a copy
    b = sas_select(x, 0.1, labels=y, consume=True)
    assert np.array_equal(a.ids, b.ids)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)  # handed over: scaled in place


def _reference_lazy_greedy(z, budget):
    """The reference code's selection for one latent class, written out as it runs: cosine
    similarities masked under 0, ``inc = row sum - sum over the chosen of D[k, i]``, ``add``
    zeroing the chosen row (``distance[:][i] = 0``), lazy greedy on a max-heap of (gain, index)."""
    import heapq

    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    D = u @ u.T
    D *= D >= 0
    chosen = []
    inc = lambda i: D[i].sum() - D[np.ix_(chosen, [i])].sum()  # noqa: E731
    heap = [(-inc(i), -i) for i in range(len(z))]
    heapq.heapify(heap)
    while heap and len(chosen) < budget:
        _, ni = heapq.heappop(heap)
        i = -ni
        gain = inc(i)
        if not heap or gain >= -heap[0][0]:
            chosen.append(i)
            D[i] = 0
        else:
            heapq.heappush(heap, (-gain, ni))
    return chosen


def test_reference_objective_is_the_reference_codes_ranking():
    x, y = _clustered(seed=5, n=300, noise=0.8)
    r = sas_select(x, 0.2, labels=y)
    for c in range(3):
        m = np.flatnonzero(y == c)
        want = m[_reference_lazy_greedy(x[m].astype(np.float64), class_budget(m.size, 0.2))]
        assert set(r.ids[np.isin(r.ids, m)]) == set(want), c
