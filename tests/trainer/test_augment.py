"""Tensor augmentations: each transform does what it says, and an image's augmentation depends
on (seed, epoch, id) only, not on the batch it is in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.augment import AugmentConfig, Augmenter, augment_config, uniforms

RNG = np.random.default_rng(3)
IMAGES = torch.from_numpy(RNG.integers(1, 256, (64, 3, 16, 16), dtype=np.uint8))
IDS = np.arange(1000, 1064)


def test_uniforms_are_uniform_and_keyed():
    u = uniforms(1, 2, np.arange(20000), 3)
    assert u.shape == (20000, 3) and 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and np.histogram(u, bins=10)[0].min() > 5500
    assert np.array_equal(u, uniforms(1, 2, np.arange(20000), 3))
    assert not np.allclose(u, uniforms(1, 3, np.arange(20000), 3)) and not np.allclose(u, uniforms(2, 2, np.arange(20000), 3))


@pytest.mark.parametrize("cfg", [AugmentConfig(crop_padding=4, flip=True, cutout=6), AugmentConfig(randaugment_ops=2, crop_padding=2)])
def test_same_id_same_augmentation_in_any_batch(cfg):
    aug = Augmenter(cfg)
    whole = aug(IMAGES, IDS, epoch=3, seed=7)
    perm = RNG.permutation(64)
    parts = torch.cat([aug(IMAGES[perm[:20]], IDS[perm[:20]], epoch=3, seed=7), aug(IMAGES[perm[20:]], IDS[perm[20:]], epoch=3, seed=7)])
    assert torch.equal(parts, whole[perm])
    assert not torch.equal(aug(IMAGES, IDS, epoch=4, seed=7), whole)  # a new epoch draws anew


def test_crop_is_a_window_of_the_padded_image():
    out = Augmenter(AugmentConfig(crop_padding=3))(IMAGES, IDS, epoch=0, seed=0)
    padded = torch.nn.functional.pad(IMAGES, (3, 3, 3, 3))
    shifts = set()
    for i in range(len(IMAGES)):
        found = [(dy, dx) for dy in range(7) for dx in range(7) if torch.equal(out[i], padded[i, :, dy : dy + 16, dx : dx + 16])]
        assert found, i
        shifts.add(found[0])
    assert len(shifts) > 15  # the offsets vary from image to image


def test_flip_flips_about_half():
    out = Augmenter(AugmentConfig(flip=True))(IMAGES, IDS, epoch=0, seed=0)
    flipped = [torch.equal(o, x.flip(-1)) for o, x in zip(out, IMAGES)]
    same = [torch.equal(o, x) for o, x in zip(out, IMAGES)]
    assert all(f or s for f, s in zip(flipped, same)) and 16 < sum(flipped) < 48


def test_cutout_zeroes_one_clipped_square():
    out = Augmenter(AugmentConfig(cutout=6))(IMAGES, IDS, epoch=0, seed=0)
    for o, x in zip(out, IMAGES):
        changed = (o != x).any(0)
        assert (o[:, changed] == 0).all()  # the images have no zero pixel, so every change is the cutout
        ys, xs = changed.nonzero(as_tuple=True)
        assert 0 < changed.sum() <= 36 and ys.max() - ys.min() < 6 and xs.max() - xs.min() < 6


def test_randaugment_changes_images_and_keeps_their_type():
    out = Augmenter(AugmentConfig(randaugment_ops=2, randaugment_magnitude=9))(IMAGES, IDS, epoch=0, seed=0)
    assert out.dtype == torch.uint8 and out.shape == IMAGES.shape
    assert sum(not torch.equal(o, x) for o, x in zip(out, IMAGES)) > 48  # two ops: identity twice is rare
    gray = Augmenter(AugmentConfig(randaugment_ops=3))(IMAGES[:, :1], IDS, epoch=0, seed=0)  # one channel too
    assert gray.shape == (64, 1, 16, 16)


@pytest.mark.parametrize("kw,name", [(dict(crop_padding=-1), "crop_padding"), (dict(cutout=2.5), "cutout"),
                                     (dict(randaugment_magnitude=31), "randaugment_magnitude")])
def test_bad_options_named(kw, name):
    with pytest.raises(ValueError, match=name):
        AugmentConfig(**kw)


def test_bad_input_named():
    aug = Augmenter(AugmentConfig(flip=True))
    with pytest.raises(ValueError, match="uint8 or float32"):
        aug(IMAGES.double(), IDS, epoch=0, seed=0)
    with pytest.raises(ValueError, match="randaugment works on uint8"):
        Augmenter(AugmentConfig(randaugment_ops=1))(IMAGES.float() / 255, IDS, epoch=0, seed=0)
    with pytest.raises(ValueError, match="63 ids for 64 images"):
        aug(IMAGES, IDS[:63], epoch=0, seed=0)


def test_float_images_take_the_same_views_as_uint8():
    # A distillation's images are float32 in the models' input space (uint8 / 255): crop, flip and
    # Cutout must draw the very views they draw of the uint8 images, for the storage host's view
    # labels (host.distill.views) to label what the trainer trains on.
    aug = Augmenter(AugmentConfig(crop_padding=2, flip=True, cutout=4))
    as_uint8 = aug(IMAGES, IDS, epoch=3, seed=7)
    as_float = aug(IMAGES.float() / 255, IDS, epoch=3, seed=7)
    assert as_float.dtype == torch.float32
    assert torch.equal(as_float, as_uint8.float() / 255)
    assert not torch.equal(as_uint8, IMAGES)  # something was augmented


def test_augment_config_sizes_by_the_image_side_whatever_the_layout():
    # (H, W, C) data: the side is W, not the channel count.
    assert augment_config(("crop", "cutout"), (32, 32, 3)) == augment_config(("crop", "cutout"), (3, 32, 32))
    assert augment_config(("crop", "cutout"), (32, 32, 3)).cutout == 16
    assert augment_config(("crop",), (28, 28)).crop_padding == 2
