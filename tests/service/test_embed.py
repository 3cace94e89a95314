"""host/embedding.py: image embeddings from a real small CNN on Fashion-MNIST-shaped data; the
text-tower error path. (The Embed RPC tests join this file when storage_service/embed_jobs.py lands.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.embedding import EmbeddingError, embed_images, embed_texts, has_tower
from host.models import build_model, to_input


def _model():
    torch.manual_seed(0)
    return build_model("small_cnn", (28, 28), 10)


def test_embed_images_matches_model_embed_and_is_batch_invariant():
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(37, 28, 28), dtype=np.uint8)
    a = embed_images(model, x, (28, 28), batch_size=8)
    b = embed_images(model, x, (28, 28), batch_size=64)
    assert a.dtype == np.float32 and a.shape[0] == 37
    np.testing.assert_allclose(a, b, atol=1e-5)
    with torch.inference_mode():
        ref = model.eval().embed(to_input(x, (28, 28))).numpy()
    np.testing.assert_allclose(a, ref, atol=1e-4)
    x.setflags(write=False)  # store batches are read-only mmaps
    np.testing.assert_allclose(embed_images(model, x, (28, 28), batch_size=16), a, atol=1e-5)


def test_text_tower_missing_is_a_clear_error():
    model = _model()
    assert has_tower(model, "image") and not has_tower(model, "text")
    with pytest.raises(EmbeddingError, match="text tower"):
        embed_texts(model, ["a shirt"], batch_size=4)
    with pytest.raises(EmbeddingError, match="tower"):
        has_tower(model, "audio")
    with pytest.raises(EmbeddingError, match="batch_size"):
        embed_images(model, np.zeros((2, 28, 28), np.uint8), (28, 28), batch_size=0)
