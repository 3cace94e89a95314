"""Soft labels for distilled images: a teacher trained once on the source data set.

Label-learning distillation (soft labels, as in "A Label is Worth a Thousand Images" and the
relabelling of SRe2L / RDED) stores, beside each synthetic image, a probability vector instead of
its class: ``softmax(teacher(x) / T)``. The teacher here is the matching ConvNet's structure
(instance norm, average pooling), ``teacher_width`` wide, trained ``teacher_epochs`` epochs of SGD
on the whole source data set (normalised as the distiller normalises it), without augmentation.
Its seed is derived from the distillation's, so the same options give the same teacher.

Measured on Fashion-MNIST (BENCHMARKS.md, issue #18): the labels, not the images, carry most of
what a 500-image set gains this way, which is why ``Method.RANDOM`` exists as the control.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from host.distill._nets import ConvNet
from host.distill.config import DistillConfig

__all__ = ["SOFT_LABEL_COLUMN", "train_teacher", "soft_labels"]

#: The embedding column a soft-labelled stage data set keeps its labels in (float32 [rows, classes]);
#: ``storage_service.distill_jobs`` writes it, ``trainer.distilled`` streams it.
SOFT_LABEL_COLUMN = "emb/soft-labels"

_BATCH = 256


def train_teacher(images: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: DistillConfig,
                  seed: int) -> ConvNet:
    """A ConvNet trained ``cfg.teacher_epochs`` epochs on ``images`` ([N, C, H, W], normalised),
    deterministic in ``seed`` (its init and batch order; the caller's RNG state is left alone)."""
    c, h, w = images.shape[1:]
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = ConvNet(c, (h, w), num_classes, width=cfg.teacher_width, depth=cfg.depth)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    net.train()
    n = len(images)
    # Epochs of shuffled batches: every real image is seen teacher_epochs times.
    for _ in range(cfg.teacher_epochs):
        order = torch.randperm(n, generator=gen)
        for b in range(math.ceil(n / _BATCH)):
            idx = order[b * _BATCH:(b + 1) * _BATCH]
            loss = F.cross_entropy(net(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def soft_labels(teacher: ConvNet, images: torch.Tensor, temperature: float) -> np.ndarray:
    """``softmax(teacher(images) / temperature)`` as float32 [N, classes]; rows sum to 1."""
    out = [torch.softmax(teacher(images[i:i + _BATCH]) / float(temperature), dim=1)
           for i in range(0, len(images), _BATCH)]
    return torch.cat(out).numpy().astype(np.float32)
