"""The step-matched loop the contrastive objectives share (SimCLR, CLIP).

A run trains exactly ``steps`` optimizer steps whatever its subset's size (the selection
protocol's step matching): epochs of the batch source are repeated until the count is reached.
A batch of fewer than two examples is skipped (a contrastive loss needs negatives); an epoch
that yields no usable batch is an error, not an endless loop. The option checks the two configs
share (steps, batch size, positive rates) live here too, with messages naming the objective.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import numpy as np
import torch

__all__ = ["BatchFn", "StepFn", "run_steps", "check_loop_options", "check_positive"]

#: epoch -> batches of (ids, samples, captions or None)
BatchFn = Callable[[int], Iterator[tuple[np.ndarray, np.ndarray, "list[str] | None"]]]
#: (ids, samples, captions, epoch) -> the batch's loss
StepFn = Callable[[np.ndarray, np.ndarray, "list[str] | None", int], torch.Tensor]


def run_steps(batches: BatchFn, steps: int, loss_of: StepFn, opt: torch.optim.Optimizer, *,
              on_step: "Callable[[int, float], None] | None" = None) -> dict:
    """Train ``steps`` steps of ``loss_of`` on ``batches``; -> {'losses', 'seconds', 'epochs'}."""
    losses: list[float] = []
    t0, step, epoch = time.perf_counter(), 0, 0
    while step < steps:
        seen = 0
        for ids, samples, texts in batches(epoch):
            if step >= steps:
                break
            if len(ids) < 2:
                continue
            loss = loss_of(ids, samples, texts, epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, losses[-1])
            step, seen = step + 1, seen + 1
        if seen == 0:
            raise ValueError("the batch source yielded no usable batch (subset smaller than two examples?)")
        epoch += 1
    return {"losses": losses, "seconds": time.perf_counter() - t0, "epochs": epoch}


def check_loop_options(kind: str, steps, batch_size, loss: str) -> None:
    """ValueError naming the ``kind`` option: ``steps`` and ``batch_size`` integers >= 1, and a
    batch of at least two (``loss`` needs negatives)."""
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{kind} option {name} must be an integer >= 1, got {v!r}")
    if batch_size < 2:
        raise ValueError(f"{kind} option batch_size must be >= 2 ({loss} needs negatives), got {batch_size}")


def check_positive(kind: str, name: str, v) -> None:
    """ValueError naming the ``kind`` option unless ``v`` is a finite number > 0."""
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise ValueError(f"{kind} option {name} must be a finite number > 0, got {v!r}")
