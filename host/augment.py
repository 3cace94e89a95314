"""Data augmentation on image tensors, reproducible per (seed, epoch, sample id).

torchvision does not import beside the CPU torch build NeSSA pins, so the transforms are written
on tensors (the geometric and colour kernels are kornia's): random crop with zero padding,
horizontal flip (off by default: it changes the meaning of digits and text), Cutout (DeVries &
Taylor 2017), and RandAugment (Cubuk et al. 2020: ``ops`` transforms per image, each drawn from
the 14 of the paper, at ``magnitude`` on a 0–30 scale, signs at random, ranges as torchvision's).

Why ids: a sample's randomness is a hash of (seed, epoch, sample id, draw), not the state of a
generator, so an image gets the same augmentation whatever batch or rank it lands in, on CPU or
CUDA, and a resumed run repeats the interrupted one exactly. The hash (splitmix64) runs on the
host over a few numbers per image; only the images go to the device.

    aug = Augmenter(AugmentConfig(crop_padding=4, flip=True, cutout=8, randaugment_ops=2))
    out = aug(images_uint8_bchw, ids, epoch=e, seed=s)     # same device and dtype as the input

Images are uint8, or float32 in the models' input space (uint8 / 255: a distillation's
synthetic images); crop, flip and Cutout treat both alike (zero padding and Cutout are black in
either), RandAugment's colour operations need the uint8 range and refuse floats.

Why this lives in ``host`` and not in the trainer: the storage host labels the views a run will
draw (``host.distill.views``: a teacher's label for every (seed, epoch, id)), so both sides must
draw the same ones; there is one definition of the transforms and of the ``--augment`` names.

Cost per image: ``bench/augment.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

__all__ = ["AUGMENTATIONS", "AugmentConfig", "Augmenter", "RandOp", "augment_config", "parse_augment", "uniforms"]

#: The transforms ``--augment`` names (``augment_config`` sizes them for an image).
AUGMENTATIONS = ("crop", "flip", "cutout", "randaugment")

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def uniforms(seed: int, epoch: int, ids: np.ndarray, draws: int) -> np.ndarray:
    """(len(ids), draws) floats in [0, 1): a splitmix64 hash of (seed, epoch, id, draw)."""
    ids = np.asarray(ids, dtype=np.uint64).reshape(-1, 1)
    k = np.arange(draws, dtype=np.uint64).reshape(1, -1)
    with np.errstate(over="ignore"):
        x = (np.uint64(seed & 0xFFFFFFFF) << np.uint64(32)) ^ np.uint64(epoch & 0xFFFFFFFF)
        x = (x * np.uint64(0x9E3779B97F4A7C15) + ids * np.uint64(0xD1B54A32D192ED03) + k * np.uint64(0x8CB92BA72F3D8DD7)) & _MASK64
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class RandOp(enum.IntEnum):
    """RandAugment's transforms (the paper's list)."""

    IDENTITY = 0
    AUTOCONTRAST = 1
    EQUALIZE = 2
    ROTATE = 3
    SOLARIZE = 4
    COLOR = 5
    POSTERIZE = 6
    CONTRAST = 7
    BRIGHTNESS = 8
    SHARPNESS = 9
    SHEAR_X = 10
    SHEAR_Y = 11
    TRANSLATE_X = 12
    TRANSLATE_Y = 13


_SIGNED = {RandOp.ROTATE, RandOp.COLOR, RandOp.CONTRAST, RandOp.BRIGHTNESS, RandOp.SHARPNESS,
           RandOp.SHEAR_X, RandOp.SHEAR_Y, RandOp.TRANSLATE_X, RandOp.TRANSLATE_Y}


@dataclass(frozen=True)
class AugmentConfig:
    crop_padding: int = 0  # random crop back to size after this much zero padding per side (0: off)
    flip: bool = False  # horizontal flip with probability 1/2
    cutout: int = 0  # side of the square zeroed at a random centre (0: off)
    randaugment_ops: int = 0  # RandAugment transforms per image (0: off)
    randaugment_magnitude: int = 9  # 0..30, as in the paper

    def __post_init__(self):
        for name in ("crop_padding", "cutout", "randaugment_ops"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"augment option {name} must be an integer >= 0, got {v!r}")
        if not isinstance(self.randaugment_magnitude, int) or not 0 <= self.randaugment_magnitude <= 30:
            raise ValueError(f"augment option randaugment_magnitude must be in 0..30, got {self.randaugment_magnitude!r}")

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout or self.randaugment_ops)


def parse_augment(text: str, option: str = "--augment") -> tuple[str, ...]:
    """``"crop,flip"`` -> ("crop", "flip"); ValueError naming ``option`` on an unknown name."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"{option}: unknown augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)}")
    return names


