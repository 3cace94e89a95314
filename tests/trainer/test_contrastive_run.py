"""``nessa train --objective simclr`` end to end over a loopback storage service (digits):
step-matched subset streaming, linear probe on the test split, metrics, pushed model; bad
contrastive options fail by name before any server is contacted."""

from __future__ import annotations

import json

import pytest

from nessa.cli import main


def _args(target, out, *extra):
    return ["train", "--server", target, "--dataset", "digits/train", "--test-dataset", "digits/test",
            "--batch-size", "64", "--threads", "1", "--out-dir", str(out), "--no-progress", "--objective", "simclr",
            "--probe-samples", "600", *extra]


def test_simclr_random_subset_streams_step_matched_and_probes(service, tmp_path, capsys):
    target, store = service
    assert main(_args(target, tmp_path, "--strategy", "random", "--fraction", "0.5", "--epochs", "2",
                      "--lr", "0.003", "--push-version", "7")) == 0
    out = capsys.readouterr().out
    assert "random@0.5 (simclr)" in out and "linear_probe accuracy" in out
    (rec,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    n = len(store)
    assert rec["steps"] == 2 * (n // 64)  # full data's steps although half the data streams
    assert rec["epoch"] >= 3  # so the half subset was streamed about twice as often
    assert rec["objective"] == "simclr" and rec["selection"] == "random"
    assert rec["test_acc"] > 0.5  # chance is 0.1
    assert (tmp_path / "model.pt").is_file()
    assert rec["pushed_version"] == 7  # the service checked and kept the simclr_cnn state


@pytest.mark.parametrize("extra, message", [
    (["--objective", "byol"], "--objective"),
    (["--strategy", "craig"], "--strategy"),
    (["--strategy", "sas", "--fraction", "0.5"], "--embedding-column"),
    (["--strategy", "clipcov", "--fraction", "0.5", "--embedding-column", "emb/image"], "--text-embedding-column"),
    (["--batch-size", "1"], "--batch-size"),
    (["--temperature", "0"], "--temperature"),
])
def test_bad_contrastive_options_name_the_option(tmp_path, capsys, extra, message):
    assert main(_args("127.0.0.1:1", tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err


def test_simclr_on_a_sas_subset_selected_next_to_the_data(service, tmp_path, capsys):
    """--strategy sas: the service selects on an embedding column (no labels), the run streams it."""
    import numpy as np

    from storage_service.columns import write_embedding_column

    target, store = service
    x, _ = store.take(np.arange(len(store)))
    proj = np.random.default_rng(0).standard_normal((x[0].size, 16)).astype(np.float32)
    write_embedding_column(store.path, "emb/proxy", x.reshape(len(x), -1).astype(np.float32) @ proj, overwrite=True)
    assert main(_args(target, tmp_path, "--strategy", "sas", "--fraction", "0.5", "--epochs", "1",
                      "--embedding-column", "emb/proxy", "--latent-classes", "5")) == 0
    assert "sas@0.5 (simclr)" in capsys.readouterr().out
    (rec,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rec["selection"] not in ("full", "random") and rec["steps"] == len(store) // 64
    assert rec["epoch"] == 2  # a half subset: two passes for full data's steps
