"""Metrics JSON lines, PNG plots and checkpoint files."""

from __future__ import annotations

import json

import pytest
import torch

from trainer.checkpoint import CheckpointMismatch, load_checkpoint, save_checkpoint
from trainer.metrics import FIELDS, MetricsWriter, read_metrics
from trainer.plots import plot_runs


def record(epoch: int, acc: float | None, **kw) -> dict:
    rec = {k: 0 for k in FIELDS if k != "format"}
    rec.update(run="r", strategy="full", fraction=1.0, epoch=epoch, test_acc=acc, selection="full",
               wall_s=float(epoch), bytes_received=1000 * epoch)
    rec.update(kw)
    return rec


def test_writer_appends_lines_and_resume_truncates(tmp_path):
    path = tmp_path / "m" / "metrics.jsonl"
    w = MetricsWriter(path)
    for e in (1, 2, 3):
        w.write(record(e, 0.5 + e / 10))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["format"] == 1
    assert read_metrics(path) == w.records
    again = MetricsWriter(path, truncate=False)
    again.truncate_after(2)
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2]
    with pytest.raises(ValueError, match="lacks"):
        w.write({"epoch": 1})
    path.write_text(json.dumps({"format": 7}) + "\n")
    with pytest.raises(ValueError, match="format 7"):
        read_metrics(path)


def test_plots_are_pngs_with_every_run(tmp_path):
    runs = {"full": [record(e, 0.8 + e / 100) for e in (1, 2, 3)],
            "nessa@0.1": [record(e, 0.7 + e / 50, wall_s=e / 3, bytes_received=100 * e) for e in (1, 2, 3)]}
    paths = plot_runs(runs, tmp_path, title="t")
    assert [p.name for p in paths] == ["accuracy_vs_time.png", "accuracy_vs_bytes.png"]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(ValueError, match="no run has test accuracy"):
        plot_runs({"x": [record(1, None)]}, tmp_path)


def test_checkpoint_round_trip_is_atomic_and_checked(tmp_path):
    path = tmp_path / "c.pt"
    state = {"epoch": 2, "step": 5, "model": {"w": torch.arange(4.0)}, "identity": {"strategy": "nessa"}}
    save_checkpoint(path, state)
    assert not (tmp_path / "c.pt.tmp").exists()
    back = load_checkpoint(path, identity={"strategy": "nessa"})
    assert back["epoch"] == 2 and torch.equal(back["model"]["w"], torch.arange(4.0))
    with pytest.raises(CheckpointMismatch, match="strategy='nessa'"):
        load_checkpoint(path, identity={"strategy": "random"})


def test_time_to_accuracy_interpolates_inside_the_crossing_epoch():
    from trainer.metrics import time_to_accuracy

    recs = [record(1, 0.80, cpu_s=10.0), record(2, None, cpu_s=20.0), record(3, 0.90, cpu_s=30.0)]
    assert time_to_accuracy(recs, 0.80) == 10.0  # reached at the first evaluation
    assert time_to_accuracy(recs, 0.85) == pytest.approx(20.0)  # half-way from 10 s to 30 s
    assert time_to_accuracy(recs, 0.95) == float("inf")
