"""Per-view labels (host.distill.views): the teacher's label of exactly the view a trainer draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.augment import Augmenter, augment_config, parse_augment
from host.distill import DistillConfig, DistillError, Distiller, ViewSpec, seed_of_column, view_label_column

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/select/conftest.py


def _cfg(**kw) -> DistillConfig:
    base = dict(method="random", stages=1, ipc=3, width=8, depth=2, labels="views", teacher_epochs=30, teacher_width=8,
                view_epochs=5, view_seeds=(4,), view_augment="flip,crop")
    base.update(kw)
    return DistillConfig(**base)


def test_spec_round_trips_through_the_column_source():
    spec = ViewSpec(300, 10, 2.0, ("flip", "crop"))
    assert spec.augment == ("crop", "flip") and spec.width == 3000
    assert ViewSpec.parse(spec.source()) == spec
    with pytest.raises(ValueError, match="version 2"):
        ViewSpec.parse(spec.source().replace("/1 ", "/2 "))
    with pytest.raises(ValueError, match="not a view-label column"):
        ViewSpec.parse("distill-teacher")
    assert seed_of_column(view_label_column(17)) == 17 and seed_of_column("emb/soft-labels") is None


def test_each_label_is_the_teachers_on_the_trainers_view(digits):
    x, y = digits
    dist = Distiller(x, y, (8, 8), 10, _cfg())
    imgs, _ = dist.run_stage(1)
    ids = np.arange(100, 130)  # the rows' ids in the stage data set
    q = dist.view_labels(imgs, ids, seed=4)
    assert q.shape == (30, 5 * 10) and q.dtype == np.float16
    q = q.astype(np.float32).reshape(30, 5, 10)
    np.testing.assert_allclose(q.sum(axis=2), 1.0, atol=3e-3)

    # What the trainer does with the streamed float images (trainer.augment_subset.BatchAugment):
    # the same transforms, sized from the --augment names and the sample shape, keyed by id.
    trainer_aug = Augmenter(augment_config(parse_augment("crop,flip"), (8, 8)))
    teacher = dist._trained_teacher()
    for epoch in range(5):
        view = trainer_aug(torch.from_numpy(imgs).unsqueeze(1), ids, epoch=epoch, seed=4)
        with torch.no_grad():
            want = torch.softmax(teacher((view - dist.mean) / dist.std) / 2.0, dim=1).numpy()
        np.testing.assert_allclose(q[:, epoch], want, atol=2e-3)
    # Views differ from epoch to epoch, and so do their labels; the unaugmented label is not them.
    assert np.abs(q[:, 0] - q[:, 1]).max() > 1e-2
    assert np.abs(q[:, 0] - dist.soft_labels(imgs)).max() > 1e-2
    # Another training seed draws other views: other labels.
    assert np.abs(dist.view_labels(imgs, ids, seed=5).astype(np.float32).reshape(30, 5, 10) - q).max() > 1e-2


@pytest.mark.parametrize("kw, text", [
    (dict(view_epochs=0), "--view-epochs: must be an integer in [1, 10000]"),
    (dict(view_seeds=()), "--view-seeds: 1 to 16 training seeds"),
    (dict(view_seeds="a,b"), "--view-seeds: a comma list"),
    (dict(view_augment="crop,twirl"), "--view-augment: unknown augmentation 'twirl'"),
    (dict(view_augment=""), "--view-augment: per-view labels need an augmentation"),
    (dict(view_augment="crop,randaugment"), "--view-augment: randaugment needs uint8 images"),
    (dict(labels="soft"), "per-view labels need --labels views"),
])
def test_bad_view_options_are_named(kw, text):
    with pytest.raises(DistillError) as err:
        _cfg(**kw)
    assert text in str(err.value)


def test_view_seeds_from_the_cli_text():
    assert _cfg(view_seeds="0, 2,0").view_seeds == (0, 2)
    assert _cfg(view_augment="flip,crop").view_augment == "crop,flip"
    assert _cfg().summary()["view_seeds"] == [4]  # JSON-ready: compared with manifests on resume
