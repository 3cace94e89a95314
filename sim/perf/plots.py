"""PNG plots of a scenario sweep (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from .model import Comparison, System
from .params import Scenario

__all__ = ["write_plots"]

_LABEL = {System.FULL: "(a) full data", System.GPU_SELECT: "(b) selection on GPU host", System.NESSA: "(c) NeSSA"}


def write_plots(sc: Scenario, rows: list[Comparison], out: str | Path) -> list[Path]:
    """Write ``<name>-time.png``, ``<name>-bytes.png`` and ``<name>-speedup.png`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drives = [c.drives for c in rows]
    log_x = len(drives) > 1 and max(drives) / min(drives) >= 8
    paths: list[Path] = []

    def finish(fig, ax, name: str, ylabel: str) -> None:
        ax.set_xlabel("SmartSSDs")
        ax.set_ylabel(ylabel)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(drives)
        ax.set_xticklabels([str(d) for d in drives])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{sc.name}: {ylabel}", fontsize=10)
        fig.tight_layout()
        p = out / f"{sc.name}-{name}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in System:
        ax.plot(drives, [c.results[s].epoch_s for c in rows], marker="o", label=_LABEL[s])
    ax.set_yscale("log")
    finish(fig, ax, "time", "seconds per epoch (amortised)")

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in System:
        ax.plot(drives, [c.results[s].bytes["network"] + c.results[s].bytes["control"] for c in rows], marker="o", label=_LABEL[s] + ": network")
    ax.plot(drives, [c.results[System.NESSA].bytes["p2p"] for c in rows], ls="--", label="(c) NeSSA: P2P inside the drives")
    ax.set_yscale("log")
    finish(fig, ax, "bytes", "bytes moved per epoch")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(drives, [c.speedup(System.FULL) for c in rows], marker="o", label="NeSSA over (a) full data")
    ax.plot(drives, [c.speedup(System.GPU_SELECT) for c in rows], marker="s", label="NeSSA over (b) GPU-host selection")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    finish(fig, ax, "speedup", "speed-up of NeSSA (x)")
    return paths
