"""Model architectures shared by the trainer, the selector and the int8 exporter.

Every model is ``head(embed(x))``: ``embed`` returns the penultimate embedding (used for
the optional last-layer-gradient features) and ``head`` is a single Linear layer.
Only layers the FPGA exporter supports are used (Conv2d, BatchNorm2d (folded at export),
ReLU, MaxPool2d/AvgPool2d, global average pooling, residual add, Flatten, Linear).
"""

from __future__ import annotations

import enum
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ._model_base import NessaModel, conv_trunk

__all__ = ["Arch", "NessaModel", "SmallCNN", "ResNet20", "ResNet18", "build_model", "to_input", "input_chw"]


class Arch(str, enum.Enum):
    """Registered architectures (the value is the wire / CLI name)."""

    SMALL_CNN = "small_cnn"
    RESNET20 = "resnet20"
    RESNET18 = "resnet18"
    SIMCLR_CNN = "simclr_cnn"  # host.contrastive_models.SimCLRCNN
    CLIP_CNN = "clip_cnn"  # host.contrastive_models.ClipCNN


class SmallCNN(NessaModel):
    """Two conv blocks and an MLP; ~0.1 M parameters, for 28x28 (or 8x8) grey images."""

    def __init__(self, in_chw: Sequence[int], num_classes: int, width: int = 16, embed_dim: int = 64):
        super().__init__()
        self.features, self.fc = conv_trunk(in_chw, width, embed_dim)
        self.relu = nn.ReLU()
        self.head = nn.Linear(embed_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(self.features(x)))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        # Option B shortcut (1x1 conv) keeps every op in the exporter's supported set.
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet20(NessaModel):
    """ResNet-20 (He et al. 2016, CIFAR variant), the CRAIG / NeSSA CIFAR-10 model."""

    def __init__(self, in_chw: Sequence[int], num_classes: int, blocks_per_stage: int = 3):
        super().__init__()
        c = in_chw[0]
        self.stem = nn.Sequential(nn.Conv2d(c, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers: list[nn.Module] = []
        cin = 16
        for stage, cout in enumerate((16, 32, 64)):
            for b in range(blocks_per_stage):
                stride = 2 if (stage > 0 and b == 0) else 1
                layers.append(_BasicBlock(cin, cout, stride))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(64, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.layers(self.stem(x))))


class ResNet18(NessaModel):
    """ResNet-18, CIFAR style (as in the CRAIG / CREST experiments on CIFAR-100 and TinyImageNet):
    a 3x3 stride-1 stem and no max-pool, so small images keep their resolution; four stages of two
    BasicBlocks at 64, 128, 256, 512 channels (stride 2 entering stages 2-4); ~11.2 M parameters
    and ~0.56 G multiply-adds per 32x32 image (x4 at 64x64)."""

    def __init__(self, in_chw: Sequence[int], num_classes: int, blocks_per_stage: int = 2):
        super().__init__()
        c = in_chw[0]
        self.stem = nn.Sequential(nn.Conv2d(c, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        layers: list[nn.Module] = []
        cin = 64
        for stage, cout in enumerate((64, 128, 256, 512)):
            for b in range(blocks_per_stage):
                layers.append(_BasicBlock(cin, cout, 2 if (stage > 0 and b == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # any input size (32x32 CIFAR, 64x64 TinyImageNet / ImageNet-100)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.layers(self.stem(x))))


_REGISTRY: dict[Arch, Callable[[Sequence[int], int], NessaModel]] = {
    Arch.SMALL_CNN: SmallCNN,
    Arch.RESNET20: ResNet20,
    Arch.RESNET18: ResNet18,
}


def _contrastive(name: str) -> Callable[[Sequence[int], int], NessaModel]:
    # imported lazily: contrastive training pulls in the tokenizer, supervised runs need neither
    def build(in_chw: Sequence[int], num_classes: int) -> NessaModel:
        from . import contrastive_models
        return getattr(contrastive_models, name)(in_chw, num_classes)
    return build


_REGISTRY[Arch.SIMCLR_CNN] = _contrastive("SimCLRCNN")
_REGISTRY[Arch.CLIP_CNN] = _contrastive("ClipCNN")


def build_model(arch: str | Arch, sample_shape: Sequence[int], num_classes: int) -> NessaModel:
    """Build ``arch`` for samples of ``sample_shape`` (as stored) and ``num_classes`` classes."""
    try:
        key = Arch(arch)
    except ValueError:
        names = ", ".join(a.value for a in Arch)
        raise ValueError(f"unknown arch {arch!r}; known: {names}") from None
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return _REGISTRY[key](input_chw(sample_shape), num_classes)


def input_chw(sample_shape: Sequence[int]) -> tuple[int, int, int]:
    """Channels-first shape the models see for a stored ``sample_shape``.

    (H, W) -> (1, H, W); (H, W, C) with C in {1, 3, 4} -> (C, H, W); (C, H, W) otherwise.
    """
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) == 2:
        return (1, shape[0], shape[1])
    if len(shape) == 3:
        if shape[2] in (1, 3, 4) and shape[0] not in (1, 3, 4):
            return (shape[2], shape[0], shape[1])
        return shape
    raise ValueError(f"image models need a 2-D or 3-D sample shape, got {list(shape)}")


def to_input(samples: np.ndarray | torch.Tensor, sample_shape: Sequence[int]) -> torch.Tensor:
    """uint8 samples ``[N, *sample_shape]`` -> float32 NCHW in [0, 1] (the models' input)."""
    x = torch.as_tensor(samples)
    n = x.shape[0]
    shape = tuple(int(s) for s in sample_shape)
    x = x.reshape(n, *shape)
    c, h, w = input_chw(shape)
    if len(shape) == 2:
        x = x.unsqueeze(1)
    elif shape != (c, h, w):
        x = x.permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)
