"""Dataset distillation (host.distill): options, DM and DC matching, PDD's conditioning, herding.

Real data, small: scikit-learn's 8x8 digits (1,797 images)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from host.distill import DistillConfig, DistillError, Distiller, check_images, herding
from host.distill._nets import ConvNet
from host.distill.matching import _dist_ours, match_stage


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/select/conftest.py


def _small(**kw) -> DistillConfig:
    base = dict(method="dm", stages=1, ipc=2, iterations=10, width=8, depth=2, real_batch=16, pretrain_epochs=2,
                pretrain_nets=1)
    base.update(kw)
    return DistillConfig(**base)


@pytest.mark.parametrize("kw, option", [
    (dict(stages=0), "--stages: must be at least 1"),
    (dict(ipc=0), "--ipc: images per class must be at least 1"),
    (dict(method="kip"), "--method: unknown method 'kip'"),
    (dict(iterations=0), "--iterations"),
    (dict(lr_img=float("nan")), "--lr-img"),
    (dict(stages=True), "--stages"),
    (dict(labels="fuzzy"), "--labels: unknown labels 'fuzzy'"),
    (dict(labels="soft", label_temperature=0.0), "--label-temperature"),
    (dict(labels="soft", teacher_epochs=0), "--teacher-epochs"),
    (dict(teacher_width=0), "--teacher-width"),
])
def test_bad_options_name_the_option(kw, option):
    with pytest.raises(DistillError, match=option):
        DistillConfig(**kw)


def test_samples_that_are_not_images_and_ipc_larger_than_a_class_are_refused():
    cfg = DistillConfig(ipc=5)
    with pytest.raises(DistillError, match=r"tab: samples of shape \[64\] are not images"):
        check_images("tab", (64,), [100, 100], cfg)
    with pytest.raises(DistillError, match=r"--ipc: 5 images per class is larger than class 1 of d \(4 samples\)"):
        check_images("d", (8, 8), [10, 4, 9], cfg)
    assert check_images("c", (32, 32, 3), [9, 9], cfg) == (3, 32, 32)
    with pytest.raises(DistillError, match="--depth"):
        check_images("tiny", (4, 4), [9, 9], cfg)


def _dm_gap(dist: Distiller, images: np.ndarray, labels: np.ndarray, nets) -> float:
    """DM's objective under fixed networks, without augmentation: sum over classes of the squared
    distance between the mean embeddings of all real images and of the synthetic ones."""
    x = dist._chw(torch.from_numpy(images))
    x = (x - dist.mean) / dist.std
    total = 0.0
    with torch.no_grad():
        for net in nets:
            for c, idx in enumerate(dist.real.by_class):
                mu_r = net.embed(dist.real.images[idx]).mean(0)
                mu_s = net.embed(x[torch.from_numpy(labels == c)]).mean(0)
                total += float(((mu_r - mu_s) ** 2).sum())
    return total


def test_dm_moves_synthetic_means_towards_the_real_ones(digits):
    x, y = digits
    cfg = _small(iterations=30, augment=False)
    dist = Distiller(x, y, (8, 8), 10, cfg, name="digits")
    init_gen = torch.Generator().manual_seed(7)
    init = torch.cat([dist.real.batch(c, cfg.ipc, init_gen) for c in range(10)])
    labels = np.repeat(np.arange(10), cfg.ipc)
    torch.manual_seed(0)
    judges = [dist._net() for _ in range(3)]  # fresh nets the distillation never saw
    before = _dm_gap(dist, dist._stored(init), labels, judges)
    images, out_labels = dist.run_stage(1)
    assert images.shape == (20, 8, 8) and images.dtype == np.float32 and np.isfinite(images).all()
    assert out_labels.tolist() == labels.tolist()  # hard labels, class-major
    # run_stage's own initial images differ from ``init`` but are drawn the same way (real images)
    after = _dm_gap(dist, images, labels, judges)
    assert after < 0.7 * before, (before, after)


def test_dc_reduces_the_gradient_distance(digits):
    x, y = digits
    cfg = _small(method="dc", ipc=1, iterations=6, outer_loop=2, inner_loop=1, augment=False)
    dist = Distiller(x, y, (8, 8), 10, cfg, name="digits")
    gen = torch.Generator().manual_seed(3)
    init = torch.cat([dist.real.batch(c, 1, gen) for c in range(10)])
    labels = torch.arange(10)
    torch.manual_seed(1)
    net0 = dist._net()

    def distance(syn: torch.Tensor) -> float:
        params = list(net0.parameters())
        total = 0.0
        for c, idx in enumerate(dist.real.by_class):
            gr = torch.autograd.grad(F.cross_entropy(net0(dist.real.images[idx]), torch.full((len(idx),), c)), params)
            gs = torch.autograd.grad(F.cross_entropy(net0(syn[c:c + 1]), labels[c:c + 1]), params)
            total += float(sum(_dist_ours(a, b) for a, b in zip(gr, gs)))
        return total

    out = match_stage(init, labels, dist.real, lambda step: copy.deepcopy(net0), cfg, torch.Generator().manual_seed(4))
    assert not torch.equal(out, init)
    assert distance(out) < distance(init)


def test_pdd_stages_are_conditioned_and_reproducible(digits):
    x, y = digits
    cfg = _small(stages=2, iterations=5)
    dist = Distiller(x, y, (8, 8), 10, cfg, name="digits")
    s1 = dist.run_stage(1)
    with pytest.raises(ValueError, match="conditioned on 1 earlier stages, got 0"):
        dist.run_stage(2)
    a = dist.run_stage(2, [s1])
    b = Distiller(x, y, (8, 8), 10, cfg, name="digits").run_stage(2, [s1])  # a resumed run: same stage 2
    np.testing.assert_array_equal(a[0], b[0])
    other = (s1[0] + 0.5, s1[1])  # conditioned on other earlier images -> a different stage 2
    assert not np.array_equal(dist.run_stage(2, [other])[0], a[0])
    assert not np.array_equal(a[0], s1[0])


def test_herding_picks_per_class_and_is_reproducible(digits):
    x, y = digits
    cfg = _small()
    dist = Distiller(x, y, (8, 8), 10, cfg, name="digits")
    ids = herding(dist, 5, train_samples=300, epochs=1)
    assert len(ids) == 50 and len(set(ids.tolist())) == 50
    assert np.bincount(y[ids], minlength=10).tolist() == [5] * 10
    np.testing.assert_array_equal(ids, herding(dist, 5, train_samples=300, epochs=1))


def test_convnet_embedding_is_per_image():
    """Instance norm, no batch statistics: an image's embedding does not depend on its batch."""
    torch.manual_seed(0)
    net = ConvNet(1, (8, 8), 10, width=8, depth=2)
    a = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(net.embed(a)[:2], net.embed(a[:2]))
