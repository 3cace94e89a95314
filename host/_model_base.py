"""What every NeSSA model shares: the ``head(embed(x))`` interface and the small CNN trunk.

Its own module so that ``host.models`` (the registry, which builds the contrastive models
lazily) and ``host.contrastive_models`` both import it without importing each other.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["NessaModel", "conv_trunk"]


class NessaModel(nn.Module):
    """Base: ``forward(x) = head(embed(x))``."""

    head: nn.Linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def conv_trunk(in_chw: Sequence[int], width: int, embed_dim: int) -> tuple[nn.Sequential, nn.Linear]:
    """The small CNN's two conv blocks (``features``) and its embedding layer (``fc``)."""
    c, h, w = in_chw
    features = nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return features, nn.Linear(2 * width * (h // 4) * (w // 4), embed_dim)
