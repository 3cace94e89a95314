"""One definition each: strategy names (and their wire values), backend names, the fraction
rule and the per-class budget, read the same way by every layer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from host.backends import SERVED_BACKENDS, Backend, backend_names
from host.budget import check_fraction, class_budget, class_budgets_array
from host.strategies import ALIASES, Strategy, parse_strategy, spec, strategy_names


def test_every_strategy_and_served_backend_has_its_wire_value_and_back():
    from storage_service._names import BACKEND_TO_PB, PB_TO_BACKEND, PB_TO_STRATEGY, STRATEGY_TO_PB

    assert set(STRATEGY_TO_PB) == set(Strategy) and len(set(STRATEGY_TO_PB.values())) == len(Strategy)
    assert all(PB_TO_STRATEGY[v] is s for s, v in STRATEGY_TO_PB.items())
    assert set(BACKEND_TO_PB) == set(SERVED_BACKENDS) and all(PB_TO_BACKEND[v] is b for b, v in BACKEND_TO_PB.items())
    assert 0 not in PB_TO_STRATEGY and 0 not in PB_TO_BACKEND  # UNSPECIFIED never maps to a name


def test_names_aliases_and_errors():
    assert strategy_names()[:3] == ["full", "random", "craig"]
    assert parse_strategy("nessa") is Strategy.CRAIG is ALIASES["nessa"] and spec("nessa") is spec(Strategy.CRAIG)
    assert parse_strategy(" CRAIG ") is Strategy.CRAIG
    with pytest.raises(ValueError, match=r"--strategy: unknown strategy 'bogus'; choose one of full, random, craig"):
        parse_strategy("bogus", option="--strategy")
    assert backend_names(served=True) == ["cpu", "emu", "xrt"] and Backend.PYNQ.value in backend_names()


@pytest.mark.parametrize("bad", [0, -0.1, 1.0001, float("nan"), float("inf"), "x", None, True])
def test_fraction_rule_names_the_option(bad):
    with pytest.raises(ValueError, match="--fraction"):
        check_fraction(bad, option="--fraction")


def test_fraction_rule_is_the_same_everywhere():
    """The trainer's config, the service's check and the store's random subset all refuse the
    same values with the same rule."""
    from storage_service._errors import InvalidArgument
    from storage_service.sampling import random_subset
    from storage_service.selections import check_fraction as service_check
    from trainer.config import ConfigError, TrainConfig

    for f in (0.0, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="--fraction"):
            TrainConfig(servers="a:1", dataset="d", strategy="random", fraction=f)
        with pytest.raises(InvalidArgument):
            service_check(Strategy.RANDOM, f)
        with pytest.raises(ValueError):
            random_subset(np.zeros(10, np.int64), f, 0)
    assert service_check(Strategy.RANDOM, 0.25) == TrainConfig(servers="a:1", dataset="d", strategy="random", fraction=0.25).fraction


@pytest.mark.parametrize("fraction", [0.001, 0.05, 0.1, 0.3, 1 / 3, 0.5, 1.0])
def test_per_class_budget_agrees_across_layers(fraction):
    """The store's random subset, the selection driver and the cluster model use one budget."""
    from host.selection import class_budgets
    from sim.perf.work import budget as model_budget
    from storage_service.sampling import random_subset

    counts = np.array([1, 2, 3, 7, 10, 30, 99, 100, 6000, 6001])
    expect = [class_budget(int(n), fraction) for n in counts]
    assert expect == [min(n, max(1, math.ceil(fraction * n - 1e-9))) for n in counts]
    assert class_budgets(counts, fraction).tolist() == expect == class_budgets_array(counts, fraction).tolist()
    assert [model_budget(float(n), fraction) for n in counts] == expect
    labels = np.repeat(np.arange(len(counts)), counts)
    picked = random_subset(labels, fraction, seed=1)
    assert np.bincount(labels[picked], minlength=len(counts)).tolist() == expect
    assert class_budget(0, fraction) == 0
