"""PNG plots of test accuracy against wall time and against bytes received, runs overlaid."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["plot_runs"]

_PANELS = (
    ("wall_s", "wall time (s, training + selection)", "accuracy_vs_time.png", 1.0),
    ("bytes_received", "bytes received (MB)", "accuracy_vs_bytes.png", 1e-6),
)


def plot_runs(runs: Mapping[str, Sequence[dict]], out_dir: Path | str, *, title: str = "") -> list[Path]:
    """One PNG per x-axis (time, bytes), each with every run's accuracy curve; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    usable = {name: [r for r in recs if r.get("test_acc") is not None] for name, recs in runs.items()}
    usable = {name: recs for name, recs in usable.items() if recs}
    if not usable:
        raise ValueError("no run has test accuracy to plot (was a test data set given?)")
    paths = []
    for key, xlabel, filename, scale in _PANELS:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
        for name, recs in usable.items():
            xs = [r[key] * scale for r in recs]
            ys = [100.0 * r["test_acc"] for r in recs]
            ax.plot(xs, ys, marker="o", markersize=3, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        if key == "bytes_received":
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = out / filename
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
