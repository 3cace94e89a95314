"""Markdown tables for SIMULATION.md.

    python -m sim.perf.markdown [SCENARIO ...]       print the tables
    python -m sim.perf.markdown --update SIMULATION.md
        rewrite the text between ``<!-- BEGIN GENERATED: KEY -->`` and ``<!-- END GENERATED: KEY -->``
        for KEY in results, as-written, hidden, inputs, calibration (the prose around them is kept)

Per scenario: the results across its drive sweep and the break-even points; one inputs table
(every input, its value per scenario, unit and source); the kernels-as-written comparison; the
calibration against this machine (sim/perf/calibration.json).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

from .model import System
from .model import simulate
from .params import Fpga, sources
from .report import BREAK_EVEN_KNOBS, break_even, sweep
from .scenarios import get_scenario

__all__ = ["results_markdown", "inputs_markdown", "as_written_markdown", "calibration_markdown", "update", "main"]

NAMES = ["fashion-mnist-1", "cifar10-1", "imagenet-8", "web-1b"]


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
    out = ["| input | " + " | ".join(names) + " | unit | source |",
           "| --- | " + " | ".join("---:" for _ in names) + " | --- | --- |"]
    for i, (field, _v, unit, _src) in enumerate(table[0]):
        srcs = {t[i][3] for t in table}
        values = " | ".join(_num(t[i][1]) for t in table)
        if len(srcs) == 1:
            src = srcs.pop()
        else:
            src = "; ".join(f"{n}: {t[i][3]}" for n, t in zip(names, table))
        out.append(f"| `{field}` | {values} | {unit} | {src} |")
    return "\n".join(out)


def as_written_markdown(names: list[str]) -> str:
    out = ["| scenario | drives | NeSSA selection s, design target | NeSSA selection s, kernels as written | ratio | NeSSA vs (a), as written |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for n in names:
        sc = get_scenario(n)
        aw = Fpga.as_written()
        slow = dataclasses.replace(sc, fpga=dataclasses.replace(sc.fpga, feature_macs_per_cycle=aw.feature_macs_per_cycle,
                                                                distance_macs_per_cycle=aw.distance_macs_per_cycle))
        a, b = simulate(sc), simulate(slow)
        sa, sb = a.results[System.NESSA].select_s, b.results[System.NESSA].select_s
        out.append(f"| {n} | {sc.storage.drives} | {sa:.4g} | {sb:.4g} | {sb / sa:.0f}x | {b.speedup(System.FULL):.3f}x |")
    return "\n".join(out)


def hidden_markdown() -> str:
    """Per class on one drive: is selection hidden under the P2P read of the class?"""
    from .params import Optimizer
    from .work import budget, evaluations

    fp, slow = Fpga(), Fpga.as_written()
    out = ["| n | d | sample B | P2P read of the class ms | similarity pass ms (target / as written) | "
           "greedy ms, exact RTL schedule | greedy ms, stochastic eps 0.01 |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in (1000, 5000):
        k = budget(n, 0.1)
        for d in (10, 64):
            for sb in (784, 3072):
                read = n * sb / 2.36e9
                sim_t, sim_w = n * n * d / fp.distance_macs_per_s, n * n * d / slow.distance_macs_per_s
                g = {o: fp.greedy_cycles(n, k, evaluations(n, k, o, 0.01)) / fp.clock_hz
                     for o in (Optimizer.NAIVE, Optimizer.STOCHASTIC)}
                out.append(f"| {n} | {d} | {sb} | {1e3 * read:.3g} | {1e3 * sim_t:.3g} / {1e3 * sim_w:.3g} | "
                           f"{1e3 * g[Optimizer.NAIVE]:.4g} | {1e3 * g[Optimizer.STOCHASTIC]:.3g} |")
    return "\n".join(out)


def calibration_markdown(path: Path) -> str:
    from sim.perf.this_machine import recompare, this_machine_scenario

    cal = json.loads(Path(path).read_text())
    m = cal["measured"]
    sc = this_machine_scenario(cal, fraction=cal["demo"].get("fraction", 0.1), reselect_every=cal["demo"].get("reselect_every", 3))
    spread = cal.get("measurement_spread", {})
    out = [f"Measured {cal['date_utc']} on {cal['machine']['cpus']} CPUs ({cal['machine']['processor']}), "
           f"torch threads {m['torch_threads']}; command: `{cal['command']}`.", "",
           "| input | wall clock | before/after spread | CPU clock | before/after spread |",
           "| --- | ---: | ---: | ---: | ---: |"]
    for key, label in (("train_s_per_sample", "training s/sample (small_cnn, batch 128)"),
                       ("feature_s_per_sample", "features s/sample (host.gradient_features)"),
                       ("select_ops", "CPU greedy ops/s (lazy, synthetic 20,000 x 10)"),
                       ("stream_bps", "loopback gRPC stream B/s (server + client)"),
                       ("read_bps", "Store.take B/s")):
        cells = []
        for k in (key, key + "_cpu"):
            sp = f"{100 * spread[k]:.0f}%" if k in spread else "-"
            cells.append(f"{m[k]:.4g} | {sp}" if k in m else "- | -")
        out.append(f"| {label} | {cells[0]} | {cells[1]} |")
    rows = recompare(cal)  # stored measurements vs the current model
    if rows:
        d = cal["demo"]
        out += ["", f"Demo: `nessa demo` with {d.get('epochs')} full-data epoch(s), {d.get('subset_epochs')} subset epochs, "
                    f"fraction {d['fraction']}, reselect every {d['reselect_every']} (wall time = training + selection, as the trainer records it).", "",
                "| run | epochs | wall s measured | model (pipelined) | error | model (stages serial) | error | CPU s measured | model (CPU clock) | error |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            cpu = (f"{r['measured_cpu_s']:.1f} | {r['predicted_cpu_s']:.1f} | {100 * r['error_cpu']:+.0f}%"
                   if "measured_cpu_s" in r else "- | - | -")
            out.append(f"| {r['run']} | {r['epochs']} | {r['measured_wall_s']:.1f} | {r['predicted_wall_s']:.1f} | "
                       f"{100 * r['error']:+.0f}% | {r['predicted_serial_wall_s']:.1f} | {100 * r['error_serial']:+.0f}% | {cpu} |")
    sel = simulate(sc).results[System.NESSA].select_stages
    out += ["", "Model of one reselection here: " + ", ".join(f"{k} {v:.3g} s" for k, v in sel.items()) + "."]
    return "\n".join(out)


def update(path: Path, sections: dict[str, str]) -> None:
    text = Path(path).read_text()
    for key, body in sections.items():
        pat = re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(key)} -->\n).*?(<!-- END GENERATED: {re.escape(key)} -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"{path}: no GENERATED block named {key!r}")
        text = pat.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)
    Path(path).write_text(text)


def main(argv: list[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    if args[:1] == ["--update"]:
        from sim.perf.this_machine import CALIBRATION_FILE

        update(Path(args[1]), {
            "results": "\n\n".join(results_markdown(n) for n in NAMES),
            "as-written": as_written_markdown(NAMES),
            "hidden": hidden_markdown(),
            "inputs": inputs_markdown(NAMES),
            "calibration": calibration_markdown(CALIBRATION_FILE),
        })
        return 0
    names = args or NAMES
    for n in names:
        print(results_markdown(n))
        print()
    print(inputs_markdown(names))
    print()
    print(as_written_markdown(names))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
