"""Augmentation in the training loop (digits over loopback gRPC): every batch augmented, or
augmented copies of a subset the storage service picks every R epochs; bad options named."""

from __future__ import annotations

import pytest

from trainer.config import ConfigError, TrainConfig
from trainer.loop import train


def config(target, tmp_path, **kw) -> TrainConfig:
    base = dict(servers=target, dataset="digits/train", test_dataset="digits/test", epochs=3, batch_size=32,
                lr=0.05, progress=False, threads=1, out_dir=tmp_path)
    base.update(kw)
    return TrainConfig(**base)


def test_full_augmentation_trains_on_the_streamed_rows_only(service, tmp_path):
    target, store = service
    recs = train(config(target, tmp_path, augment="crop,cutout", epochs=3)).records
    n = len(store)
    assert [r["samples_seen"] for r in recs] == [n, 2 * n, 3 * n]
    assert recs[-1]["test_acc"] > 0.6 and recs[-1]["model_bytes"] == 0


@pytest.fixture(scope="module")
def plain(service, tmp_path_factory):
    """The same run without augmentation (what the subset runs add to)."""
    return train(config(service[0], tmp_path_factory.mktemp("plain"), epochs=3)).records


@pytest.mark.parametrize("kind,pushes", [("coreset", True), ("random", False), ("max-loss", True)])
def test_subset_copies_are_added_and_repicked_every_r_epochs(service, plain, tmp_path, kind, pushes):
    target, store = service
    n = len(store)
    recs = train(config(target, tmp_path / kind, augment="crop,randaugment", augment_subset=f"{kind}:0.2",
                        augment_every=2, epochs=3)).records
    # each epoch: the n streamed rows plus about 0.2 n augmented subset rows (rounded per batch)
    extra = [b["samples_seen"] - a["samples_seen"] - (recs[i - 1]["samples_seen"] - plain[i - 1]["samples_seen"] if i else 0)
             for i, (a, b) in enumerate(zip(plain, recs))]
    assert all(0.15 * n <= e <= 0.3 * n for e in extra), extra
    # the subset is picked at epochs 0 and 2: two more streams of ~0.2 n rows, two model pushes if it needs a model
    assert recs[-1]["bytes_received"] - plain[-1]["bytes_received"] >= 2 * 0.19 * n * 64
    assert (recs[-1]["model_bytes"] > 0) == pushes
    assert recs[-1]["test_acc"] > 0.6


@pytest.mark.parametrize("strategy,fraction", [("full", 1.0), ("craig", 0.3), ("random", 0.3)])
def test_selected_trains_on_the_streamed_rows_and_a_copy_of_each(service, tmp_path, strategy, fraction):
    """``--augment-subset selected``: the reference's coreset + its augmentations (or, on full
    data, full augmentation as the paper counts it): every streamed row twice, nothing picked
    for the copies (no extra stream, no extra selection)."""
    target, store = service
    kw = dict(strategy=strategy, fraction=fraction, reselect_every=2)
    base = train(config(target, tmp_path / "base", epochs=3, **kw)).records
    recs = train(config(target, tmp_path / "sel", augment="crop,randaugment", augment_main="crop",
                        augment_subset="selected", epochs=3, **kw)).records
    assert [r["samples_seen"] for r in recs] == [2 * r["samples_seen"] for r in base]
    assert [r["bytes_received"] for r in recs] == [r["bytes_received"] for r in base]
    assert [r["model_bytes"] for r in recs] == [r["model_bytes"] for r in base]
    assert recs[-1]["samples_seen"] <= 3 * 2 * (fraction * len(store) + 10)
    assert recs[-1]["test_acc"] > (0.6 if strategy == "full" else 0.4)


@pytest.mark.parametrize("kw,message", [
    (dict(augment="crop,blur"), "--augment: unknown augmentation 'blur'"),
    (dict(augment="flip", augment_subset="selected", augment_main="crop,blur"), "--augment-main: unknown augmentation 'blur'"),
    (dict(augment="flip", augment_main="crop"), "--augment-main: augments the streamed rows beside --augment-subset"),
    (dict(augment="flip", augment_subset="selected:0.5"), "'selected' copies every streamed row"),
    (dict(augment_subset="coreset:0.2"), "--augment-subset: needs --augment"),
    (dict(augment="flip", augment_subset="herding:0.2"), "--augment-subset: unknown kind 'herding'"),
    (dict(augment="flip", augment_subset="coreset"), "--augment-subset: fraction must be in"),
    (dict(augment="flip", augment_subset="random:1.5"), "--augment-subset: fraction must be in"),
    (dict(augment="flip", augment_every=0), "--augment-every"),
])
def test_bad_augment_options_named(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(servers="127.0.0.1:1", dataset="d", **kw)
