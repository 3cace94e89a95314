"""Statistics for bench/tta.py: paired-seed means with 95 % t intervals, paired differences
against ``random``, time-to-accuracy from per-epoch curves, the markdown table and the plot."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from trainer.metrics import time_to_accuracy as time_to

__all__ = ["mean_ci", "paired", "time_to", "summarize", "table", "plot"]

# Two-sided 95 % quantiles of Student's t (df 1..30); scipy is not a dependency.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t interval (nan for fewer than two values)."""
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    m = sum(xs) / n
    if n < 2:
        return m, math.nan
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m, _T95[min(n - 1, len(_T95)) - 1] * sd / math.sqrt(n)


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """Mean and 95 % half-width of ``a[s] - b[s]`` over the seeds both have, and their count."""
    seeds = sorted(set(a) & set(b))
    m, h = mean_ci([a[s] - b[s] for s in seeds])
    return m, h, len(seeds)


def _selections(curve: Sequence[dict]) -> int:
    """Selections a run asked for (rounds for mini-batch strategies, subsets for the others)."""
    rounds = sum(int(r.get("rounds") or 0) for r in curve)
    if rounds:
        return rounds
    return len({r["selection"] for r in curve if r.get("selection") not in (None, "full")})


def summarize(runs: list[dict]) -> dict:
    """Group runs by (arm, budget) -> per-seed finals and curves; full's targets per seed."""
    by: dict[tuple[str, float], dict[int, dict]] = defaultdict(dict)
    for run in runs:
        by[(run["arm"], run["budget"])][run["seed"]] = run
    return by


def table(runs: list[dict], *, points: Sequence[float] = (1.0, 2.0)) -> tuple[str, list[str]]:
    """The markdown table and the goal lines."""
    by = summarize(runs)
    full = by.get(("full", 1.0), {})
    if not full:
        raise ValueError("no full-data runs: time-to-accuracy needs them")
    full_acc = {s: r["curve"][-1]["test_acc"] for s, r in full.items()}
    full_epoch_cpu = mean_ci([r["curve"][-1]["cpu_s"] / len(r["curve"]) for r in full.values()])[0]
    header = ("| arm | budget | seeds | test acc (%) | vs random (points, paired) | trainer CPU (s) | "
              "trainer wall (s) | waits for selection (% of wall) | storage s per selection | "
              "per selection / full epoch | " + " | ".join(f"CPU to full−{p:g} (s) | speed-up vs full" for p in points)
              + " | MB received |")
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    goals = []
    order = sorted(by, key=lambda k: (k[1] != 1.0, k[1], k[0] != "random", k[0]))
    for arm, budget in order:
        seeds = by[(arm, budget)]
        accs = {s: 100 * r["curve"][-1]["test_acc"] for s, r in seeds.items()}
        m, h = mean_ci(list(accs.values()))
        rnd = by.get(("random", budget), {})
        if arm not in ("random", "full") and rnd:
            d, dh, n = paired(accs, {s: 100 * r["curve"][-1]["test_acc"] for s, r in rnd.items()})
            vs = f"{d:+.2f} ± {dh:.2f} (n={n})"
        else:
            vs = "—"
        cpu = mean_ci([r["curve"][-1]["cpu_s"] for r in seeds.values()])[0]
        wall = mean_ci([r["curve"][-1]["wall_s"] for r in seeds.values()])[0]
        wait = mean_ci([100 * r["curve"][-1]["selection_s"] / max(r["curve"][-1]["wall_s"], 1e-9)
                        for r in seeds.values()])[0]
        per_sel = [r["curve"][-1].get("storage_s", 0.0) / _selections(r["curve"]) for r in seeds.values()
                   if _selections(r["curve"])]
        ps = mean_ci(per_sel)[0] if per_sel else math.nan
        cells = []
        for p in points:
            t = [time_to(r["curve"], full_acc[s] - p / 100, "cpu_s") for s, r in seeds.items() if s in full_acc]
            f = [time_to(full[s]["curve"], full_acc[s] - p / 100, "cpu_s") for s in seeds if s in full]
            reached = [x for x in t if math.isfinite(x)]
            tm = sum(reached) / len(reached) if len(reached) == len(t) and t else math.inf
            fm = sum(f) / len(f) if f else math.nan
            cells += [f"{tm:.1f}" if math.isfinite(tm) else f"not reached ({len(reached)}/{len(t)})",
                      f"{fm / tm:.2f}x" if math.isfinite(tm) and tm > 0 else "—"]
        mb = mean_ci([r["curve"][-1]["bytes_received"] / 1e6 for r in seeds.values()])[0]
        lines.append(f"| {arm} | {budget:g} | {len(seeds)} | {m:.2f} ± {h:.2f} | {vs} | {cpu:.1f} | {wall:.1f} | "
                     f"{wait:.2f} | {ps:.3f} | {ps / full_epoch_cpu:.4f} | " + " | ".join(cells) + f" | {mb:.1f} |")
    best = None
    for (arm, budget), seeds in by.items():
        if budget == 0.1 and arm not in ("random", "full") and by.get(("random", 0.1)):
            d, dh, n = paired({s: 100 * r["curve"][-1]["test_acc"] for s, r in seeds.items()},
                              {s: 100 * r["curve"][-1]["test_acc"] for s, r in by[("random", 0.1)].items()})
            if best is None or d > best[1]:
                best = (arm, d, dh, n)
    if best:
        arm, d, dh, n = best
        met = d >= 1.0 and d - dh > 0
        goals.append(f"- best at 10 % of full's steps: {arm}, {d:+.2f} ± {dh:.2f} points vs random over {n} paired seeds "
                     f"(goal ≥ +1.0 with the CI excluding 0: {'met' if met else 'NOT met'}).")
    return "\n".join(lines), goals


def plot(runs: list[dict], path: Path, *, budget: float, title: str) -> Path:
    """Accuracy against cumulative trainer CPU seconds: mean per epoch over seeds, CI band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = summarize(runs)
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    for (arm, b), seeds in sorted(by.items()):
        if b not in (budget, 1.0):
            continue
        curves = [r["curve"] for r in seeds.values()]
        n = min(len(c) for c in curves)
        xs = [mean_ci([c[i]["cpu_s"] for c in curves])[0] for i in range(n)]
        stats = [mean_ci([100 * c[i]["test_acc"] for c in curves]) for i in range(n)]
        ys = [s[0] for s in stats]
        line, = ax.plot(xs, ys, marker="o", markersize=3, label=f"{arm}" if b != 1.0 else "full")
        if len(curves) > 1:
            ax.fill_between(xs, [y - s[1] for y, s in zip(ys, stats)], [y + s[1] for y, s in zip(ys, stats)],
                            color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("trainer CPU seconds (training only, log)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
