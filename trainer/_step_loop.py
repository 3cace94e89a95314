"""The step-matched loop the contrastive objectives share (SimCLR, CLIP).

A run trains exactly ``steps`` optimizer steps whatever its subset's size (the selection
protocol's step matching): epochs of the batch source are repeated until the count is reached.
A batch of fewer than two examples is skipped (a contrastive loss needs negatives); an epoch
that yields no usable batch is an error, not an endless loop.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np
import torch

__all__ = ["BatchFn", "StepFn", "run_steps"]

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
