"""Markdown tables for SIMULATION.md: ``python -m sim.perf.markdown [SCENARIO ...]``.

Prints, per scenario, the results across its drive sweep and the break-even points; then one
inputs table (every input, its value per scenario, unit and source; a scenario-specific
source is given in that scenario's cell).
"""

from __future__ import annotations

import sys

from .model import System
from .params import is_assumption, sources
from .report import BREAK_EVEN_KNOBS, break_even, sweep
from .scenarios import get_scenario

__all__ = ["results_markdown", "inputs_markdown", "main"]


def _num(v) -> str:
    if hasattr(v, "value"):
        return str(v.value)
    if isinstance(v, str):
        return v
    return f"{v:.4g}"


def results_markdown(name: str) -> str:
    sc = get_scenario(name)
    rows = sweep(sc)
    out = [f"### {name}: {sc.description}", "",
           "| drives | hosts | (a) full s/epoch | (b) GPU-host s/epoch | (c) NeSSA s/epoch | NeSSA selection s | selection bound by | NeSSA vs (a) | NeSSA vs (b) | network GB/epoch (a) / (b) / (c) | P2P GB/epoch (c) | kJ/epoch (a) / (c) |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in rows:
        r = c.results
        nes = r[System.NESSA]
        bound = max(nes.select_stages, key=nes.select_stages.get)
        cap = " (over capacity)" if sc.with_drives(c.drives).over_capacity else ""
        net = " / ".join(f"{(r[s].bytes['network'] + r[s].bytes['control']) / 1e9:.3g}" for s in System)
        out.append(f"| {c.drives}{cap} | {c.storage_hosts} | {r[System.FULL].epoch_s:.4g} | {r[System.GPU_SELECT].epoch_s:.4g} | "
                   f"{nes.epoch_s:.4g} | {nes.select_s:.4g} | {bound} | {c.speedup(System.FULL):.2f}x | "
                   f"{c.speedup(System.GPU_SELECT):.2f}x | {net} | {nes.bytes['p2p'] / 1e9:.3g} | "
                   f"{r[System.FULL].energy_j / 1e3:.3g} / {nes.energy_j / 1e3:.3g} |")
    out += ["", f"Break-even at {sc.storage.drives} drive(s) (one input varied, the rest as above):", ""]
    for knob, label, lo, hi in BREAK_EVEN_KNOBS:
        section, field = knob.split(".")
        now = getattr(getattr(sc, section), field)
        cells = []
        for over in (System.FULL, System.GPU_SELECT):
            be = break_even(sc, sc.storage.drives, knob, over, lo, hi)
            if be.value is None:
                cells.append(f"vs {over.value}: {'pays over all of' if be.pays_below else 'never pays in'} [{lo:.0e}, {hi:.0e}]")
            else:
                cells.append(f"vs {over.value}: pays {'below' if be.pays_below else 'above'} {be.value:.3g}")
        out.append(f"* {label} (now {now:.3g}): " + "; ".join(cells))
    return "\n".join(out)


def inputs_markdown(names: list[str]) -> str:
    scs = [get_scenario(n) for n in names]
    table = [sources(sc) for sc in scs]
    out = ["| input | " + " | ".join(names) + " | unit | source (A = assumption) |",
           "| --- | " + " | ".join("---:" for _ in names) + " | --- | --- |"]
    for i, (field, _v, unit, _src) in enumerate(table[0]):
        srcs = {t[i][3] for t in table}
        values = " | ".join(_num(t[i][1]) for t in table)
        if len(srcs) == 1:
            src = srcs.pop()
        else:
            src = "; ".join(f"{n}: {t[i][3]}" for n, t in zip(names, table))
        flag = "A: " if is_assumption(src) else ""
        out.append(f"| `{field}` | {values} | {unit} | {flag}{src} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or ["fashion-mnist-1", "cifar10-1", "imagenet-8", "web-1b"]
    for n in names:
        print(results_markdown(n))
        print()
    print(inputs_markdown(names))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
