"""Embeddings of samples and captions with a trained model (layer 1: torch only, no service).

``embed_images`` uses the model's ``encode_image`` when it has one (the contrastive models,
host/contrastive_models.py) and its ``embed`` (penultimate layer) otherwise (host/models.py's
supervised archs); ``embed_texts`` needs ``encode_text`` (CLIP-style two-tower models only).
Both run batched on an eval-mode inference copy under ``torch.inference_mode`` (the caller's
model is left as it is) and return float32 ``(n, d)``. The inference copy is host/features.py's,
so the fused/channels-last fast path is shared, not duplicated.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from host.features import _inference_copy
from host.models import to_input

__all__ = ["EmbeddingError", "embed_images", "embed_texts", "has_tower"]


class EmbeddingError(ValueError):
    """The model cannot embed what was asked (no such tower) or an option is out of range."""


def has_tower(model: torch.nn.Module, tower: str) -> bool:
    """Whether ``model`` can embed ``tower`` ("image" or "text")."""
    if tower == "image":
        return callable(getattr(model, "encode_image", None)) or callable(getattr(model, "embed", None))
    if tower == "text":
        return callable(getattr(model, "encode_text", None))
    raise EmbeddingError(f"tower must be 'image' or 'text', got {tower!r}")


def _check_batch(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise EmbeddingError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


def _device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def embed_images(model: torch.nn.Module, samples: Any, sample_shape: Sequence[int], *, batch_size: int = 256) -> np.ndarray:
    """Image-tower embeddings of ``samples`` (uint8 ``[N, *sample_shape]`` or float in [0, 1])."""
    bs = _check_batch(batch_size)
    if not has_tower(model, "image"):
        raise EmbeddingError(f"model {type(model).__name__} has neither encode_image nor embed")
    device = _device(model)
    net = _inference_copy(model, cpu=device.type == "cpu")
    fn = net.encode_image if callable(getattr(net, "encode_image", None)) else net.embed
    n = len(samples)
    parts: list[np.ndarray] = []
    with torch.inference_mode():
        for lo in range(0, n, bs):
            chunk = samples[lo : lo + bs]
            if isinstance(chunk, np.ndarray) and not chunk.flags.writeable:
                chunk = np.array(chunk)  # store batches are read-only mmaps; torch wants writable
            out = fn(to_input(chunk, sample_shape).to(device))
            parts.append(out.reshape(out.shape[0], -1).float().cpu().numpy())
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def embed_texts(model: torch.nn.Module, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
    """Text-tower embeddings of ``texts`` (captions); the model needs ``encode_text``."""
    bs = _check_batch(batch_size)
    if not has_tower(model, "text"):
        raise EmbeddingError(f"model {type(model).__name__} has no text tower (encode_text); tower 'text' needs a CLIP-style model")
    net = _inference_copy(model, cpu=_device(model).type == "cpu")
    texts = list(texts)
    parts: list[np.ndarray] = []
    with torch.inference_mode():
        for lo in range(0, len(texts), bs):
            out = net.encode_text(texts[lo : lo + bs])
            parts.append(out.reshape(out.shape[0], -1).float().cpu().numpy())
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
