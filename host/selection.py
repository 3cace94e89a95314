"""Per-class weighted coreset selection: the driver shared by every backend.

``select(features, labels, fraction)`` runs greedy facility location inside each class
(budget ``k_c = ceil(fraction * n_c)``, or one global budget ``ceil(fraction * N)`` split over
the classes in proportion to their sizes), on the backend's per-class greedy, switching to
GreeDi (:mod:`host.greedi`) for a class whose ``n_c x n_c`` float32 distance matrix exceeds
``memory_budget_bytes``. It maps class-local picks to global ids and turns member counts into
weights. Semantics of similarity, ``max_dist``, ties and weights: :mod:`host.facility_location`.
"""

from __future__ import annotations

import contextlib
import enum
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from host._distances import matrix_bytes, reuse_matrix_memory
from host.backends import Backend, load, parse_backend
from host.budget import check_fraction, class_budget, class_budgets_array
from host.facility_location import DEFAULT_EPSILON, Optimizer, check_epsilon, parse_optimizer
from host.greedi import greedi, split_budget

__all__ = ["select", "Selection", "ClassRecord", "Optimizer", "Budget", "DEFAULT_MEMORY_BUDGET", "class_budgets"]

#: Default cap on one class's distance matrix: 2 GiB, i.e. classes up to 23,170 members are
#: selected exactly in one piece; larger ones go through GreeDi.
DEFAULT_MEMORY_BUDGET = 2 << 30


class Budget(str, enum.Enum):
    """How ``fraction`` becomes per-class budgets."""

    PER_CLASS = "per_class"  # k_c = ceil(fraction * n_c)
    GLOBAL = "global"  # ceil(fraction * N), split in proportion to class sizes


@dataclass(frozen=True)
class ClassRecord:
    """What happened in one class."""

    cls: int  # label value
    n: int
    k: int
    objective: float
    seconds: float
    max_dist: float | None  # None: the class's own largest pairwise distance
    parts: int = 1  # GreeDi parts (1: the whole class in one matrix)


@dataclass(frozen=True)
class Selection:
    """A weighted coreset. ``ids``/``labels``/``weights`` are aligned, grouped by class in
    ascending label order and, inside a class, in greedy selection order."""

    ids: np.ndarray  # int64 [|S|] global ids
    weights: np.ndarray  # float32 [|S|]
    labels: np.ndarray  # int64 [|S|] class of each selected example
    objective: float  # sum of per-class objectives
    per_class: list[ClassRecord] = field(default_factory=list)
    seconds: float = 0.0
    optimizer: str = Optimizer.LAZY.value
    backend: str = Backend.CPU.value
    fraction: float = 0.0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def class_budgets(counts: np.ndarray, fraction: float, budget: str | Budget = Budget.PER_CLASS) -> np.ndarray:
    """Budget per class for class sizes ``counts``."""
    f = check_fraction(fraction)
    counts = np.asarray(counts, dtype=np.int64)
    try:
        mode = Budget(budget)
    except ValueError:
        raise ValueError(f"unknown budget {budget!r}; known: {', '.join(b.value for b in Budget)}") from None
    if mode is Budget.PER_CLASS:
        return class_budgets_array(counts, f)
    return split_budget(class_budget(int(counts.sum()), f), counts)


def _check_inputs(features: Any, labels: Any, ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array [N, D], got shape {x.shape}")
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"length mismatch: {x.shape[0]} feature rows but labels of shape {y.shape}")
    if x.shape[0] == 0:
        raise ValueError("no examples to select from (features are empty)")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {y.dtype}")
    x = np.asarray(x, dtype=np.float32)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"features contain NaN or infinite values in {bad.size} rows (first: row {int(bad[0])})")
    if ids is not None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape != (x.shape[0],):
            raise ValueError(f"length mismatch: {x.shape[0]} feature rows but ids of shape {ids.shape}")
    return x, y.astype(np.int64, copy=False), ids