def augment_config(names: Sequence[str], sample_shape: Sequence[int]) -> AugmentConfig:
    """The transforms ``names`` sized for images of ``sample_shape`` (C, H, W) or (H, W):
    crop padding 4 at 32 px and up (the CIFAR recipe), 2 below; Cutout half the side
    (DeVries & Taylor's 16 px at 32); RandAugment N=2, M=9."""
    from host.models import input_chw

    side = int(input_chw(tuple(int(s) for s in sample_shape))[-1])  # (H, W, C) data: W, not C
    return AugmentConfig(crop_padding=(4 if side >= 32 else 2) if "crop" in names else 0, flip="flip" in names,
                         cutout=side // 2 if "cutout" in names else 0, randaugment_ops=2 if "randaugment" in names else 0)


class Augmenter:
    """Applies an ``AugmentConfig`` to (B, C, H, W) uint8 or float32 tensors (see module docs)."""

    def __init__(self, config: AugmentConfig):
        self.config = config

    def __call__(self, images: torch.Tensor, ids, *, epoch: int, seed: int) -> torch.Tensor:
        if images.dtype not in (torch.uint8, torch.float32) or images.ndim != 4:
            raise ValueError(f"augment needs uint8 or float32 (B, C, H, W) images, got {images.dtype} {tuple(images.shape)}")
        if images.dtype != torch.uint8 and self.config.randaugment_ops:
            raise ValueError("--augment: randaugment works on uint8 images; these are float32 "
                             "(a distillation's synthetic images): use crop, flip, cutout")
        ids = np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids).reshape(-1)
        if len(ids) != images.shape[0]:
            raise ValueError(f"augment got {len(ids)} ids for {images.shape[0]} images")
        cfg = self.config
        if not cfg.active or images.shape[0] == 0:
            return images
        # draws: crop dy, dx, flip, cutout cy, cx, then (op, magnitude sign) per RandAugment step
        u = torch.from_numpy(uniforms(seed, epoch, ids, 5 + 2 * cfg.randaugment_ops)).to(images.device, torch.float32)
        x = images
        if cfg.randaugment_ops:
            x = self._randaugment(x, u[:, 5:])
        if cfg.crop_padding:
            x = _crop(x, cfg.crop_padding, u[:, 0], u[:, 1])
        if cfg.flip:
            x = torch.where((u[:, 2] < 0.5).view(-1, 1, 1, 1), x.flip(-1), x)
        if cfg.cutout:
            x = _cutout(x, cfg.cutout, u[:, 3], u[:, 4])
        return x

    def _randaugment(self, images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        m = self.config.randaugment_magnitude / 30.0
        for step in range(self.config.randaugment_ops):
            op = (u[:, 2 * step] * len(RandOp)).long().clamp(max=len(RandOp) - 1)
            sign = torch.where(u[:, 2 * step + 1] < 0.5, -1.0, 1.0)
            for kind in RandOp:
                rows = (op == kind).nonzero().flatten()
                if len(rows) and kind is not RandOp.IDENTITY:
                    mag = torch.full((len(rows),), m, device=x.device) * (sign[rows] if kind in _SIGNED else 1.0)
                    x[rows] = _apply(kind, x[rows], mag).clamp(0.0, 1.0)
        return (x * 255.0).round().to(torch.uint8)


def _crop(x: torch.Tensor, pad: int, uy: torch.Tensor, ux: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = (uy * (2 * pad + 1)).long().clamp(max=2 * pad)
    dx = (ux * (2 * pad + 1)).long().clamp(max=2 * pad)
    rows = (torch.arange(h, device=x.device).view(1, h) + dy.view(b, 1)).view(b, 1, h, 1)
    cols = (torch.arange(w, device=x.device).view(1, w) + dx.view(b, 1)).view(b, 1, 1, w)
    return padded.gather(2, rows.expand(b, x.shape[1], h, w + 2 * pad)).gather(3, cols.expand(b, x.shape[1], h, w))


def _cutout(x: torch.Tensor, size: int, uy: torch.Tensor, ux: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    cy, cx = (uy * h).long(), (ux * w).long()  # the centre may sit near an edge: the square is clipped
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    lo_y, lo_x = (cy - size // 2).view(b, 1, 1), (cx - size // 2).view(b, 1, 1)
    inside = (ys >= lo_y) & (ys < lo_y + size) & (xs >= lo_x) & (xs < lo_x + size)
    return x.masked_fill(inside.unsqueeze(1), 0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    return x.mean(1, keepdim=True)


def _apply(kind: RandOp, x: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """One RandAugment transform on float images in [0, 1]; ``mag`` in [-1, 1] per image."""
    from kornia.enhance import equalize, posterize, sharpness, solarize
    from kornia.geometry.transform import rotate, shear, translate

    b, _, h, w = x.shape
    view = mag.view(-1, 1, 1, 1)
    if kind is RandOp.AUTOCONTRAST:
        lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        return torch.where(hi > lo, (x - lo) / (hi - lo).clamp(min=1e-6), x)
    if kind is RandOp.EQUALIZE:
        return equalize(x)
    if kind is RandOp.ROTATE:
        return rotate(x, mag * 30.0)
    if kind is RandOp.SOLARIZE:
        return solarize(x, 1.0 - mag)  # threshold 1 (no change) .. 0 (invert all)
    if kind is RandOp.POSTERIZE:
        bits = (8 - (mag * 4).round()).clamp(1, 8)
        return posterize(x, bits.to(x.dtype))
    if kind is RandOp.COLOR:
        return (_gray(x) + (1.0 + 0.9 * view) * (x - _gray(x))) if x.shape[1] == 3 else x
    if kind is RandOp.CONTRAST:
        mean = _gray(x).mean((2, 3), keepdim=True)
        return mean + (1.0 + 0.9 * view) * (x - mean)
    if kind is RandOp.BRIGHTNESS:
        return x * (1.0 + 0.9 * view)
    if kind is RandOp.SHARPNESS:
        return sharpness(x, (1.0 + 0.9 * mag).clamp(min=0.0))
    if kind in (RandOp.SHEAR_X, RandOp.SHEAR_Y):
        amount = torch.zeros(b, 2, device=x.device, dtype=x.dtype)
        amount[:, 0 if kind is RandOp.SHEAR_X else 1] = 0.3 * mag
        return shear(x, amount)
    if kind in (RandOp.TRANSLATE_X, RandOp.TRANSLATE_Y):
        shift = torch.zeros(b, 2, device=x.device, dtype=x.dtype)
        shift[:, 0 if kind is RandOp.TRANSLATE_X else 1] = mag * (150.0 / 331.0) * (w if kind is RandOp.TRANSLATE_X else h)
        return translate(x, shift)
    return x
