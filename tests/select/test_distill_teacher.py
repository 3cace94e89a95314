"""Soft labels (host.distill.teacher) and the random control method, on real 8x8 digits."""

from __future__ import annotations

import numpy as np
import pytest

from host.distill import DistillConfig, Distiller


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/select/conftest.py


def _cfg(**kw) -> DistillConfig:
    base = dict(method="random", stages=1, ipc=3, width=8, depth=2, labels="soft", teacher_epochs=30, teacher_width=8)
    base.update(kw)
    return DistillConfig(**base)


def test_random_method_draws_real_images_of_each_class(digits):
    x, y = digits
    imgs, labs = Distiller(x, y, (8, 8), 10, _cfg(seed=4)).run_stage(1)
    assert imgs.shape == (30, 8, 8) and imgs.dtype == np.float32
    np.testing.assert_array_equal(labs, np.repeat(np.arange(10), 3))
    real = x.reshape(len(x), -1).astype(np.float32) / 255
    for img, c in zip(imgs.reshape(30, -1), labs):  # each is one of its class's real images, unmoved
        dist = np.abs(real - img).max(axis=1)
        assert dist.min() < 1e-5 and y[int(dist.argmin())] == c
    again, _ = Distiller(x, y, (8, 8), 10, _cfg(seed=4)).run_stage(1)
    other, _ = Distiller(x, y, (8, 8), 10, _cfg(seed=5)).run_stage(1)
    np.testing.assert_array_equal(imgs, again)
    assert not np.array_equal(imgs, other)


def test_soft_labels_are_the_teachers_tempered_probabilities(digits):
    x, y = digits
    dist = Distiller(x, y, (8, 8), 10, _cfg())
    imgs, labs = dist.run_stage(1)
    q = dist.soft_labels(imgs)
    assert q.shape == (30, 10) and q.dtype == np.float32 and dist.teacher_cpu_s > 0
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
    assert (q.argmax(axis=1) == labs).mean() >= 0.8  # a teacher that learned the digits
    assert (q.max(axis=1) < 0.999).all()  # soft: mass off the top class
    # Same options, new process state: the same teacher (deterministic in the seed).
    np.testing.assert_allclose(Distiller(x, y, (8, 8), 10, _cfg()).soft_labels(imgs), q, atol=1e-6)
    # A hotter softmax spreads the mass: higher entropy for every image.
    hot = Distiller(x, y, (8, 8), 10, _cfg(label_temperature=8.0)).soft_labels(imgs)

    def entropy(p):
        return -(p * np.log(p + 1e-12)).sum(axis=1)

    assert (entropy(hot) > entropy(q)).all()
