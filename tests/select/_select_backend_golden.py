"""A second, independent backend used by tests/select/test_selection.py to check that select() routes
per-class greedy through the backend registry: the golden fixed-point greedy over similarities
quantised to uint16 (what the FPGA kernels compute)."""

from __future__ import annotations

import numpy as np

from host.golden.greedy import greedy_fixed

CALLS: list[tuple[int, int]] = []


def greedy(features, k, *, optimizer, seed, epsilon, max_dist):
    x = np.asarray(features, np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    m = d.max() if max_dist is None else max_dist
    scale = 1000.0 / m if m > 0 else 1.0
    sim = np.rint(np.maximum(m - d, 0) * scale).astype(np.uint16)
    r = greedy_fixed(sim, k)
    CALLS.append((len(x), k))
    return r.ids, r.weights, r.objective / scale


# Features are not what this double checks: reuse the CPU backend's.
from host._cpu_backend import features  # noqa: E402,F401
