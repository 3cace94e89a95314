"""How much selection work one reselection is, per class, with GreeDi partitioning.

A class of ``n`` members is cut into ``m`` parts of at most ``max_part`` members; greedy
facility location runs on each part with budget ``ceil(fraction * part)``, and the candidates
of all parts are merged by a second greedy round over their union (GreeDi, Mirzasoleiman et
al. 2013) that picks the class budget ``ceil(fraction * n)``. With one part there is no merge.
More parts mean less work per part but a larger union to merge (``m * ceil(fraction * n/m)``
grows past ``fraction * n`` once parts get small), so the model lets the scheduler pick ``m``
(see :mod:`sim.perf.model`).

Work is counted in *candidate evaluations*: one evaluation computes the gain of one
candidate over every member of its part (``p`` distance / similarity terms of ``d`` dims).

* naive (exact) greedy: step t evaluates every unselected candidate: ``sum_t (p - t)``;
* lazy greedy (Minoux 1978): one full pass, then ``LAZY_REEVALS_PER_STEP`` re-evaluations
  per step (measured on Fashion-MNIST classes; it depends on the data; the host's CPU rate is
  calibrated with this same count, so it cancels to first order on the CPU);
* stochastic greedy: ``(p / k) ln(1 / eps)`` random candidates per step (capped at the
  unselected count), Mirzasoleiman et al. 2015.

The host CPU implementations first build the ``p x p`` distance matrix (a GEMM, ``p^2 d``
multiply-adds) and then evaluate gains from it, so their element-operation count is
``p^2 d + evals * p`` (:func:`host_ops`); the FPGA engine recomputes distances on chip per
evaluation and is costed in cycles by :meth:`sim.perf.params.Fpga.eval_cycles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .params import Optimizer

#: Stale upper bounds re-evaluated per lazy-greedy step after the first pass. Measured by the
#: HLS kernel's own count (BENCHMARKS.md, "FPGA kernels (emulated)"): Fashion-MNIST classes of
#: 6,000 with k = 600 took 43,095 and 45,282 evaluations after step 0, i.e. 72-76 per step.
LAZY_REEVALS_PER_STEP = 74

__all__ = ["LAZY_REEVALS_PER_STEP", "budget", "evaluations", "host_ops", "ClassPlan", "plan_parts", "plan_class",
           "min_parts", "gpu_seconds"]


def budget(n: float, fraction: float) -> int:
    """Per-class budget ``k = ceil(fraction * n)``: the selection engine's own rule (host.budget)."""
    from host.budget import class_budget

    return class_budget(n, fraction)


def evaluations(p: float, k: int, optimizer: Optimizer, epsilon: float) -> float:
    """Candidate evaluations of greedy over a part of ``p`` members picking ``k``."""
    if p <= 0 or k <= 0:
        return 0.0
    k = min(k, math.ceil(p))
    if optimizer is Optimizer.NAIVE:
        return k * p - k * (k - 1) / 2.0
    if optimizer is Optimizer.LAZY:
        return min(p + (k - 1) * LAZY_REEVALS_PER_STEP, k * p - k * (k - 1) / 2.0)
    if optimizer is Optimizer.STOCHASTIC:
        per_step = (p / k) * math.log(1.0 / epsilon)
        # Never more than the unselected count (then it is naive), never fewer than one per step.
        return min(k * max(1.0, per_step), k * p - k * (k - 1) / 2.0)
    raise ValueError(f"unknown optimizer {optimizer!r}")


def host_ops(p: float, k: int, d: int, optimizer: Optimizer, epsilon: float) -> float:
    """Element operations of a CPU/GPU-host greedy over one part (distance GEMM + gains)."""
    return p * p * d + evaluations(p, k, optimizer, epsilon) * p


@dataclass(frozen=True)
class ClassPlan:
    """The GreeDi plan for one class: ``parts`` parts of ``part`` members, then a merge."""

    n: float  # class size
    parts: int
    part: float  # members per part
    part_k: int  # budget per part
    merge_n: float  # union of candidates (0 when there is a single part)
    merge_k: int  # class budget picked from the union


def plan_parts(n: float, fraction: float, parts: int) -> ClassPlan:
    """Split a class of ``n`` into ``parts`` equal parts (one part: no merge)."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    parts = int(min(parts, max(1, math.ceil(n))))
    part = n / parts
    class_k = budget(n, fraction)
    if parts == 1:
        return ClassPlan(n, 1, part, class_k, 0.0, 0)
    part_k = budget(part, fraction)
    return ClassPlan(n, parts, part, part_k, float(parts * part_k), class_k)


def plan_class(n: float, fraction: float, drives: int, max_part: int) -> ClassPlan:
    """The data layout's plan: one part per drive holding the class, each cut to <= ``max_part``."""
    if drives < 1:
        raise ValueError(f"drives must be >= 1, got {drives}")
    if max_part < 1:
        raise ValueError(f"max_part must be >= 1, got {max_part}")
    used = int(min(drives, max(1, math.ceil(n))))
    per_drive = max(1, math.ceil(n / used / max_part))
    return plan_parts(n, fraction, used * per_drive)


def min_parts(n: float, max_part: int) -> int:
    """Fewest parts that respect the part cap."""
    return max(1, math.ceil(n / max_part))


def gpu_seconds(p: float, k: int, d: int, optimizer: Optimizer, epsilon: float, *, gemm_macs: float, select_ops: float, step_s: float) -> float:
    """One part's greedy on a GPU: distance GEMM + gain evaluations + a launch per step."""
    return p * p * d / gemm_macs + evaluations(p, k, optimizer, epsilon) * p / select_ops + min(k, p) * step_s
