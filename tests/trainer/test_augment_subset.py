"""``trainer.augment_subset``: the ``--augment-subset`` kinds, and what ``BatchAugment`` makes of a
streamed batch (its rows, copies of them, weights), without a service."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.augment import AugmentConfig, Augmenter
from trainer.augment_subset import AugmentKind, BatchAugment, SubsetCopies, parse_augment_subset

RNG = np.random.default_rng(5)
X = torch.from_numpy(RNG.integers(1, 256, (24, 1, 8, 8), dtype=np.uint8))
IDS = torch.arange(100, 124)
Y = torch.from_numpy(RNG.integers(0, 10, 24))
W = torch.from_numpy(RNG.uniform(0.5, 3.0, 24).astype(np.float32))
STRONG = Augmenter(AugmentConfig(crop_padding=2, cutout=4))
WEAK = Augmenter(AugmentConfig(crop_padding=2))


@pytest.mark.parametrize("text,expected", [
    ("coreset:0.3", (AugmentKind.CORESET, 0.3)), ("random:1", (AugmentKind.RANDOM, 1.0)),
    ("max-loss:0.05", (AugmentKind.MAX_LOSS, 0.05)), ("selected", (AugmentKind.SELECTED, 1.0)),
    ("selected:1", (AugmentKind.SELECTED, 1.0)),
])
def test_parse(text, expected):
    assert parse_augment_subset(text) == expected


@pytest.mark.parametrize("text,message", [
    ("selected:0.3", "'selected' copies every streamed row; its fraction is the run's --fraction"),
    ("coreset", "fraction must be in"), ("random:0", "fraction must be in"), ("herding:0.1", "unknown kind 'herding'"),
])
def test_parse_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_augment_subset(text)


def test_only_selected_picks_nothing_of_its_own():
    assert AugmentKind.SELECTED.strategy is None
    assert all(k.strategy is not None for k in AugmentKind if k is not AugmentKind.SELECTED)


def test_mirror_adds_a_strong_copy_of_every_row_with_weight_one():
    x, y, w = BatchAugment(STRONG, None, seed=3, mirror=True)(X, IDS, Y, W, epoch=2, sample_shape=(8, 8), rows_per_epoch=240)
    assert x.shape == (48, 1, 8, 8) and torch.equal(y, torch.cat([Y, Y]))
    assert torch.equal(x[:24], X)  # the streamed rows as stored (no --augment-main)
    assert torch.equal(x[24:], STRONG(X, IDS, epoch=2, seed=3))  # each copy is the strong view of its own row
    assert torch.equal(w[:24], W) and torch.equal(w[24:], torch.ones(24))  # coreset weights stay on the rows


def test_main_views_are_weak_and_drawn_apart_from_the_copies():
    aug = BatchAugment(STRONG, None, seed=3, mirror=True, main=WEAK)
    x, _, _ = aug(X, IDS, Y, W, epoch=2, sample_shape=(8, 8), rows_per_epoch=240)
    assert torch.equal(x[24:], STRONG(X, IDS, epoch=2, seed=3))  # the copy comes from the stored row
    main, padded = x[:24], torch.nn.functional.pad(X, (2, 2, 2, 2))
    assert not torch.equal(main, X)
    for m, p in zip(main, padded):  # each a crop window of its row and nothing more (no Cutout)
        assert any(torch.equal(m, p[:, dy : dy + 8, dx : dx + 8]) for dy in range(5) for dx in range(5))
    assert not torch.equal(main, WEAK(X, IDS, epoch=2, seed=3))  # another draw than the copies' crops
    again, _, _ = aug(X, IDS, Y, W, epoch=2, sample_shape=(8, 8), rows_per_epoch=240)
    assert torch.equal(again, x)  # reproducible per (seed, epoch, id)


def test_main_views_also_apply_beside_subset_copies():
    copies = SubsetCopies(STRONG, seed=0, use_weights=False)

    class _Batch:
        samples, labels, weights, ids, nbytes = X.numpy()[:6], Y.numpy()[:6], W.numpy()[:6], IDS.numpy()[:6], 384

    copies.load([_Batch()])
    x, y, w = BatchAugment(STRONG, copies, seed=0, main=WEAK)(X, IDS, Y, W, epoch=0, sample_shape=(8, 8), rows_per_epoch=48)
    assert x.shape[0] == 24 + 3 and not torch.equal(x[:24], X) and torch.equal(w[:24], W)


@pytest.mark.parametrize("kw,message", [
    (dict(copies=None, main=WEAK), "--augment-main: augments the streamed rows beside copies"),
    (dict(copies=SubsetCopies(STRONG, seed=0, use_weights=False), mirror=True), "mirror copies the batch's own rows"),
])
def test_bad_combinations_named(kw, message):
    with pytest.raises(ValueError, match=message):
        BatchAugment(STRONG, seed=0, **kw)
