"""The training loop against a live storage service (digits, loopback gRPC, real training)."""

from __future__ import annotations

import math

import pytest
import torch

from storage_service.store import Store
from trainer.checkpoint import CheckpointMismatch, load_checkpoint
from trainer.config import TrainConfig
from trainer.loop import train
from trainer.metrics import FIELDS, read_metrics


def config(target, tmp_path, **kw) -> TrainConfig:
    base = dict(servers=target, dataset="digits/train", test_dataset="digits/test", epochs=3, batch_size=32,
                lr=0.05, progress=False, threads=1, out_dir=tmp_path)
    base.update(kw)
    return TrainConfig(**base)


def budget(store: Store, fraction: float) -> int:
    return sum(math.ceil(fraction * n - 1e-9) for n in store.manifest.class_counts)


def test_full_data_learns_and_writes_metrics(service, tmp_path):
    target, store = service
    result = train(config(target, tmp_path, epochs=4))
    recs = read_metrics(tmp_path / "metrics.jsonl")
    assert recs == result.records and [r["epoch"] for r in recs] == [1, 2, 3, 4]
    assert all(set(FIELDS) <= set(r) for r in recs)
    assert recs[-1]["test_acc"] > 0.85  # digits, small CNN, 4 epochs
    n = len(store)
    assert [r["samples_seen"] for r in recs] == [n, 2 * n, 3 * n, 4 * n]
    assert all(r["selection"] == "full" and r["num_selected"] == n and r["model_bytes"] == 0 for r in recs)
    assert 4 * n * 64 <= recs[-1]["bytes_received"] < 4 * n * 64 * 1.5  # samples plus Arrow framing
    assert recs[-1]["wall_s"] > recs[0]["wall_s"] > 0 and recs[-1]["eval_bytes"] > 0
    assert (tmp_path / "checkpoint.pt").is_file()


def test_nessa_pushes_model_reselects_and_streams_only_the_subset(service, tmp_path):
    target, store = service
    result = train(config(target, tmp_path, strategy="nessa", fraction=0.1, epochs=4, reselect_every=2,
                          warmup_epochs=1, overlap_selection=False))
    recs = result.records
    k = budget(store, 0.1)
    assert recs[0]["selection"] == "full" and recs[0]["num_selected"] == len(store)  # warm-up epoch
    assert [r["num_selected"] for r in recs[1:]] == [k, k, k]
    # Reselection after warm-up (epoch 2) and two epochs later (epoch 4), each with a pushed model.
    assert recs[1]["selection"] == recs[2]["selection"] != recs[3]["selection"]
    assert recs[3]["model_bytes"] == 2 * recs[1]["model_bytes"] > 0
    assert recs[3]["selection_s"] > recs[1]["selection_s"] > 0
    streamed = recs[-1]["bytes_received"] - recs[0]["bytes_received"]
    assert 3 * k * 64 <= streamed < 3 * k * 64 * 1.6
    assert recs[-1]["samples_seen"] == len(store) + 3 * k


def test_random_is_resampled_at_every_reselection_with_the_same_budget(service, tmp_path):
    target, store = service
    recs = train(config(target, tmp_path, strategy="random", fraction=0.2, epochs=3, reselect_every=1,
                        eval_every=2, overlap_selection=False)).records
    assert len({r["selection"] for r in recs}) == 3
    assert [r["test_acc"] is None for r in recs] == [True, False, False]  # every 2nd epoch and the last
    assert {r["num_selected"] for r in recs} == {budget(store, 0.2)}
    assert all(r["model_bytes"] == 0 for r in recs)


def test_weights_change_the_loss_but_not_the_data(service, tmp_path):
    target, _ = service
    kw = dict(strategy="nessa", fraction=0.2, epochs=1, seed=3)
    weighted = train(config(target, tmp_path / "w", **kw)).final
    plain = train(config(target, tmp_path / "p", use_weights=False, **kw)).final
    assert weighted["bytes_received"] == plain["bytes_received"]
    assert weighted["train_loss"] != pytest.approx(plain["train_loss"], rel=1e-6)


def test_stop_and_resume_mid_epoch_gives_the_uninterrupted_model(service, tmp_path):
    target, store = service
    # 25-sample batches over a 50% subset (~29 steps an epoch): step 40 lies inside epoch 2.
    kw = dict(strategy="random", fraction=0.5, epochs=3, reselect_every=2, batch_size=25)
    straight = train(config(target, tmp_path / "a", **kw))
    first = train(config(target, tmp_path / "b", max_steps=40, **kw))
    ck = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert ck["epoch"] == 1 and ck["step"] == 40 - math.ceil(budget(store, 0.5) / 25)
    assert 0 < ck["offsets"][0][0] < budget(store, 0.5)
    assert len(first.records) == 1
    resumed = train(config(target, tmp_path / "b", resume=True, **kw))
    assert [r["epoch"] for r in resumed.records] == [1, 2, 3]
    assert [r["selection"] for r in resumed.records] == [r["selection"] for r in straight.records]
    assert resumed.final["samples_seen"] == straight.final["samples_seen"]
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.final["test_acc"] == straight.final["test_acc"]


def test_resume_refuses_a_checkpoint_of_another_run(service, tmp_path):
    target, _ = service
    train(config(target, tmp_path, epochs=1))
    with pytest.raises(CheckpointMismatch, match="strategy"):
        train(config(target, tmp_path, epochs=2, strategy="random", resume=True))
    with pytest.raises(CheckpointMismatch, match="not a trainer checkpoint"):
        torch.save({"format": 99}, tmp_path / "bad.pt")
        load_checkpoint(tmp_path / "bad.pt")


def test_overlapped_selection_takes_over_one_epoch_later(service, tmp_path):
    target, store = service
    recs = train(config(target, tmp_path, strategy="nessa", fraction=0.1, epochs=4, reselect_every=1,
                        overlap_selection=True, warm_start=0)).records
    sels = [r["selection"] for r in recs]
    # Epoch 1 blocks on the first selection; the one requested at the start of epoch e streams from e + 1;
    # none is requested at the last epoch (it would never be used).
    assert sels[0] == sels[1] != sels[2] != sels[3] and len(set(sels)) == 3
    assert recs[-1]["model_bytes"] == 3 * recs[0]["model_bytes"] > 0
    assert {r["num_selected"] for r in recs} == {budget(store, 0.1)}


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"PK\x03\x04truncated"])
def test_unreadable_checkpoint_is_named(tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(CheckpointMismatch, match="not a readable trainer checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
