"""Selection strategies the trainer knows, in a small registry keyed by an enum.

A strategy answers one question at each reselection point: which samples does each storage
service stream for the next epochs? ``full`` never asks the server to select; ``random`` asks
for a uniform per-class sample of the same budget, resampled (new seed) at every reselection;
``nessa`` pushes the current model and asks the server for a CRAIG coreset (gradient-proxy
features + per-class greedy facility location, computed next to the data).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Strategy", "StrategySpec", "spec", "FULL_SELECTION"]

#: The selection key that streams every sample of a data set with weight 1.
FULL_SELECTION = "full"


class Strategy(str, enum.Enum):
    """Registered strategies (the value is the CLI / metrics name)."""

    FULL = "full"
    RANDOM = "random"
    NESSA = "nessa"


@dataclass(frozen=True)
class StrategySpec:
    """How a strategy talks to the storage service.

    server_strategy: the ``Select`` strategy name, or None when nothing is selected.
    needs_model: push the model before each selection (model-based strategies).
    fresh_seed: use a new seed at each reselection (random resampling).
    """

    server_strategy: str | None
    needs_model: bool
    fresh_seed: bool


_REGISTRY: dict[Strategy, StrategySpec] = {
    Strategy.FULL: StrategySpec(server_strategy=None, needs_model=False, fresh_seed=False),
    Strategy.RANDOM: StrategySpec(server_strategy="random", needs_model=False, fresh_seed=True),
    # NeSSA = CRAIG selection run on the storage host.
    Strategy.NESSA: StrategySpec(server_strategy="craig", needs_model=True, fresh_seed=True),
}


def spec(strategy: Strategy | str) -> StrategySpec:
    """The registry entry for ``strategy`` (a ``Strategy`` or its name)."""
    try:
        key = Strategy(strategy)
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise ValueError(f"unknown strategy {strategy!r}; known: {names}") from None
    return _REGISTRY[key]
