"""The CPU backend (see :mod:`host.backends` for the contract)."""

from __future__ import annotations

import numpy as np

from host.facility_location import facility_location

__all__ = ["greedy", "features"]


def greedy(features, k, *, optimizer, seed, epsilon, max_dist):
    r = facility_location(features, k, optimizer=optimizer, seed=seed, epsilon=epsilon, max_dist=max_dist)
    return r.ids, np.rint(r.weights).astype(np.int64), r.objective


def features(model, samples, labels, *, sample_shape, batch_size, embedding, progress=False):
    from host.features import torch_features

    return torch_features(
        model, samples, labels, sample_shape=sample_shape, batch_size=batch_size, embedding=embedding, progress=progress
    )
