"""Models for contrastive learning: SimCLR (one image tower + projection head) and a CLIP-style
two-tower model (image tower + hashing-tokenizer text tower, learnable temperature).

Both follow ``host.models.NessaModel``'s interface (``forward = head(embed(x))`` with a linear
head over the representation; not imported from there, which registers these builders) so the storage service's model registry can build, check and load them like the
supervised architectures; the head is unused by contrastive training. The methods the rest of
NeSSA calls:

* ``encode_image(x) -> (B, D)``: the representation used for linear probes and embedding
  columns (SimCLR: the encoder output before the projection head; CLIP: the L2-normalised joint
  embedding, so image–text similarity is a dot product);
* SimCLR ``project(h) -> (B, P)``: the projection head the NT-Xent loss sees;
* CLIP ``encode_text(list[str]) -> (B, D)``: L2-normalised caption embeddings;
  ``logit_scale``: log of the inverse temperature (clamped to ln 100 when used, as in CLIP).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._model_base import NessaModel, conv_trunk
from .text_tokens import DEFAULT_MAX_TOKENS, DEFAULT_TABLE_SIZE, tokenize

__all__ = ["SimCLRCNN", "ClipCNN", "MAX_LOGIT_SCALE"]

MAX_LOGIT_SCALE = math.log(100.0)


class SimCLRCNN(NessaModel):
    """SmallCNN encoder (``embed``) + 2-layer projection head (``project``)."""

    def __init__(self, in_chw: Sequence[int], num_classes: int, width: int = 16, embed_dim: int = 64,
                 proj_dim: int = 32):
        super().__init__()
        self.features, self.fc = conv_trunk(in_chw, width, embed_dim)
        self.relu = nn.ReLU()
        self.proj1 = nn.Linear(embed_dim, embed_dim)
        self.proj2 = nn.Linear(embed_dim, proj_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(self.features(x)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj2(self.relu(self.proj1(h)))


class ClipCNN(NessaModel):
    """Image tower (SmallCNN trunk + linear projection) and text tower (mean of hashed
    unigram/bigram embeddings + MLP), both into a ``joint_dim`` unit sphere."""

    def __init__(self, in_chw: Sequence[int], num_classes: int, width: int = 16, embed_dim: int = 64,
                 joint_dim: int = 32, table_size: int = DEFAULT_TABLE_SIZE, max_tokens: int = DEFAULT_MAX_TOKENS):
        super().__init__()
        self.features, self.fc = conv_trunk(in_chw, width, embed_dim)
        self.relu = nn.ReLU()
        self.image_proj = nn.Linear(embed_dim, joint_dim)
        self.table_size = table_size
        self.max_tokens = max_tokens
        self.token_embed = nn.EmbeddingBag(table_size, embed_dim, mode="mean", padding_idx=0)
        self.text_fc = nn.Linear(embed_dim, embed_dim)
        self.text_proj = nn.Linear(embed_dim, joint_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.head = nn.Linear(embed_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(self.features(x)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.embed(x)), dim=-1)

    def encode_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.text_fc(self.token_embed(ids)))
        return F.normalize(self.text_proj(h), dim=-1)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        ids = tokenize(list(texts), table_size=self.table_size, max_tokens=self.max_tokens)
        return self.encode_tokens(ids.to(self.token_embed.weight.device))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
