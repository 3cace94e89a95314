"""Differentiable siamese augmentation (DSA, Zhao & Bilen 2021), the part that fits grey images.

One random transform per call, applied to every image of the batch it is given; distillation
calls it with the same generator state for the real and the synthetic batch of a class, so both
see the same scale, rotation, shift and cutout (what "siamese" means), and gradients flow back to
the synthetic pixels through ``grid_sample``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["siamese_params", "apply"]


def siamese_params(gen: torch.Generator) -> torch.Tensor:
    """[scale_x, scale_y, angle, shift_x, shift_y, cut_x, cut_y] for one transform."""
    u = torch.rand(7, generator=gen)
    return torch.stack([0.8 + 0.4 * u[0], 0.8 + 0.4 * u[1], (u[2] - 0.5) * (2 * math.pi * 15 / 360),
                        (u[3] - 0.5) * 0.25, (u[4] - 0.5) * 0.25, u[5], u[6]])


def apply(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``x`` [N, C, H, W] under the transform ``p``: affine (scale, rotate, shift) then a cutout
    of half the side at (cut_x, cut_y) (zero: the data set mean in normalised space)."""
    n, _, h, w = x.shape
    sx, sy, a, tx, ty, cx, cy = (float(v) for v in p)
    theta = torch.tensor([[sx * math.cos(a), -sy * math.sin(a), 2 * tx],
                          [sx * math.sin(a), sy * math.cos(a), 2 * ty]], dtype=x.dtype).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    x = F.grid_sample(x, grid, align_corners=True)
    ch, cw = h // 2, w // 2
    y0, x0 = int(cy * (h - ch + 1)), int(cx * (w - cw + 1))
    mask = torch.ones((1, 1, h, w), dtype=x.dtype)
    mask[..., y0:y0 + ch, x0:x0 + cw] = 0
    return x * mask
