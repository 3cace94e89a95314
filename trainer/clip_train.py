"""CLIP-style training (image tower + text tower, symmetric InfoNCE) on image–caption batches.

Batches come from a ``trainer.contrastive.BatchFn`` that yields captions (a local
``ArrayBatches`` with ``texts``, or ``stream_batches`` over the storage service with
``columns=("text",)``). Step matching as in ``trainer.contrastive``: ``steps`` optimizer steps
whatever the subset size. The loss (Radford et al., 2021): logits = exp(t) · I·Tᵀ over the
batch's normalised embeddings, cross-entropy image→text and text→image, averaged; t is the
model's learnable ``logit_scale`` (clamped at ln 100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from host.augment import AugmentConfig, Augmenter
from host.contrastive_models import ClipCNN
from host.models import build_model, to_input

from ._step_loop import BatchFn, check_loop_options, check_positive, run_steps

__all__ = ["ClipConfig", "info_nce", "train_clip", "stream_batches"]


@dataclass(frozen=True)
class ClipConfig:
    steps: int = 200
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    crop_padding: int = 2  # light image augmentation (0 turns it off)
    device: str = "cpu"

    def __post_init__(self):
        check_loop_options("clip", self.steps, self.batch_size, "InfoNCE")
        check_positive("clip", "lr", self.lr)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"clip option weight_decay must be >= 0, got {self.weight_decay!r}")
        AugmentConfig(crop_padding=self.crop_padding)


def info_nce(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE for normalised (B, D) image and text embeddings, pair i <-> i."""
    if image.shape != text.shape or image.ndim != 2:
        raise ValueError(f"info_nce needs two (B, D) tensors of one shape, got {tuple(image.shape)} and {tuple(text.shape)}")
    logits = scale * image @ text.t()
    target = torch.arange(image.shape[0], device=image.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def train_clip(batches: BatchFn, sample_shape, config: ClipConfig, *, num_classes: int = 10,
               on_step: "Callable[[int, float], None] | None" = None) -> tuple[ClipCNN, dict]:
    """Train a ``clip_cnn`` for ``config.steps`` steps; -> (model, {'losses', 'seconds', 'epochs'})."""
    torch.manual_seed(config.seed)
    model = build_model("clip_cnn", sample_shape, num_classes).to(config.device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    aug = Augmenter(AugmentConfig(crop_padding=config.crop_padding))

    def loss_of(ids, samples, texts, epoch):
        if texts is None:
            raise ValueError("CLIP training needs captions: the batch source gave none (stream with columns=('text',))")
        x = to_input(samples, sample_shape)
        u8 = aug((x * 255).round().to(torch.uint8), ids, epoch=epoch, seed=config.seed)
        img = model.encode_image(u8.float().div_(255.0).to(config.device))
        return info_nce(img, model.encode_text(texts), model.scale())

    model.train()
    out = run_steps(batches, config.steps, loss_of, opt, on_step=on_step)
    model.eval()
    return model, out


def stream_batches(client: Any, dataset: str, *, selection: str, seed: int, batch_size: int,
                   fraction: float | None = None, captions: bool = False) -> BatchFn:
    """A ``BatchFn`` over the storage service: each epoch streams ``selection`` (its order is the
    service's, seeded by ``seed`` and the epoch) and regroups the streamed pieces into
    ``batch_size`` batches; ``captions`` asks for the ``text`` column."""
    extra = {"columns": ("text",)} if captions else {}
    if fraction is not None:
        extra["fraction"] = fraction

    def batches(epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, "list[str] | None"]]:
        ids_buf: list[np.ndarray] = []
        smp_buf: list[np.ndarray] = []
        txt_buf: list[str] = []
        have = 0
        for part in client.stream_samples(dataset, selection=selection, epoch=epoch, seed=seed, **extra):
            ids_buf.append(np.asarray(part.ids, dtype=np.int64))
            smp_buf.append(np.asarray(part.samples))
            if captions:
                txt_buf.extend(list(part.columns["text"]))
            have += len(ids_buf[-1])
            while have >= batch_size:
                ids, smp = np.concatenate(ids_buf), np.concatenate(smp_buf)
                yield ids[:batch_size], smp[:batch_size], (txt_buf[:batch_size] if captions else None)
                ids_buf, smp_buf = [ids[batch_size:]], [smp[batch_size:]]
                txt_buf = txt_buf[batch_size:]
                have -= batch_size

    return batches
