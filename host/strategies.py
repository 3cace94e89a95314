"""The strategy registry: every data-selection strategy NeSSA knows, in one place.

The service's Select RPC, the client, the trainer, the CLI and the benchmarks all read this
table; the protobuf enum mapping (``storage_service._names``) is derived from it. A strategy is
a ``Strategy`` member (its value is the API / CLI / metrics name); ``ALIASES`` keeps old names
working (``nessa`` was the name of whole-data CRAIG selection before the mini-batch modes).

    full      every sample, weight 1; nothing is selected
    random    a uniform per-class sample of ceil(f * n_c), redrawn at every reselection
    craig     CRAIG: gradient-proxy features of the whole data set, per-class greedy facility
              location, cluster-size weights (Mirzasoleiman et al. 2020)
    nessa-pa  NeSSA's partition mode: each mini-batch a weighted coreset of its own fresh random
              pool (pool ~ batch / fraction); features for the pools only
    crest     CREST (Yang et al. 2023): a few mini-batch coresets from larger random pools, used
              until the trainer's quadratic loss model drifts (adaptive steps), learned examples
              dropped from the pools
    nessa-ss  NeSSA's subset shrinking: CRAIG over the examples not yet learned
    max-loss  per class the highest-loss examples under the pushed model (the max-loss
              baseline of data-efficient augmentation, Liu & Mirzasoleiman 2022)
    adacore   AdaCore (Pooladzandi et al. 2022): craig on gradient proxies preconditioned by the
              trainer's curvature estimate, pushed with the model (host/curvature.py)
    adacore-pa  AdaCore per pool: nessa-pa's mini-batch coresets on preconditioned proxies
    sas       SAS (Joshi & Mirzasoleiman 2023): per latent class (labels or k-means on a proxy
              embedding column) the examples most similar to their class, as the reference code
              ranks them (host/sas.py; CPU)
    sas-fl    SAS's latent classes with per-pool facility location on the proxy embeddings: the
              variant that runs on the FPGA greedy kernels (host/sas.py)
    clipcov   ClipCov: the reference notebook's score (2 x own-pair match + cross-modal coverage
              of the latent class + caption-class match - similarity to the class centres) and
              global greedy with coverage deducted every 200 picks of a class (host/clipcov.py)
    pdd       progressive dataset distillation (Chen et al. 2024): nothing is selected; the trainer
              streams the stages of a set `nessa distill` made next to the data, cumulatively
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Strategy", "StrategySpec", "ALIASES", "parse_strategy", "spec", "strategy_names"]


class Strategy(str, enum.Enum):
    """Registered strategies (the value is the API / CLI / metrics name)."""

    FULL = "full"
    RANDOM = "random"
    CRAIG = "craig"
    NESSA_PA = "nessa-pa"
    CREST = "crest"
    NESSA_SS = "nessa-ss"
    MAX_LOSS = "max-loss"
    ADACORE = "adacore"
    ADACORE_PA = "adacore-pa"
    PDD = "pdd"
    SAS = "sas"
    SAS_FL = "sas-fl"
    CLIPCOV = "clipcov"


#: Old or informal names accepted wherever a strategy name is read.
ALIASES: dict[str, Strategy] = {"nessa": Strategy.CRAIG}


@dataclass(frozen=True)
class StrategySpec:
    """How a strategy runs.

    selects: the storage service computes a selection (False: stream everything).
    needs_model: the trainer pushes its model before each selection.
    fresh_seed: each reselection draws with a new seed (fresh randomness every round).
    summary: one line for ``--help`` and docs.
    minibatch: the selection is an ordered list of mini-batch coresets (streamed in order,
        consumed batch by batch), not a subset to shuffle.
    drops: the strategy drops learned examples (the server keeps the run's loss history).
    adaptive: the trainer decides when to reselect (CREST's loss-approximation check).
    curvature: the trainer pushes its curvature estimate with the model and the features are
        preconditioned by it (AdaCore).
    distilled: the trainer streams the stage data sets of a distillation (``--distilled``), not
        a selection of the training set.
    embeddings: the selection reads embedding columns of the store (SelectRequest's
        embedding_column, and text_embedding_column for ClipCov), not a pushed model.
    """

    selects: bool
    needs_model: bool
    fresh_seed: bool
    summary: str
    minibatch: bool = False
    drops: bool = False
    adaptive: bool = False
    curvature: bool = False
    distilled: bool = False
    embeddings: bool = False


_REGISTRY: dict[Strategy, StrategySpec] = {
    Strategy.FULL: StrategySpec(False, False, False, "every sample, weight 1"),
    Strategy.RANDOM: StrategySpec(True, False, True, "uniform per-class sample, redrawn each reselection"),
    Strategy.CRAIG: StrategySpec(True, True, True, "whole-data per-class facility location on gradient proxies (CRAIG)"),
    Strategy.NESSA_PA: StrategySpec(True, True, True, "each mini-batch a coreset of a fresh random pool (NeSSA PA)",
                                    minibatch=True),
    Strategy.CREST: StrategySpec(True, True, True, "mini-batch coresets reselected when the loss model drifts (CREST)",
                                 minibatch=True, drops=True, adaptive=True),
    Strategy.NESSA_SS: StrategySpec(True, True, True, "CRAIG over the examples not yet learned (NeSSA SS)", drops=True),
    Strategy.MAX_LOSS: StrategySpec(True, True, True, "per class the highest-loss examples under the pushed model"),
    Strategy.ADACORE: StrategySpec(True, True, True, "craig on curvature-preconditioned gradient proxies (AdaCore)",
                                   curvature=True),
    Strategy.ADACORE_PA: StrategySpec(True, True, True, "each mini-batch an AdaCore coreset of a fresh random pool",
                                      minibatch=True, curvature=True),
    Strategy.PDD: StrategySpec(False, False, False, "a distilled set's stages, trained on cumulatively (PDD)",
                               distilled=True),
    Strategy.SAS: StrategySpec(True, False, False, "per latent class, the examples most similar to their class (SAS)",
                               embeddings=True),
    Strategy.SAS_FL: StrategySpec(True, False, False, "SAS latent classes, per-pool facility location (FPGA kernels)",
                                  embeddings=True),
    Strategy.CLIPCOV: StrategySpec(True, False, False, "easy pairs covering their latent class, global greedy (ClipCov)",
                                   embeddings=True),
}


def parse_strategy(name: "Strategy | str", *, option: str = "strategy") -> Strategy:
    """The ``Strategy`` for ``name`` (a member, its value or an alias), else ValueError naming ``option``."""
    if isinstance(name, Strategy):
        return name
    if isinstance(name, str):
        key = name.strip().lower()
        if key in ALIASES:
            return ALIASES[key]
        try:
            return Strategy(key)
        except ValueError:
            pass
    raise ValueError(f"{option}: unknown strategy {name!r}; choose one of {', '.join(strategy_names())}")


def spec(strategy: "Strategy | str") -> StrategySpec:
    """The registry entry for ``strategy`` (a ``Strategy``, its name or an alias)."""
    return _REGISTRY[parse_strategy(strategy)]


def strategy_names(*, aliases: bool = False) -> list[str]:
    """Every strategy name, in registry order (with ``aliases``, the old names too)."""
    return [s.value for s in Strategy] + (sorted(ALIASES) if aliases else [])
