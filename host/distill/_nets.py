"""The networks distillation matches through: the DM/DC reference "ConvNet", narrowed for a CPU.

DatasetCondensation's ConvNet is depth x [conv3x3(width) -> instance norm -> ReLU -> avgpool2],
then a linear classifier on the flattened features (width 128, depth 3). Here the width is 16
(``DistillConfig.width``) so that a few hundred matching steps at 28x28 fit a 2-core CPU; the structure (instance
norm, average pooling, no batch statistics) is the reference's, since DM's embedding must not
depend on how a batch is composed.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvNet"]


class ConvNet(nn.Module):
    """``forward(x) = classifier(embed(x))``; ``embed`` is what distribution matching compares."""

    def __init__(self, channels: int, hw: tuple[int, int], num_classes: int, *, width: int = 16, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = channels, hw
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.GroupNorm(width, width, affine=True), nn.ReLU(),
                       nn.AvgPool2d(2)]
            c, h, w = width, h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"images of {hw} are too small for a depth-{depth} ConvNet")
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classifier = nn.Linear(width * h * w, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
