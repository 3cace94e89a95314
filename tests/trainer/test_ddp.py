"""A 2-process torchrun (gloo) run of ``nessa train`` against a live storage service."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path


from trainer.checkpoint import load_checkpoint
from trainer.metrics import read_metrics

REPO = Path(__file__).resolve().parents[2]


def test_two_rank_gloo_epochs_with_reselection(service, tmp_path):
    target, store = service
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "nessa", "train", "--server", target, "--dataset", "digits/train",
           "--test-dataset", "digits/test", "--strategy", "nessa", "--fraction", "0.2", "--epochs", "2",
           "--reselect-every", "1", "--batch-size", "32", "--device", "cpu", "--out-dir", str(out), "--no-progress",
           "--warm-start", "0", "--no-overlap-selection"]  # the synchronous reselection path under DDP
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = read_metrics(out / "metrics.jsonl")  # written by rank 0 only: one line per epoch
    assert [r["epoch"] for r in recs] == [1, 2]
    k = sum(math.ceil(0.2 * n - 1e-9) for n in store.manifest.class_counts)
    assert all(r["num_selected"] == k for r in recs)
    # Each rank streams its half; both ranks take floor(k / 2) so their all-reduces stay in step.
    assert recs[-1]["samples_seen"] == 2 * 2 * (k // 2)
    assert recs[0]["selection"] != recs[1]["selection"]  # reselected with the epoch-1 model
    assert recs[-1]["test_acc"] is not None and recs[-1]["test_acc"] > 0.1
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["identity"]["world_size"] == 2 and len(ck["offsets"]) == 2
    assert "test accuracy" in proc.stdout


def test_two_rank_stop_mid_epoch_and_resume_matches_the_uninterrupted_run(service, tmp_path):
    target, _ = service
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "nessa", "train", "--server", target, "--dataset", "digits/train",
            "--test-dataset", "digits/test", "--strategy", "random", "--fraction", "0.5", "--epochs", "3",
            "--reselect-every", "2", "--batch-size", "16", "--device", "cpu", "--no-progress"]

    def run(*extra):
        proc = subprocess.run(base + list(extra), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    run("--out-dir", str(tmp_path / "straight"))
    run("--out-dir", str(tmp_path / "split"), "--max-steps", "30")  # ~23 steps an epoch per rank
    ck = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert ck["epoch"] == 1 and ck["step"] > 0 and all(o[0] > 0 for o in ck["offsets"])  # both ranks' offsets
    run("--out-dir", str(tmp_path / "split"), "--resume")
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    split = read_metrics(tmp_path / "split" / "metrics.jsonl")
    key = lambda r: (r["epoch"], r["test_acc"], r["test_loss"], r["samples_seen"], r["selection"])  # noqa: E731
    assert [key(r) for r in split] == [key(r) for r in straight]
