"""Golden model of the whole ``nessa_greedy`` kernel: int16 features in, selection out.

``nessa_greedy_ref(q, k, maxd_q, mode, seed, sample_size)`` is what the kernel must return bit for
bit: similarity rows from :mod:`host.golden.similarity`, then exact greedy
(:func:`host.golden.greedy.greedy_fixed`; kernel modes 0 "lazy" and 2 "naive" both equal it) or
stochastic greedy (:func:`host.golden.stochastic.greedy_stochastic_fixed`, mode 1).
"""

from __future__ import annotations

import numpy as np

from host.golden.greedy import GreedyResult, greedy_fixed
from host.golden.similarity import resolve_maxd_q, sim_q
from host.golden.stochastic import greedy_stochastic_fixed

__all__ = ["MODE_LAZY", "MODE_STOCHASTIC", "MODE_NAIVE", "nessa_greedy_ref"]

MODE_LAZY, MODE_STOCHASTIC, MODE_NAIVE = 0, 1, 2


def nessa_greedy_ref(q: np.ndarray, k: int, maxd_q: int, mode: int = MODE_LAZY, seed: int = 0,
                     sample_size: int = 1) -> tuple[GreedyResult, int]:
    """(result, maxd_q actually used) for int16 features ``q`` ``[n, d]``."""
    m = resolve_maxd_q(q, maxd_q)
    sim = sim_q(q, m)
    if mode == MODE_STOCHASTIC:
        return greedy_stochastic_fixed(sim, k, seed, sample_size), m
    if mode in (MODE_LAZY, MODE_NAIVE):
        return greedy_fixed(sim, k), m
    raise ValueError(f"unknown mode {mode}")
