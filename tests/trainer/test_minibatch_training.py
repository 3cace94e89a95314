"""Mini-batch coreset strategies (nessa-pa, crest) and warm start, trained end to end against a
live storage service (digits, loopback gRPC, real training): step-matched with random, selection
prefetched off the trainer's path, storage-side cost reported apart from the trainer's."""

from __future__ import annotations

import math

import pytest

from trainer.config import ConfigError, TrainConfig
from trainer.loop import train


def config(target, tmp_path, **kw) -> TrainConfig:
    base = dict(servers=target, dataset="digits/train", test_dataset="digits/test", epochs=3, batch_size=16,
                lr=0.05, progress=False, threads=1, out_dir=tmp_path, fraction=0.2, seed=7)
    base.update(kw)
    return TrainConfig(**base)


def steps_of(recs) -> int:
    return recs[-1]["samples_seen"]


def test_nessa_pa_trains_step_matched_with_random_and_reports_both_sides(service, tmp_path):
    target, store = service
    rnd = train(config(target, tmp_path / "r", strategy="random")).records
    pa = train(config(target, tmp_path / "p", strategy="nessa-pa", minibatches=4)).records
    per_epoch = math.ceil(sum(math.ceil(0.2 * n - 1e-9) for n in store.manifest.class_counts) / 16)
    # Same number of steps (warm start included): random's last batch of an epoch may be short.
    # Epochs 2-3 come from rounds of 4 coresets; a round is stretched (its batches cycled) while
    # the next one is still being selected, never past max_hold.
    assert 1 <= sum(r["rounds"] or 0 for r in pa) <= math.ceil(2 * per_epoch / 4)
    assert all(4 <= r["mean_hold"] <= 100 for r in pa if r["rounds"])
    assert pa[-1]["samples_seen"] == 16 * per_epoch * 2 + rnd[0]["samples_seen"]
    assert pa[0]["rounds"] is None and pa[0]["forwarded"] == 0  # epoch 1: the warm start (a random subset, no model)
    assert pa[-1]["storage_s"] > 0 and pa[-1]["forwarded"] > 0 and pa[-1]["model_bytes"] > 0
    # Pools only: far fewer samples forwarded than a whole-data pass per round.
    assert pa[-1]["forwarded"] < sum(r["rounds"] or 0 for r in pa) * len(store)
    assert pa[-1]["test_acc"] > 0.6
    # Bytes are counted once per streamed row, however often a stretched round reuses its coresets.
    rows = sum(r["rounds"] or 0 for r in pa) * 4 * 16 + rnd[0]["samples_seen"]
    assert pa[-1]["bytes_received"] < rows * 64 * 2


def test_crest_holds_a_selection_adaptively(service, tmp_path):
    target, _ = service
    recs = train(config(target, tmp_path, strategy="crest", minibatches=2, pool_size=64, tau=0.05,
                        max_hold=12, warm_start=1)).records
    holds = [r["mean_hold"] for r in recs if r["rounds"]]
    assert holds and all(2 <= h <= 12 for h in holds)  # at least one pass, at most max_hold
    assert recs[-1]["test_acc"] > 0.5


def test_only_the_first_selection_waits(service, tmp_path):
    target, _ = service
    recs = train(config(target, tmp_path, strategy="nessa-pa", minibatches=2, epochs=4, warm_start=0)).records
    waits = [recs[0]["selection_s"]] + [b["selection_s"] - a["selection_s"] for a, b in zip(recs, recs[1:])]
    assert sum(r["rounds"] or 0 for r in recs) > 2
    # Later rounds were computed while training (a late one stretches the current round instead).
    assert max(waits[1:]) < 0.05


@pytest.mark.parametrize("kw, option", [
    (dict(strategy="crest", tau=0), "--tau"),
    (dict(strategy="nessa-pa", pool_size=8), "--pool-size"),
    (dict(strategy="nessa-ss"), "--drop-threshold"),
    (dict(strategy="crest", drop_threshold=-1), "--drop-threshold"),
    (dict(strategy="nessa-pa", fraction=1.5), "--fraction"),
    (dict(strategy="bogus"), "--strategy"),
    (dict(strategy="crest", warm_start=3), "--warm-start"),
])
def test_bad_options_name_the_option(service, tmp_path, kw, option):
    with pytest.raises(ConfigError, match=option):
        config(service[0], tmp_path, **kw)


def test_nessa_ss_drops_learned_examples_across_the_runs_selections(service, tmp_path):
    """Every selection of a run feeds one loss history on the server: with a threshold every loss
    is under and a one-observation window, the second selection already leaves out learned
    examples (never below min_keep)."""
    target, store = service
    recs = train(config(target, tmp_path, strategy="nessa-ss", drop_threshold=50.0, watch=1, min_keep=0.5,
                        epochs=3, warm_start=0, overlap_selection=False)).records
    assert recs[0]["dropped"] == 0  # the first selection has no history yet
    assert 0 < recs[1]["dropped"] <= len(store) // 2
    rnd = train(config(target, tmp_path / "r", strategy="random", epochs=1)).records
    assert rnd[0]["dropped"] is None  # nothing asked to drop
