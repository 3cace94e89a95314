"""Herding (Welling 2009), the coreset baseline of the distillation papers: per class, greedily
pick the real images whose running mean embedding stays closest to the class mean.

The embedding is a ConvNet (``host.distill._nets``) trained briefly on a random part of the data
(the reference uses a network trained on the whole set; a short run keeps the baseline's cost
comparable to a distillation's on a 2-core storage host).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from host.distill.config import DistillConfig
from host.distill.matching import train_net
from host.distill.pdd import Distiller, stage_seed

__all__ = ["herding"]


def herding(dist: Distiller, per_class: int, *, train_samples: int = 5000, epochs: int = 2) -> np.ndarray:
    """Ids (row positions, ascending within class, classes in order of their picks) of
    ``per_class`` herded images per class."""
    cfg: DistillConfig = dist.cfg
    seed = stage_seed(cfg.seed, 0, "herding")
    gen = torch.Generator().manual_seed(seed)
    real = dist.real
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = dist._net()
    n = len(real.images)
    part = torch.randperm(n, generator=gen)[: min(n, train_samples)]
    labels = torch.empty(n, dtype=torch.long)
    for c, idx in enumerate(real.by_class):
        labels[idx] = c
    train_net(net, real.images[part], labels[part], epochs * max(1, math.ceil(len(part) / 256)), cfg, gen)
    net.eval()
    chosen = []
    with torch.no_grad():
        for c, idx in enumerate(real.by_class):
            if per_class > len(idx):
                raise ValueError(f"class {c} has {len(idx)} samples, fewer than {per_class}")
            feats = torch.cat([net.embed(real.images[idx[i:i + 1024]]) for i in range(0, len(idx), 1024)])
            feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)
            mu = feats.mean(0)
            total = torch.zeros_like(mu)
            free = torch.ones(len(idx), dtype=torch.bool)
            for t in range(1, per_class + 1):
                gap = ((mu - (total + feats) / t) ** 2).sum(1)
                gap[~free] = math.inf
                j = int(torch.argmin(gap))
                free[j] = False
                total += feats[j]
                chosen.append(int(idx[j]))
    return np.asarray(chosen, dtype=np.int64)
