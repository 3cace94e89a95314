"""CLIP-style training: InfoNCE by hand, zero-shot beats chance on a tiny synthetic caption set
(digits with generated captions, a share deliberately mismatched), config errors name the option."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainer.clip_train import ClipConfig, info_nce, train_clip
from trainer.contrastive import ArrayBatches
from trainer.probe import zero_shot

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a photo of a {}.", "a drawing of the digit {}", "{}, handwritten", "the number {} in grey"]
ATTRS = ["small", "bold", "thin", "blurry", "tilted"]


def _captioned(seed: int = 0, mismatched: float = 0.1):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    texts = []
    for label in y:
        c = int(rng.integers(10)) if rng.random() < mismatched else int(label)
        texts.append(f"{ATTRS[rng.integers(len(ATTRS))]} " + TEMPLATES[rng.integers(len(TEMPLATES))].format(NAMES[c]))
    return x, y, texts


def test_info_nce_matches_hand_computation():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    s = 2.0
    logits = [[s * float(img[i] @ txt[j]) for j in range(2)] for i in range(2)]

    def ce(row, k):
        return -(row[k] - math.log(sum(math.exp(v) for v in row)))

    i2t = sum(ce(logits[i], i) for i in range(2)) / 2
    t2i = sum(ce([logits[i][j] for i in range(2)], j) for j in range(2)) / 2
    assert float(info_nce(img, txt, s)) == pytest.approx((i2t + t2i) / 2, rel=1e-6)


def test_clip_zero_shot_beats_chance_on_synthetic_captions():
    x, y, texts = _captioned()
    train, test = np.arange(0, 1300), np.arange(1300, len(x))
    cfg = ClipConfig(steps=80, batch_size=64, lr=3e-3, crop_padding=0, seed=1)
    untrained = zero_shot(train_clip(ArrayBatches(x, train, 64, 1, texts=texts), (8, 8),
                                     ClipConfig(steps=1, batch_size=64, lr=1e-9, crop_padding=0, seed=1))[0],
                          x[test], y[test], (8, 8), NAMES, TEMPLATES)
    model, info = train_clip(ArrayBatches(x, train, 64, 1, texts=texts), (8, 8), cfg)
    assert np.mean(info["losses"][-10:]) < np.mean(info["losses"][:10]) - 0.3
    acc = zero_shot(model, x[test], y[test], (8, 8), NAMES, TEMPLATES)
    assert acc > 0.4 and acc > untrained + 0.2  # chance is 0.1


def test_clip_needs_captions():
    x, _, _ = _captioned()
    with pytest.raises(ValueError, match="captions"):
        train_clip(ArrayBatches(x, np.arange(200), 32, 0), (8, 8), ClipConfig(steps=2, batch_size=32))


@pytest.mark.parametrize("option,value", [("steps", 0), ("batch_size", 1), ("lr", -1.0), ("crop_padding", -2)])
def test_clip_config_names_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        ClipConfig(**{option: value})


def _caption_store(root):
    from sklearn.datasets import load_digits

    from storage_service.columns import write_text_column
    from storage_service.ingest import write_store

    x, y, texts = _captioned()
    write_store(root / "dc" / "train", x[:1300], y[:1300], name="dc/train", class_names=NAMES)
    write_text_column(root / "dc" / "train", texts[:1300])
    write_store(root / "dc" / "test", x[1300:], y[1300:], name="dc/test", class_names=NAMES)
    assert len(load_digits().target) == len(x)
    return x, y, texts


def test_clip_from_a_local_store_text_column(tmp_path):
    from storage_service.store import Store

    x, y, texts = _caption_store(tmp_path)
    store = Store(tmp_path / "dc" / "train")
    assert store.texts() == texts[:1300]
    sx, _ = store.take(np.arange(len(store)))
    model, _ = train_clip(ArrayBatches(sx, np.arange(len(store)), 64, 2, texts=store.texts()), (8, 8),
                          ClipConfig(steps=60, batch_size=64, lr=3e-3, crop_padding=0, seed=2))
    assert zero_shot(model, x[1300:], y[1300:], (8, 8), NAMES, TEMPLATES) > 0.4


def test_clip_streams_captions_over_loopback_grpc(tmp_path, capsys):
    """``nessa train --objective clip``: captions streamed with the text column, zero-shot on dc/test."""
    import json

    from nessa.cli import main
    from storage_service.server import serve_local

    _caption_store(tmp_path)
    with serve_local(tmp_path) as target:
        rc = main(["train", "--server", target, "--dataset", "dc/train", "--test-dataset", "dc/test", "--objective", "clip",
                   "--epochs", "4", "--batch-size", "64", "--lr", "0.003", "--threads", "1", "--no-progress",
                   "--out-dir", str(tmp_path / "run"), "--templates", "|".join(TEMPLATES), "--push-version", "3"])
    assert rc == 0, capsys.readouterr().err
    (rec,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rec["eval"] == "zero_shot" and rec["steps"] == 4 * (1300 // 64) and rec["pushed_version"] == 3
    assert rec["test_acc"] > 0.4  # chance is 0.1
