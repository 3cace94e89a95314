"""Strategy functions: what each registered strategy computes next to the data.

``STRATEGIES[strategy](store, params, model)`` (model-based ones: ``(store, params, model,
history)`` with the run's ``learned.LossHistory`` or None) returns the selected ids and weights
(``_Result``); the manager in :mod:`storage_service.selections` runs them on its worker pool,
persists and serves the results. ``SelectionParams`` is everything a strategy is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from host.strategies import Strategy, spec
from storage_service.learned import keep_count
from storage_service.sampling import random_subset

__all__ = ["SelectionParams", "STRATEGIES"]

_POOL_DOMAIN = 0x506F6F6C  # keeps pool draws apart from other uses of the same seed


@dataclass(frozen=True)
class SelectionParams:
    dataset: str
    strategy: Strategy
    fraction: float
    seed: int
    backend: str
    model_version: int = 0  # 0 when the strategy needs no model
    model_sha256: str = ""
    # Mini-batch strategies (0 for the others): rows per mini-batch, mini-batches, pool size.
    batch_size: int = 0
    num_batches: int = 0
    pool_size: int = 0
    # Loss history (model-based strategies): the run, the drop threshold (0: never drop), the
    # window and the share never dropped (0 when unused).
    run: str = ""
    drop_threshold: float = 0.0
    watch: int = 0
    min_keep: float = 0.0
    # Embedding strategies (sas, clipcov; "" / 0 for the others): the store's embedding columns
    # and the latent-class count (0: the data set's labels when more than one class, else 10).
    embedding_column: str = ""
    text_embedding_column: str = ""
    latent_classes: int = 0


@dataclass(frozen=True)
class _Result:
    ids: np.ndarray  # int64
    weights: np.ndarray  # float32, aligned with ids
    objective: float = 0.0
    ordered: bool = False  # rows are num_batches mini-batches of batch_size, in training order
    batch_size: int = 0
    num_batches: int = 0
    num_dropped: int = 0
    num_forwarded: int = 0


# -- strategies ----------------------------------------------------------------------------
def _full(store, params: SelectionParams, model) -> _Result:
    n = len(store)
    return _Result(np.arange(n, dtype=np.int64), np.ones(n, np.float32))


def _random(store, params: SelectionParams, model) -> _Result:
    ids = random_subset(store.labels, params.fraction, params.seed)
    return _Result(ids, np.ones(len(ids), np.float32))


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([_POOL_DOMAIN, int(seed)])))


def _candidates(n: int, params: SelectionParams, history, need: int) -> tuple[np.ndarray, int]:
    """``(candidate ids ascending, number dropped)``: all ids minus the run's learned examples
    (when ``drop_threshold > 0``), keeping at least ``max(min_keep * n, need)``."""
    if history is None or not params.drop_threshold > 0:
        return np.arange(n, dtype=np.int64), 0
    dropped = history.dropped(params.watch, keep_count(n, params.min_keep, need))
    if len(dropped) == 0:
        return np.arange(n, dtype=np.int64), 0
    keep = np.ones(n, bool)
    keep[dropped] = False
    return np.flatnonzero(keep).astype(np.int64), int(len(dropped))


def _features_of(store, ids: np.ndarray, model, params: SelectionParams) -> np.ndarray:
    """Gradient-proxy features of ``ids`` (in that order), read in chunks to bound memory."""
    import host

    shape = tuple(store.manifest.sample_shape)
    parts = []
    for lo in range(0, len(ids), 65536):
        samples, labels = store.take(ids[lo : lo + 65536])
        parts.append(host.gradient_features(model, samples, labels, sample_shape=shape, batch_size=512, backend=params.backend))
    return np.concatenate(parts) if parts else np.empty((0, store.manifest.num_classes), np.float32)


def _observe(history, params: SelectionParams, ids: np.ndarray, features: np.ndarray, labels: np.ndarray) -> None:
    """Report the losses of the forwarded examples to the run's history (if there is a run)."""
    if history is None or len(ids) == 0:
        return
    from host.minibatch import losses_from_features

    history.observe(ids, losses_from_features(features, labels), params.drop_threshold)


def _preconditioned(features: np.ndarray, model) -> np.ndarray:
    """AdaCore: the features scaled by the curvature pushed with the model (host/curvature.py)."""
    from host.curvature import CURVATURE_TENSOR, precondition
    from storage_service._errors import FailedPrecondition

    curvature = getattr(model, "nessa_curvature", None)
    if curvature is None:
        raise FailedPrecondition(f"this strategy preconditions by the trainer's curvature: the pushed model has no "
                                 f"{CURVATURE_TENSOR!r} tensor (nessa train --strategy adacore pushes it)")
    try:
        return precondition(features, curvature)
    except ValueError as exc:
        raise FailedPrecondition(f"{CURVATURE_TENSOR}: {exc}") from None


