"""SimCLR: NT-Xent against a hand computation, the loss falls, a linear probe on its features
beats chance on real digits; the contrastive architectures through host.models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from host.models import Arch, build_model
from host.text_tokens import tokenize
from trainer.contrastive import ArrayBatches, SimCLRConfig, nt_xent, steps_for, train_simclr
from trainer.probe import linear_probe


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)  # (N, 8, 8) uint8, as the store holds it
    return x, d.target.astype(np.int64)


def test_nt_xent_matches_hand_computation():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[0.6, 0.8], [0.8, -0.6]])
    tau = 0.5
    views = [z1[0], z1[1], z2[0], z2[1]]
    twin = {0: 2, 1: 3, 2: 0, 3: 1}
    total = 0.0
    for a in range(4):  # loss of anchor a: -log(exp(s(a,twin)/tau) / sum_{k != a} exp(s(a,k)/tau))
        sims = {k: float(views[a] @ views[k]) / tau for k in range(4) if k != a}
        total += -(sims[twin[a]] - math.log(sum(math.exp(v) for v in sims.values())))
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / 4, rel=1e-6)
    # positives identical and far from the negatives -> a much smaller loss
    assert float(nt_xent(z1, z1, tau)) < float(nt_xent(z1, z2, tau))


def test_simclr_loss_falls_and_probe_beats_chance():
    x, y = _digits()
    train, test = np.arange(0, 1200), np.arange(1200, len(x))
    cfg = SimCLRConfig(steps=60, batch_size=64, lr=3e-3, crop_padding=1, cutout=2, randaugment_ops=0, seed=3)
    model, info = train_simclr(ArrayBatches(x, train, cfg.batch_size, cfg.seed), (8, 8), cfg)
    losses = info["losses"]
    assert len(losses) == 60 and info["epochs"] == 4  # 1200 // 64 = 18 steps an epoch: step-matched cycling
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.2
    acc = linear_probe(model, x[train], y[train], x[test], y[test], (8, 8))
    assert acc > 0.5  # chance is 0.1


def test_simclr_subset_is_step_matched():
    x, _ = _digits()
    cfg = SimCLRConfig(steps=steps_for(600, 50, 1), batch_size=50, randaugment_ops=0, cutout=0)
    _, info = train_simclr(ArrayBatches(x, np.arange(300), 50, 0), (8, 8), cfg)
    assert len(info["losses"]) == 12 and info["epochs"] == 2  # half the data, same steps: two passes


@pytest.mark.parametrize("option,value", [("steps", 0), ("batch_size", 1), ("temperature", 0.0),
                                          ("lr", float("nan")), ("cutout", -1)])
def test_simclr_config_names_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        SimCLRConfig(**{option: value})


def test_contrastive_archs_build_and_encode():
    assert {Arch.SIMCLR_CNN.value, Arch.CLIP_CNN.value} <= {a.value for a in Arch}
    x = torch.rand(5, 1, 28, 28)
    sim = build_model("simclr_cnn", (28, 28), 10)
    h = sim.encode_image(x)
    assert h.shape == (5, 64) and sim.project(h).shape == (5, 32) and sim(x).shape == (5, 10)
    clip = build_model("clip_cnn", (28, 28), 10)
    img, txt = clip.encode_image(x), clip.encode_text(["a photo of a shirt"] * 5)
    assert img.shape == txt.shape == (5, 32)
    assert torch.allclose(img.norm(dim=1), torch.ones(5)) and torch.allclose(txt.norm(dim=1), torch.ones(5))
    with torch.device("meta"):  # how the model registry checks a pushed state's names and shapes
        meta = build_model("clip_cnn", (28, 28), 10)
    assert set(meta.state_dict()) == set(clip.state_dict())


def test_tokenizer_is_deterministic_and_padded():
    a = tokenize(["A photo of a Shirt.", "sneaker"])
    b = tokenize(["a photo of a shirt", "SNEAKER!"])
    assert torch.equal(a, b)  # case and punctuation do not matter
    assert a.shape == (2, 5 + 4) and int((a[1] != 0).sum()) == 1 and int(a.min()) >= 0
    assert not torch.equal(tokenize(["shirt photo"]), tokenize(["photo shirt"]))  # bigrams keep order
    # fixed values: the hash is stable across processes (BLAKE2b, not Python's salted hash)
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "from host.text_tokens import token_ids; print(token_ids('a red dress'))"],
                         capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    from host.text_tokens import token_ids
    assert out.stdout.strip() == str(token_ids("a red dress"))
