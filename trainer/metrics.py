"""Per-epoch metrics as JSON lines (one object per line, appended as each epoch ends).

Record schema, format 1 (every key always present):

    format          1
    run             run label, e.g. "nessa-pa@0.1"
    strategy        a host.strategies name (full, random, craig, nessa-pa, crest, nessa-ss)
    fraction        per-class budget (1.0 for full)
    epoch           1-based epoch just finished
    lr              learning rate at the end of the epoch
    train_loss      mean (weighted) training loss over the epoch
    test_loss       mean cross-entropy on the test set (null without a test set or between --eval-every epochs)
    test_acc        test accuracy in [0, 1] (null without a test set)
    wall_s          cumulative seconds spent training + selecting (evaluation excluded)
    cpu_s           cumulative CPU seconds of the trainer process(es) in that same time (an in-process
                    storage service, as in the demo and bench, is included): steadier than wall time
                    on a shared machine
    selection_s     cumulative trainer seconds spent pushing models and waiting for selections (a
                    selection computed in the background while the trainer trains costs nothing here)
    storage_s       cumulative seconds the storage hosts spent computing the selections (features +
                    greedy): the storage side's compute, apart from the trainer's
    forwarded       cumulative samples the storage hosts forwarded through the model for selection
    rounds          mini-batch strategies: selections (rounds) taken this epoch; null otherwise
    mean_hold       mini-batch strategies: mean steps each round was trained for (CREST adapts it)
    dropped         examples excluded as learned at the epoch's last selection (null if none asked)
    eval_s          cumulative seconds spent evaluating
    bytes_received  cumulative training bytes streamed from the storage services
    eval_bytes      cumulative test-set bytes streamed
    model_bytes     cumulative model bytes pushed to the storage services
    samples_seen    cumulative training samples (all ranks)
    num_selected    samples in the epoch's selection (all servers)
    selection       selection id(s) streamed this epoch, comma-separated ("full" for all data)
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["FORMAT", "FIELDS", "MetricsWriter", "read_metrics", "time_to_accuracy"]

FORMAT = 1
FIELDS = ("format", "run", "strategy", "fraction", "epoch", "lr", "train_loss", "test_loss", "test_acc",
          "wall_s", "cpu_s", "selection_s", "storage_s", "forwarded", "eval_s", "bytes_received", "eval_bytes", "model_bytes", "samples_seen",
          "num_selected", "selection")


class MetricsWriter:
    """Append records to ``path`` (created with its folder); ``None`` keeps them in memory only."""

    def __init__(self, path: Path | None, *, truncate: bool = True):
        self.path = Path(path) if path is not None else None
        self.records: list[dict] = []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if truncate or not self.path.exists():
                self.path.write_text("")
            else:
                self.records = read_metrics(self.path)

    def write(self, record: dict) -> dict:
        rec = {"format": FORMAT, **record}
        missing = [k for k in FIELDS if k not in rec]
        if missing:
            raise ValueError(f"metrics record lacks {', '.join(missing)}")
        self.records.append(rec)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(rec, sort_keys=False) + "\n")
        return rec

    def truncate_after(self, epoch: int) -> None:
        """Drop records after ``epoch`` (a resumed run writes those epochs again)."""
        self.records = [r for r in self.records if r["epoch"] <= epoch]
        if self.path is not None:
            self.path.write_text("".join(json.dumps(r) + "\n" for r in self.records))


def read_metrics(path: Path | str) -> list[dict]:
    """Records of a metrics file, checked for a known format."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("format") != FORMAT:
            raise ValueError(f"{path}:{n}: metrics format {rec.get('format')!r}, expected {FORMAT}")
        out.append(rec)
    return out



def time_to_accuracy(records: list[dict], target: float, key: str = "cpu_s") -> float:
    """``key`` (a cumulative counter, e.g. trainer CPU seconds) when the run first reached
    ``target`` test accuracy, interpolated inside the epoch that crossed it; inf if never."""
    prev_acc, prev_x = None, 0.0
    for r in records:
        acc, x = r.get("test_acc"), float(r[key])
        if acc is None:
            continue
        if acc >= target:
            if prev_acc is None or acc == prev_acc:
                return x
            return prev_x + (x - prev_x) * (target - prev_acc) / (acc - prev_acc)
        prev_acc, prev_x = acc, x
    return float("inf")