def _whole_data(store, params: SelectionParams, model, history, *, drop: bool, curvature: bool = False) -> _Result:
    """CRAIG over the candidates (every example, or the ones not learned when ``drop``),
    on curvature-preconditioned features when ``curvature`` (AdaCore)."""
    import host

    n = len(store)
    cands, num_dropped = _candidates(n, params, history if drop else None, 0)
    if num_dropped == 0:
        shape = tuple(store.manifest.sample_shape)
        parts = []
        # Chunks bound memory: one chunk of samples plus the [N, C] features.
        for _, samples, labels in store.iter_batches(65536):
            parts.append(host.gradient_features(model, samples, labels, sample_shape=shape, batch_size=512, backend=params.backend))
        features = np.concatenate(parts) if parts else np.empty((0, store.manifest.num_classes), np.float32)
    else:
        features = _features_of(store, cands, model, params)
    labels = store.labels[cands]
    _observe(history, params, cands, features, labels)
    if curvature:
        features = _preconditioned(features, model)
    sel = host.select(features, labels, params.fraction, optimizer="lazy", seed=params.seed, backend=params.backend,
                      ids=cands if num_dropped else None)
    ids = np.asarray(sel.ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    return _Result(ids[order], np.asarray(sel.weights, dtype=np.float32)[order], float(sel.objective),
                   num_dropped=num_dropped, num_forwarded=int(len(cands)))


def _craig(store, params: SelectionParams, model, history=None) -> _Result:
    """CRAIG: every example (the run's history only records the losses)."""
    return _whole_data(store, params, model, history, drop=False)


def _nessa_ss(store, params: SelectionParams, model, history=None) -> _Result:
    """NeSSA SS: CRAIG over the examples the run has not learned."""
    return _whole_data(store, params, model, history, drop=True)


def _max_loss(store, params: SelectionParams, model, history=None) -> _Result:
    """Per class, the ceil(f * n_c) examples the pushed model finds hardest (loss from the same
    gradient-proxy features CRAIG uses, so it costs one forward pass), weight 1."""
    from host.budget import class_budgets_array
    from host.minibatch import losses_from_features

    ids = np.arange(len(store), dtype=np.int64)
    features = _features_of(store, ids, model, params)
    labels = store.labels
    losses = losses_from_features(features, labels)
    _observe(history, params, ids, features, labels)
    budgets = class_budgets_array(np.bincount(labels, minlength=store.manifest.num_classes), params.fraction)
    chosen = []
    for c, k in enumerate(budgets):
        members = np.flatnonzero(labels == c)
        if k:  # stable: ties go to the lower id
            chosen.append(members[np.argsort(-losses[members], kind="stable")[:k]])
    out = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, np.int64)
    return _Result(out, np.ones(len(out), np.float32), float(losses[out].sum()), num_forwarded=len(ids))


def _adacore(store, params: SelectionParams, model, history=None) -> _Result:
    """AdaCore: CRAIG on every example's preconditioned gradient proxy."""
    return _whole_data(store, params, model, history, drop=False, curvature=True)


def _minibatches(store, params: SelectionParams, model, history=None) -> _Result:
    """nessa-pa / crest / adacore-pa (crest differs in its defaults, ``resolve_options``; adacore-pa
    preconditions the features): pools after
    drops, features of the pools only, one coreset of ``batch_size`` per pool, in order."""
    from host.minibatch import draw_pools, minibatch_coresets

    n = len(store)
    cands, num_dropped = _candidates(n, params, history, min(n, params.num_batches * params.pool_size))
    pools = draw_pools(cands, params.num_batches, params.pool_size, _rng(params.seed))
    union = np.unique(np.concatenate(pools))
    labels = store.labels[union]
    features = _features_of(store, union, model, params)
    _observe(history, params, union, features, labels)
    if spec(params.strategy).curvature:  # adacore-pa
        features = _preconditioned(features, model)
    sel = minibatch_coresets(features, labels, union, pools, params.batch_size, backend=params.backend, seed=params.seed)
    if len(sel.ids) != sel.batch_size * sel.num_batches:
        raise RuntimeError(f"{len(sel.ids)} rows for {sel.num_batches} mini-batches of {sel.batch_size}")
    return _Result(np.asarray(sel.ids, np.int64), np.asarray(sel.weights, np.float32), float(sel.objective), ordered=True,
                   batch_size=int(sel.batch_size), num_batches=int(sel.num_batches), num_dropped=num_dropped,
                   num_forwarded=int(len(union)))


def _sas(store, params: SelectionParams, model, objective: str = "reference") -> _Result:
    from host.sas import sas_select

    # The reference objective is a ranking (CPU whatever params.backend says); sas-fl's facility
    # location runs on the backend's greedy.
    r = sas_select(store.embeddings(params.embedding_column), params.fraction, labels=store.labels,
                   latent=params.latent_classes, seed=params.seed, backend=params.backend, option=params.embedding_column,
                   consume=True, objective=objective)  # the column was read for this call only
    return _Result(r.ids, np.ones(len(r.ids), np.float32), r.objective)


def _sas_fl(store, params: SelectionParams, model) -> _Result:
    return _sas(store, params, model, objective="facility-location")


def _clipcov(store, params: SelectionParams, model) -> _Result:
    from host.clipcov import clipcov_select

    # ClipCov's greedy is not facility location: it runs on the CPU whatever params.backend says.
    r = clipcov_select(store.embeddings(params.embedding_column), store.embeddings(params.text_embedding_column),
                       params.fraction, labels=store.labels, latent=params.latent_classes, seed=params.seed,
                       image_option=params.embedding_column, text_option=params.text_embedding_column,
                       consume=True)
    return _Result(r.ids, np.ones(len(r.ids), np.float32), r.objective)


#: Strategy -> fn(store, params, model or None) -> _Result; a strategy whose registry entry
#: ``needs_model`` is called as fn(store, params, model, history) (the run's LossHistory or None).
STRATEGIES: dict[Strategy, Callable] = {
    Strategy.FULL: _full,
    Strategy.RANDOM: _random,
    Strategy.CRAIG: _craig,
    Strategy.NESSA_PA: _minibatches,
    Strategy.CREST: _minibatches,
    Strategy.NESSA_SS: _nessa_ss,
    Strategy.MAX_LOSS: _max_loss,
    Strategy.ADACORE: _adacore,
    Strategy.ADACORE_PA: _minibatches,
    Strategy.SAS: _sas,
    Strategy.SAS_FL: _sas_fl,
    Strategy.CLIPCOV: _clipcov,
}
