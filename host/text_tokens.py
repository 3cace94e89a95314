"""Deterministic hashing tokenizer for the CLIP-style text tower (no vocabulary file).

Text -> lower-case words (runs of ``[a-z0-9]``) -> word unigrams and bigrams -> each hashed with
BLAKE2b (stable across processes and Python versions, unlike ``hash``) into ``1..table_size-1``;
id 0 is padding. The same text always gives the same ids, on every machine, so a model pushed
to the storage service encodes captions exactly as the trainer did.

Format version: ``TOKENS_VERSION`` (bump if the hashing or the n-gram rule changes: a model
trained under one version must not be used with another).
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import torch

__all__ = ["TOKENS_VERSION", "DEFAULT_TABLE_SIZE", "DEFAULT_MAX_TOKENS", "token_ids", "tokenize"]

TOKENS_VERSION = 1
DEFAULT_TABLE_SIZE = 4096
DEFAULT_MAX_TOKENS = 48

_WORD = re.compile(r"[a-z0-9]+")


def _bucket(token: str, table_size: int) -> int:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % (table_size - 1)


def token_ids(text: str, *, table_size: int = DEFAULT_TABLE_SIZE, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[int]:
    """Hashed unigram + bigram ids of ``text`` (at most ``max_tokens``, unigrams first)."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize needs str captions, got {type(text).__name__}")
    words = _WORD.findall(text.lower())
    grams = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    return [_bucket(g, table_size) for g in grams[:max_tokens]]


def tokenize(texts: Sequence[str], *, table_size: int = DEFAULT_TABLE_SIZE,
             max_tokens: int = DEFAULT_MAX_TOKENS) -> torch.Tensor:
    """``texts`` -> int64 (B, L) ids padded with 0 (L = longest, at least 1)."""
    if table_size < 2:
        raise ValueError(f"table_size must be >= 2, got {table_size}")
    rows = [token_ids(t, table_size=table_size, max_tokens=max_tokens) for t in texts]
    width = max([1] + [len(r) for r in rows])
    out = torch.zeros((len(rows), width), dtype=torch.int64)
    for i, r in enumerate(rows):
        if r:
            out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return out
