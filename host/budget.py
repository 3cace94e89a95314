"""The two rules every layer shares about subset size: what a valid fraction is, and the
per-class budget it gives. Defined once here (the lowest layer that needs them); the store's
random subsets, the selection driver, the service, the trainer's config and the cluster model
all call these, and a test checks that they agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_fraction", "class_budget", "class_budgets_array"]

# Absorbs float noise in ceil(f * n): 0.1 * 30 is 3, not 4.
_EPS = 1e-9


def check_fraction(fraction: Any, *, option: str = "fraction") -> float:
    """``fraction`` as a float in (0, 1], else ValueError naming ``option``."""
    if isinstance(fraction, bool):
        raise ValueError(f"{option} must be a number in (0, 1], got {fraction!r}")
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a number in (0, 1], got {fraction!r}") from None
    if not (math.isfinite(f) and 0.0 < f <= 1.0):
        raise ValueError(f"{option} must be in (0, 1], got {fraction!r}")
    return f


def class_budget(n_c: float, fraction: float) -> int:
    """``ceil(fraction * n_c)``, at least 1 for a non-empty class, at most ``n_c``.

    ``n_c`` may be a float (the cluster model's mean class size); the result is an int.
    """
    if n_c <= 0:
        return 0
    return int(min(math.ceil(n_c), max(1, math.ceil(fraction * n_c - _EPS))))


def class_budgets_array(counts: np.ndarray, fraction: float) -> np.ndarray:
    """:func:`class_budget` of each entry of ``counts`` (int64 array; 0 for an empty class)."""
    counts = np.asarray(counts, dtype=np.int64)
    k = np.minimum(counts, np.maximum(np.ceil(fraction * counts - _EPS), 1).astype(np.int64))
    return np.where(counts > 0, k, 0)
