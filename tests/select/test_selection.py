"""host.select: per-class budgets, id mapping, weights, backend routing, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import host
from host import backends
from host.facility_location import facility_location
from host.selection import class_budgets


def _mixture(seed=0, n=1200, classes=4, d=8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = (rng.normal(size=(classes, d))[y] * 3 + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.37, 1.0])
def test_exactly_k_per_class_and_raw_weights_sum_to_class_size(fraction):
    x, y = _mixture()
    sel = host.select(x, y, fraction, normalize_weights=False)
    for c in np.unique(y):
        n_c = int((y == c).sum())
        mine = sel.labels == c
        assert mine.sum() == math.ceil(fraction * n_c)
        assert (y[sel.ids[mine]] == c).all()
        assert sel.weights[mine].sum() == pytest.approx(n_c)
    assert len(np.unique(sel.ids)) == len(sel.ids)
    assert sel.ids.dtype == np.int64 and sel.weights.dtype == np.float32
    assert sel.objective == pytest.approx(sum(r.objective for r in sel.per_class))
    assert [r.k for r in sel.per_class] == [int((sel.labels == r.cls).sum()) for r in sel.per_class]


def test_normalised_weights_sum_to_selection_size():
    x, y = _mixture(1)
    sel = host.select(x, y, 0.1)
    assert sel.weights.sum() == pytest.approx(len(sel), rel=1e-5)
    raw = host.select(x, y, 0.1, normalize_weights=False)
    np.testing.assert_allclose(sel.weights, raw.weights * len(sel) / len(y), rtol=1e-6)


def test_per_class_result_is_the_class_greedy_with_global_ids():
    x, y = _mixture(2)
    ids = np.arange(len(y)) * 10 + 7  # a global id map
    sel = host.select(x, y, 0.05, normalize_weights=False, ids=ids)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        r = facility_location(x[members], math.ceil(0.05 * len(members)))
        np.testing.assert_array_equal(sel.ids[sel.labels == c], ids[members[r.ids]])
        np.testing.assert_array_equal(sel.weights[sel.labels == c], r.weights)


def test_lazy_equals_naive_through_select_and_stochastic_is_seeded():
    x, y = _mixture(3, n=400)
    a = host.select(x, y, 0.1, optimizer="lazy")
    b = host.select(x, y, 0.1, optimizer="naive")
    np.testing.assert_array_equal(a.ids, b.ids)
    s1 = host.select(x, y, 0.1, optimizer="stochastic", seed=1)
    s2 = host.select(x, y, 0.1, optimizer="stochastic", seed=1)
    np.testing.assert_array_equal(s1.ids, s2.ids)
    assert s1.objective <= a.objective * 1.0001


def test_global_budget_split_in_proportion():
    y = np.repeat([0, 1, 2], [700, 200, 100])
    x = np.random.default_rng(4).normal(size=(1000, 3)).astype(np.float32)
    sel = host.select(x, y, 0.15, budget="global")
    assert len(sel) == 150
    assert [r.k for r in sel.per_class] == [105, 30, 15]
    assert class_budgets(np.array([5, 5, 1]), 0.1, "global").sum() == 2


def test_tiny_fraction_still_selects_ceil_at_least_one_per_class():
    # ceil(fraction * n_c) >= 1 for any fraction > 0: the float-noise guard must not round it to 0
    np.testing.assert_array_equal(class_budgets(np.array([1, 7, 0]), 1e-10), [1, 1, 0])
    assert class_budgets(np.array([3, 4]), 1e-12, "global").sum() == 1
    x, y = _mixture(n=40, classes=2)
    sel = host.select(x, y, 1e-10)
    assert [r.k for r in sel.per_class] == [1, 1]


def test_greedi_used_above_memory_budget():
    x, y = _mixture(5, n=2000, classes=2)
    sel = host.select(x, y, 0.1, memory_budget_bytes=4 * 400 * 400)
    assert all(r.parts >= 3 for r in sel.per_class)
    assert [r.k for r in sel.per_class] == [math.ceil(0.1 * (y == c).sum()) for c in (0, 1)]
    full = host.select(x, y, 0.1)
    assert sel.objective >= 0.97 * full.objective


def _golden_backend(monkeypatch):
    """Load tests/_select_backend_golden.py under a private module name (no package needed)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "_nessa_test_golden_backend"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_select_backend_golden.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setitem(backends._REGISTRY, backends.Backend.EMU, name)
    return mod


def test_backend_routing(monkeypatch):
    gold = _golden_backend(monkeypatch)
    gold.CALLS.clear()
    x, y = _mixture(6, n=300, classes=3)
    sel = host.select(x, y, 0.1, backend="emu", normalize_weights=False)
    assert sel.backend == "emu"
    assert sorted(gold.CALLS) == sorted((int((y == c).sum()), math.ceil(0.1 * (y == c).sum())) for c in range(3))
    cpu = host.select(x, y, 0.1, normalize_weights=False)
    overlap = len(np.intersect1d(sel.ids, cpu.ids)) / len(cpu.ids)
    assert overlap >= 0.8  # quantised integer greedy vs float greedy: same picks up to near-ties
    assert sel.objective == pytest.approx(cpu.objective, rel=0.01)


def test_unavailable_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(backends._REGISTRY, backends.Backend.XRT, "host._no_such_module_for_tests")
    x, y = _mixture(7, n=50)
    with pytest.raises(RuntimeError, match="backend 'xrt' is unavailable"):
        host.select(x, y, 0.1, backend="xrt")


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, float("nan"), float("inf"), "half"])
def test_bad_fraction(fraction):
    x, y = _mixture(n=50)
    with pytest.raises(ValueError, match="fraction must be"):
        host.select(x, y, fraction)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features(bad):
    x, y = _mixture(n=50)
    x[17, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite.*row 17"):
        host.select(x, y, 0.5)


def test_length_mismatch_and_other_bad_inputs():
    x, y = _mixture(n=50)
    with pytest.raises(ValueError, match="length mismatch: 50 feature rows"):
        host.select(x, y[:-1], 0.5)
    with pytest.raises(ValueError, match="length mismatch"):
        host.select(x, y, 0.5, ids=np.arange(3))
    with pytest.raises(ValueError, match="2-D"):
        host.select(x[:, 0], y, 0.5)
    with pytest.raises(ValueError, match="labels must be integers"):
        host.select(x, y.astype(float), 0.5)
    with pytest.raises(ValueError, match="unknown optimizer"):
        host.select(x, y, 0.5, optimizer="fast")
    with pytest.raises(ValueError, match="unknown backend"):
        host.select(x, y, 0.5, backend="gpu")
    with pytest.raises(ValueError, match="unknown budget"):
        host.select(x, y, 0.5, budget="per_shard")
    with pytest.raises(ValueError, match="epsilon"):
        host.select(x, y, 0.5, epsilon=2)
    with pytest.raises(ValueError, match="empty"):
        host.select(x[:0], y[:0], 0.5)
