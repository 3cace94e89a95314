"""Sweeps, break-even points and the text table ``nessa simulate`` prints."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .model import Comparison, System, simulate
from .params import Scenario, sources

__all__ = ["sweep", "BreakEven", "break_even", "BREAK_EVEN_KNOBS", "format_table", "format_break_even", "format_sources"]


def sweep(sc: Scenario) -> list[Comparison]:
    """One comparison per drive count of the scenario's sweep."""
    return [simulate(sc, d) for d in sc.drive_counts]


def _set(sc: Scenario, path: str, value: float) -> Scenario:
    section, name = path.split(".")
    part = getattr(sc, section)
    cur = getattr(part, name)
    value = int(round(value)) if isinstance(cur, int) else value
    return dataclasses.replace(sc, **{section: dataclasses.replace(part, **{name: value})})


# (path, label, range): NeSSA's speed-up moves monotonically with each of these.
BREAK_EVEN_KNOBS: tuple[tuple[str, str, float, float], ...] = (
    ("dataset.model_macs", "feature MACs/sample on the drive", 1e3, 1e11),
    ("storage.host_nic_bw", "storage-host NIC B/s", 1e8, 1e12),
    ("trainer.train_s_per_sample", "GPU s/sample", 1e-7, 1e-1),
)


@dataclass(frozen=True)
class BreakEven:
    knob: str
    label: str
    over: System
    value: float | None  # where NeSSA's speed-up crosses 1 (None: no crossing in range)
    pays_below: bool | None  # True: NeSSA pays for values below ``value``


def break_even(sc: Scenario, drives: int, knob: str, over: System, lo: float, hi: float) -> BreakEven:
    """Bisect (log scale) the ``knob`` value at which NeSSA's speed-up over ``over`` is 1."""
    base = sc if drives == sc.storage.drives else sc.with_drives(drives)
    label = next((lb for k, lb, _, _ in BREAK_EVEN_KNOBS if k == knob), knob)

    def gain(v: float) -> float:
        return math.log(simulate(_set(base, knob, v)).speedup(over))

    try:
        g_lo, g_hi = gain(lo), gain(hi)
    except ValueError:
        return BreakEven(knob, label, over, None, None)
    if (g_lo > 0) == (g_hi > 0):
        return BreakEven(knob, label, over, None, g_lo > 0)
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        m = (a + b) / 2
        if (gain(math.exp(m)) > 0) == (g_lo > 0):
            a = m
        else:
            b = m
    return BreakEven(knob, label, over, math.exp((a + b) / 2), g_lo > 0)


def _fmt_s(x: float) -> str:
    if x >= 86400:
        return f"{x / 86400:.1f}d"
    if x >= 3600:
        return f"{x / 3600:.1f}h"
    if x >= 60:
        return f"{x / 60:.1f}m"
    if x >= 1:
        return f"{x:.2f}s"
    return f"{x * 1e3:.1f}ms"


def _fmt_b(x: float) -> str:
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.0f}B"


def format_table(sc: Scenario, rows: list[Comparison]) -> str:
    """The per-drive-count comparison, one line per drive count."""
    head = (
        "drives", "hosts", "full s/ep", "gpu-sel s/ep", "nessa s/ep", "nessa select", "select bound",
        "x full", "x gpu-sel", "net full", "net gpu-sel", "net nessa", "kJ/ep full", "kJ/ep nessa", "note",
    )
    lines = []
    for c in rows:
        r = c.results
        nes = r[System.NESSA]
        bound = max(nes.select_stages, key=nes.select_stages.get) if nes.select_stages else "-"
        cap = sc.with_drives(c.drives).over_capacity
        lines.append((
            str(c.drives), str(c.storage_hosts),
            _fmt_s(r[System.FULL].epoch_s), _fmt_s(r[System.GPU_SELECT].epoch_s), _fmt_s(nes.epoch_s),
            _fmt_s(nes.select_s), bound,
            f"{c.speedup(System.FULL):.2f}", f"{c.speedup(System.GPU_SELECT):.2f}",
            _fmt_b(r[System.FULL].bytes["network"]), _fmt_b(r[System.GPU_SELECT].bytes["network"]),
            _fmt_b(nes.bytes["network"] + nes.bytes["control"]),
            f"{r[System.FULL].energy_j / 1e3:.3g}", f"{nes.energy_j / 1e3:.3g}",
            "over capacity" if cap else "",
        ))
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(head)]
    out = [f"# {sc.name}: {sc.description}",
           f"# fraction {sc.selection.fraction}, reselect every {sc.selection.reselect_every} epochs, "
           f"{sc.selection.optimizer.value} greedy, NeSSA engine {sc.engine.value}; s/ep = seconds per epoch (amortised)"]
    out.append("  ".join(h.rjust(w) for h, w in zip(head, widths)).rstrip())
    out.extend("  ".join(v.rjust(w) for v, w in zip(row, widths)).rstrip() for row in lines)
    return "\n".join(out)


def format_break_even(sc: Scenario, drives: int) -> str:
    """Where NeSSA stops paying, knob by knob, at ``drives`` drives."""
    out = [f"# where NeSSA stops paying ({sc.name}, {drives} drives; other inputs as above)"]
    for knob, label, lo, hi in BREAK_EVEN_KNOBS:
        cur = getattr(getattr(sc, knob.split(".")[0]), knob.split(".")[1])
        for over in (System.FULL, System.GPU_SELECT):
            be = break_even(sc, drives, knob, over, lo, hi)
            if be.value is None:
                verdict = "pays across the whole range" if be.pays_below else "never pays in range"
                out.append(f"  vs {over.value:10s} {label}: {verdict} [{lo:.3g}, {hi:.3g}] (now {cur:.3g})")
            else:
                side = "below" if be.pays_below else "above"
                out.append(f"  vs {over.value:10s} {label}: pays {side} {be.value:.3g} (now {cur:.3g})")
    return "\n".join(out)


def format_sources(sc: Scenario) -> str:
    rows = [(n, f"{v.value if hasattr(v, 'value') else v:.6g}" if not isinstance(v, str) and not hasattr(v, "value") else str(getattr(v, "value", v)), u, s)
            for n, v, u, s in sources(sc)]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    return "\n".join(f"{n:<{w0}}  {v:>{w1}}  {u:<{w2}}  {s}" for n, v, u, s in rows)
