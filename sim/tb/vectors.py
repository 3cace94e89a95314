"""Test classes for the facility-location kernels (numpy only; shared by benches and tests).

Each kind stresses something different: full-range values (wide gains), tiny ranges (ties
everywhere: lowest-index rules), all zeros (every step picks the lowest free index), all
0xFFFF (the widest possible gains), and similarity built from features the way NeSSA does
(s = max_dist - ||g_i - g_j||, symmetric, quantised to uint16).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "make_class", "random_cases"]

KINDS = ("uniform", "ties", "zeros", "max", "features")


def make_class(kind: str, n: int, rng: np.random.Generator, d: int = 10) -> np.ndarray:
    """An ``n x n`` uint16 similarity matrix of the named kind."""
    if kind == "uniform":
        return rng.integers(0, 1 << 16, size=(n, n), dtype=np.uint16)
    if kind == "ties":
        return rng.integers(0, 3, size=(n, n)).astype(np.uint16)
    if kind == "zeros":
        return np.zeros((n, n), dtype=np.uint16)
    if kind == "max":
        return np.full((n, n), 0xFFFF, dtype=np.uint16)
    if kind == "features":
        g = rng.normal(size=(n, d))
        sq = (g * g).sum(1)
        dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (g @ g.T), 0.0))
        s = dist.max() - dist
        return np.floor(s / max(s.max(), 1e-12) * 65535).astype(np.uint16)
    raise ValueError(f"unknown class kind {kind!r}; expected one of {KINDS}")


def random_cases(seed: int, n_max: int, count: int) -> list[tuple[str, np.ndarray, int]]:
    """(kind, sim, k) cases: edge sizes first (n = 1, k = n, n not a multiple of any lane count)."""
    rng = np.random.default_rng(seed)
    cases = [("uniform", make_class("uniform", 1, rng), 1),
             ("ties", make_class("ties", min(n_max, 7), rng), min(n_max, 7))]
    while len(cases) < count:
        kind = KINDS[len(cases) % len(KINDS)]
        n = int(rng.integers(2, n_max + 1))
        k = int(rng.integers(1, max(2, n // 3) + 1))
        cases.append((kind, make_class(kind, n, rng), k))
    return cases