def select(
    features: Any,
    labels: Any,
    fraction: float,
    *,
    optimizer: str | Optimizer = Optimizer.LAZY,
    seed: int = 0,
    backend: str | Backend = Backend.CPU,
    normalize_weights: bool = True,
    budget: str | Budget = Budget.PER_CLASS,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    epsilon: float = DEFAULT_EPSILON,
    max_dist: float | None = None,
    progress: bool = False,
    ids: Any = None,
) -> Selection:
    """Select a weighted coreset of ``fraction`` of the examples, per class.

    ``features`` ``[N, D]`` (e.g. from :func:`host.gradient_features`), ``labels`` int ``[N]``.
    Returned ids index ``features`` (or are ``ids[...]`` when a global id map is given).
    ``normalize_weights``: scale weights to sum to ``|S|`` (one factor for all classes, so
    relative weights across classes are kept); otherwise each weight is a member count and
    a class's weights sum to its size. ``max_dist`` (None: each class's largest pairwise
    distance) and ``epsilon`` (stochastic only): see :mod:`host.facility_location`.
    """
    t0 = time.perf_counter()
    f = check_fraction(fraction)
    opt = parse_optimizer(optimizer)
    eps = check_epsilon(epsilon)
    key = parse_backend(backend)
    if int(memory_budget_bytes) < 16:
        raise ValueError(f"memory_budget_bytes must be >= 16, got {memory_budget_bytes}")
    if max_dist is not None and not (math.isfinite(float(max_dist)) and float(max_dist) >= 0):
        raise ValueError(f"max_dist must be finite and >= 0, got {max_dist!r}")
    x, y, id_map = _check_inputs(features, labels, ids)
    impl = load(key)
    classes, counts = np.unique(y, return_counts=True)
    budgets = class_budgets(counts, f, budget)

    work = list(zip(classes, counts, budgets))
    if progress:  # imported only when asked: tqdm.auto costs ~4 MiB of RSS
        from tqdm.auto import tqdm

        work = tqdm(work, desc="select", unit="class")
    out_ids, out_w, out_lab, records = [], [], [], []
    # CPU: one distance buffer for the whole loop (sized for the largest class that fits).
    fits = [int(n) for n in counts if matrix_bytes(int(n)) <= memory_budget_bytes]
    n_max = max(fits, default=0) if key is Backend.CPU else 0
    with reuse_matrix_memory(n_max) if key is Backend.CPU else contextlib.nullcontext():
        for c, n_c, k_c in work:
            if k_c == 0:
                continue
            tc = time.perf_counter()
            members = np.flatnonzero(y == c)
            xc = x[members]
            cseed = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(c) & 0xFFFFFFFF]).generate_state(1)[0])
            parts = 1
            if matrix_bytes(int(n_c)) <= memory_budget_bytes:
                local, counts_c, obj = impl.greedy(xc, int(k_c), optimizer=opt, seed=cseed, epsilon=eps, max_dist=max_dist)
            else:
                r = greedi(
                    xc, int(k_c), greedy=impl.greedy, optimizer=opt, seed=cseed, epsilon=eps,
                    max_dist=max_dist, memory_budget_bytes=int(memory_budget_bytes),
                )
                local, counts_c, obj, parts = r.ids, r.weights, r.objective, r.parts
            local = np.asarray(local, dtype=np.int64)
            if local.shape != (int(k_c),) or len(np.unique(local)) != k_c:
                raise RuntimeError(f"backend {key.value!r} returned {local.shape} ids for class {c} (k={k_c})")
            out_ids.append(members[local])
            out_w.append(np.asarray(counts_c, dtype=np.float64))
            out_lab.append(np.full(int(k_c), c, dtype=np.int64))
            records.append(ClassRecord(int(c), int(n_c), int(k_c), float(obj), time.perf_counter() - tc, max_dist, parts))
    sel_ids = np.concatenate(out_ids)
    weights = np.concatenate(out_w)
    if normalize_weights:
        weights = weights * (len(sel_ids) / weights.sum()) if weights.sum() > 0 else np.ones_like(weights)
    if id_map is not None:
        sel_ids = id_map[sel_ids]
    return Selection(
        ids=sel_ids.astype(np.int64),
        weights=weights.astype(np.float32),
        labels=np.concatenate(out_lab),
        objective=float(sum(r.objective for r in records)),
        per_class=records,
        seconds=time.perf_counter() - t0,
        optimizer=opt.value,
        backend=key.value,
        fraction=f,
    )
