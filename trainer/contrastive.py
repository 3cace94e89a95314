"""SimCLR training (two augmented views per image, NT-Xent) on a streamed or local subset.

Step matching (the selection protocol's rule): a run trains ``steps`` optimizer steps whatever
its subset size; the batch source is re-read epoch after epoch (a fresh order per epoch) until
the budget is spent, so a 60 % subset sees each of its examples ~1/0.6 times as often as full
data does in the same number of steps. ``steps_for(num_full, batch_size, epochs)`` gives full
data's step count, which every arm of a comparison then uses.

The two views of an image are ``host.augment.Augmenter`` draws for epochs 2e and 2e+1 (its
draws are a pure function of seed, epoch and sample id, so a run is reproducible and the views
differ). The loss is NT-Xent (Chen et al., 2020): for 2B projected, normalised views, each view's
positive is its twin and the other 2B-2 views are negatives, at temperature ``tau``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from host.augment import AugmentConfig, Augmenter
from host.contrastive_models import SimCLRCNN
from host.models import build_model, to_input

from ._step_loop import BatchFn, check_loop_options, check_positive, run_steps

__all__ = ["SimCLRConfig", "nt_xent", "steps_for", "train_simclr", "ArrayBatches", "BatchFn"]

# batches(epoch) -> iterable of (ids int64 (B,), samples uint8 (B, *sample_shape), texts list[str] | None)


@dataclass(frozen=True)
class SimCLRConfig:
    steps: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.5
    seed: int = 0
    crop_padding: int = 4
    flip: bool = True
    cutout: int = 8
    randaugment_ops: int = 1
    device: str = "cpu"

    def __post_init__(self):
        check_loop_options("simclr", self.steps, self.batch_size, "NT-Xent")
        for name in ("lr", "temperature"):
            check_positive("simclr", name, getattr(self, name))
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"simclr option weight_decay must be >= 0, got {self.weight_decay!r}")
        self.augment()  # checks the augmentation options, naming them

    def augment(self) -> AugmentConfig:
        return AugmentConfig(crop_padding=self.crop_padding, flip=self.flip, cutout=self.cutout,
                             randaugment_ops=self.randaugment_ops)


def steps_for(num_full: int, batch_size: int, epochs: int) -> int:
    """Full data's optimizer steps for ``epochs`` epochs (the budget every arm gets)."""
    return epochs * max(1, num_full // batch_size)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over the 2B views ``z1[i] <-> z2[i]`` (mean over all 2B anchors)."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent needs two (B, D) tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))  # a view is not its own negative
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


class ArrayBatches:
    """Local batch source over in-memory arrays restricted to ``ids`` (a subset), one seeded
    permutation per epoch; whole batches only (NT-Xent/InfoNCE want full-size batches)."""

    def __init__(self, samples: np.ndarray, ids: np.ndarray, batch_size: int, seed: int,
                 texts: "list[str] | None" = None):
        self.samples, self.ids = samples, np.asarray(ids, dtype=np.int64)
        if len(self.ids) < batch_size:
            raise ValueError(f"subset of {len(self.ids)} examples is smaller than batch_size {batch_size}")
        self.batch_size, self.seed, self.texts = batch_size, seed, texts

    def __call__(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, "list[str] | None"]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.ids)
        for s in range(0, len(order) - self.batch_size + 1, self.batch_size):
            ids = order[s:s + self.batch_size]
            texts = [self.texts[i] for i in ids] if self.texts is not None else None
            yield ids, self.samples[ids], texts


def _views(aug: Augmenter, images: torch.Tensor, ids: np.ndarray, epoch: int, seed: int):
    return aug(images, ids, epoch=2 * epoch, seed=seed), aug(images, ids, epoch=2 * epoch + 1, seed=seed)


def train_simclr(batches: BatchFn, sample_shape, config: SimCLRConfig, *, num_classes: int = 10,
                 on_step: "Callable[[int, float], None] | None" = None) -> tuple[SimCLRCNN, dict]:
    """Train a ``simclr_cnn`` for ``config.steps`` steps; -> (model, {'losses', 'seconds', 'epochs'})."""
    torch.manual_seed(config.seed)
    model = build_model("simclr_cnn", sample_shape, num_classes).to(config.device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    aug = Augmenter(config.augment())

    def loss_of(ids, samples, _texts, epoch):
        x = to_input(samples, sample_shape)
        u8 = (x * 255).round().to(torch.uint8).to(config.device)
        v1, v2 = _views(aug, u8, ids, epoch, config.seed)
        z = model.project(model.encode_image(torch.cat([v1, v2]).float().div_(255.0)))
        return nt_xent(z[: len(ids)], z[len(ids):], config.temperature)

    model.train()
    out = run_steps(batches, config.steps, loss_of, opt, on_step=on_step)
    model.eval()
    return model, out
