"""Per-pool selection (``nessa-pa``) on a SmartSSD: cycles per pool, feature stage included,
against the time to read the pool's samples from flash (issue #20, item 7).

    python bench/pa_pool_cycles.py [--simulator icarus|verilator] [--no-simulate] [--write]

One pool (storage_service/selections.py ``resolve_options`` defaults: batch 128, pool =
round(batch / fraction), fractions 0.1 and 0.3 -> 1,280 and 427) of Fashion-MNIST-sized
(1x28x28 uint8) or CIFAR-sized (3x32x32 uint8) samples, 10 classes, balanced. Stages, one after
the other (sim/perf/pool.py is the cost model; its docstring says how each figure is derived):

1. features: ``nessa_features`` over the pool's samples -- the kernel as built (opcounts' loop
   trip counts x II, plus [REQUANT_TILE] at II 2) or the design target (1,968 MAC/cycle). Which
   models the kernel runs is checked here by running it in emulation on a few samples. There is
   no cycle count measured in emulation or co-simulation of this kernel (no Vitis here): the
   feature cycles are derived from the code, not measured.
2. similarity rows: ``nessa_greedy`` phase 0 + phase 1 per class (opcounts' cycles as built;
   DSP-bound at the target) and the rest of its one-pick run (control loops, both speeds).
3. greedy: ``nessa_fl_rtl``, one run with the pool's classes as parts, stochastic (eps 0.01):
   the RTL simulated (Icarus) against a memory with the system model's DDR read gap (24 cycles,
   ``Fpga.read_gap_cycles``), RTL == C++ model == exact schedule replay == golden picks; the
   closed form ``greedy_cycles_model`` is reported against it.

Read: pool x sample bytes at ``Storage.p2p_bw`` (2.36 GB/s, SIMULATION.md's inputs table:
Xilinx/AMD's SmartSSD P2P figure). Clock: ``Fpga.clock_hz`` (200 MHz, an assumption there).
Similarities come from synthetic softmax - onehot features (bench/rtl_cycles.py ``class_features``):
the engine's cycles depend on the data only through the stochastic picks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from host.device.rtl.parts import RUN_CALL_US, Part, parts_golden  # noqa: E402
from host.device.rtl.schedule import COCOTB_AXI_RAM, MemTiming  # noqa: E402
from host.golden.stochastic import stochastic_sample_size  # noqa: E402
from host.strategies import Strategy  # noqa: E402
from sim.perf.params import Fpga, Storage  # noqa: E402
from sim.perf.pool import (FeatureModel, PoolPlan, Speed, feature_model, greedy_cycles_model,  # noqa: E402
                           plan_pool, pool_cost)

__all__ = ["SAMPLE_TYPES", "FRACTIONS", "pool_sizes", "export", "greedy_measure", "rows", "table"]

HEADING = "## Per-pool selection (nessa-pa) on the device: cycles vs the pool's read"
NUM_CLASSES = 10
DATASET_N = 60_000        # resolve_options caps the pool at the data set; Fashion-MNIST's train size
FRACTIONS = (0.1, 0.3)
EPSILON = 0.01            # host/facility_location.py DEFAULT_EPSILON
SEED = 1                  # part (class) i: SEED + i
MAXD_Q = 32768            # softmax - onehot distances are <= 2 (Q1.14), as bench/rtl_cycles.py
#: (label, stored sample shape, models): the models' names are host.models archs.
SAMPLE_TYPES = (("Fashion-MNIST-sized 1x28x28", (28, 28), ("small_cnn",)),
                ("CIFAR-sized 3x32x32", (32, 32, 3), ("resnet20", "small_cnn")))


def pool_sizes() -> list[tuple[float, int, int]]:
    """(fraction, batch, pool) with the service's nessa-pa defaults."""
    from storage_service.selections import resolve_options

    out = []
    for f in FRACTIONS:
        o = resolve_options(Strategy.NESSA_PA, f, DATASET_N)
        out.append((f, int(o["batch_size"]), int(o["pool_size"])))
    return out


def export(arch: str, shape: tuple[int, ...]):
    """The int8 model the drive runs (random weights: cycles do not depend on them)."""
    import torch

    from host.models import build_model
    from host.quantize.export import export_model

    torch.manual_seed(0)
    calib = np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8)
    return export_model(build_model(arch, shape, NUM_CLASSES).eval(), calib, shape, arch=arch)


def runs_on_kernel(arch: str, shape: tuple[int, ...]) -> str:
    """Run the emulated nessa_features on 4 samples: 'yes' or the kernel's refusal."""
    import torch

    from host.device.backend import DeviceBackend
    from host.models import build_model

    torch.manual_seed(0)
    x = np.random.default_rng(1).integers(0, 256, (4, *shape), dtype=np.uint8)
    try:
        g = DeviceBackend("emu").features(build_model(arch, shape, NUM_CLASSES).eval(), x, np.arange(4) % NUM_CLASSES,
                                          sample_shape=shape)
    except Exception as e:  # the kernel's status, named (DeviceError / ValueError)
        return f"no ({type(e).__name__}: {e})"
    return "yes" if g.shape == (4, NUM_CLASSES) else f"no (features of shape {g.shape})"


def _pool_parts(plan: PoolPlan) -> tuple[np.ndarray, list[Part]]:
    """Pool-local similarity (class blocks on the diagonal) and one part per class."""
    from rtl_cycles import class_sim

    sim = np.zeros((plan.pool, plan.pool), np.uint16)
    parts, lo = [], 0
    for c, (n, k) in enumerate(zip(plan.counts, plan.ks)):
        members = np.arange(lo, lo + n, dtype=np.int64)
        sim[lo:lo + n, lo:lo + n] = class_sim(n, NUM_CLASSES, 1000 * plan.pool + c)
        parts.append(Part(members=members, k=k, seed=SEED + c, sample_size=stochastic_sample_size(n, k, EPSILON)))
        lo += n
    return sim, parts


def greedy_measure(plan: PoolPlan, fpga: Fpga, simulator: str | None, tmp: Path) -> dict:
    """The engine's cycles for the pool: schedule replay at the simulation RAM and at the card's
    read gap; RTL-simulated at the card's read gap when ``simulator`` is given."""
    from _rtl_parts import one_run_cycles, simulate_parts
    from host.device.rtl.cmodel_ctypes import CModel
    from rtl_cycles import HDL, LANES, MAX_BURST, N_MAX, OUTSTANDING, RNG_BPC, RNG_UNITS, rtl

    if (fpga.lanes, fpga.max_burst) != (LANES, MAX_BURST):
        raise ValueError("the simulated engine is the shipped build (LANES 32, MAX_BURST 64)")
    card = MemTiming(read_gap=int(fpga.read_gap_cycles), write_busy=int(fpga.write_busy_cycles))
    sim, parts = _pool_parts(plan)
    gold = parts_golden(sim, parts).part_ids
    out = {"sim_ram": one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS, mem=COCOTB_AXI_RAM),
           "card": one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS, mem=card), "how": "schedule replay",
           "check": ""}
    if simulator:
        assert HDL["LANES"] == LANES
        lines = []
        for key, mem, latency in (("sim_ram", COCOTB_AXI_RAM, 0), ("card", card, card.read_gap)):
            model = CModel(LANES, N_MAX, MAX_BURST, RNG_BPC, RNG_UNITS, OUTSTANDING, mem.read_gap, mem.write_busy)
            cyc, line = simulate_parts(sim, parts, tmp, rtl, model, simulator, latency)
            if cyc != out[key]:
                raise AssertionError(f"pool {plan.pool}: RTL {cyc} cycles, schedule replay {out[key]}")
            lines.append(f"pool {plan.pool} ({len(parts)} classes as parts): {line}")
        out.update(how="RTL-simulated", check="\n- ".join(lines))
    return out


def rows(simulator: str | None, tmp: Path) -> tuple[list[dict], list[str], dict]:
    fpga, storage = Fpga(), Storage()
    checks, greedy, out = [], {}, []
    kernel_runs = {}
    for f, batch, pool in pool_sizes():
        plan = plan_pool(pool, batch, NUM_CLASSES)
        t0 = time.time()
        g = greedy_measure(plan, fpga, simulator, tmp)
        g["model"] = greedy_cycles_model(plan, fpga, EPSILON)
        greedy[pool] = g
        checks.append(g["check"] or f"pool {pool}: schedule replay only ({time.time() - t0:.0f} s)")
        for label, shape, archs in SAMPLE_TYPES:
            for arch in archs:
                key = (arch, shape)
                if key not in kernel_runs:
                    kernel_runs[key] = (feature_model(export(arch, shape), arch), runs_on_kernel(arch, shape))
                fm, runs = kernel_runs[key]
                for speed in (Speed.AS_BUILT, Speed.DESIGN_TARGET):
                    c = pool_cost(fm, plan, speed, fpga=fpga, storage=storage, greedy_cycles=g["card"], epsilon=EPSILON)
                    out.append({"samples": label, "model": arch, "runs": runs, "fraction": f, "pool": pool,
                                "k": plan.k, "plan": plan, "speed": speed, "cost": c, "fm": fm})
    return out, checks, greedy


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _needed(r: dict) -> str:
    """Feature MAC/cycle with which features + similarity + greedy would fit in the read."""
    c = r["cost"]
    left = c.read_us * 1e-6 * c.clock_hz - c.similarity_cycles - c.greedy_cycles
    if left <= 0:
        return "none (similarity + greedy alone exceed the read)"
    return _n(r["pool"] * r["fm"].macs_per_sample / left)


def table(rs: list[dict]) -> str:
    head = ("| samples | model | speed | fraction | pool | k | feature cycles | similarity cycles (nessa_greedy) | greedy cycles (nessa_fl_rtl) "
            "| total cycles | total us @200 MHz | read us | total / read | hidden? | slowest stage / read (pools pipelined) "
            "| feature MAC/cycle that would hide it |")
    lines = [head, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in rs:
        c = r["cost"]
        hidden = "yes" if c.ratio <= 1 else f"no, {c.ratio:,.1f}x the read"
        lines.append(f"| {r['samples']} | {r['model']} | {r['speed'].value} | {r['fraction']:g} | {r['pool']:,} | {r['k']} "
                     f"| {_n(c.feature_cycles)} | {_n(c.similarity_cycles)} | {_n(c.greedy_cycles)} | {_n(c.total_cycles)} "
                     f"| {c.total_us:,.1f} | {c.read_us:,.1f} | {c.ratio:,.2f}x | {hidden} | {c.slowest_stage_ratio:,.2f}x "
                     f"| {_needed(r)} |")
    return "\n".join(lines)


def models_table(rs: list[dict]) -> str:
    fpga = Fpga()
    seen, lines = set(), ["| samples | model | runs on nessa_features (emulated, 4 samples) | MAC/sample | "
                          "cycles/sample as written (II 1) | of which sample load (1 B/cycle) | + [REQUANT_TILE] II 2 | "
                          "as built MAC/cycle | design target cycles/sample (MACs only) | sample read cycles @ P2P |",
                          "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rs:
        fm: FeatureModel = r["fm"]
        if (r["samples"], fm.name) in seen:
            continue
        seen.add((r["samples"], fm.name))
        built = fm.cycles_per_sample(Speed.AS_BUILT, fpga)
        read = fm.sample_bytes / Storage().p2p_bw * fpga.clock_hz
        lines.append(f"| {r['samples']} | {fm.name} | {r['runs']} | {_n(fm.macs_per_sample)} | {_n(fm.cycles_as_written)} "
                     f"| {_n(fm.sample_bytes)} | {_n(fm.requant_extra)} | {fm.macs_per_sample / built:.1f} "
                     f"| {fm.cycles_per_sample(Speed.DESIGN_TARGET, fpga):,.0f} | {read:.1f} |")
    return "\n".join(lines)


def greedy_table(greedy: dict, rs: list[dict]) -> str:
    plans = {r["pool"]: r["plan"] for r in rs}
    lines = ["| pool | classes x members | k per class | greedy cycles, simulation RAM (read gap 2) | "
             "greedy cycles, card DDR (read gap 24) | how counted | closed form (sim/perf/pool.py) | closed / measured |",
             "| ---: | --- | --- | ---: | ---: | --- | ---: | ---: |"]
    for pool, g in greedy.items():
        p = plans[pool]
        members = "/".join(str(c) for c in sorted(set(p.counts), reverse=True))
        ks = "/".join(str(k) for k in sorted(set(p.ks), reverse=True))
        lines.append(f"| {pool:,} | {len(p.counts)} x {members} | {ks} | {_n(g['sim_ram'])} | {_n(g['card'])} | {g['how']} "
                     f"| {_n(g['model'])} | {g['model'] / g['card']:.3f} |")
    return "\n".join(lines)


def summary(rs: list[dict]) -> str:
    out = []
    for label, _shape, archs in SAMPLE_TYPES:
        for arch in archs:
            for speed in (Speed.AS_BUILT, Speed.DESIGN_TARGET):
                sel = [r for r in rs if r["samples"] == label and r["model"] == arch and r["speed"] is speed]
                lo, hi = min(r["cost"].ratio for r in sel), max(r["cost"].ratio for r in sel)
                feat = max(r["cost"].feature_cycles / r["cost"].total_cycles for r in sel)
                sg = max((r["cost"].similarity_cycles + r["cost"].greedy_cycles) / r["cost"].clock_hz * 1e6
                         / r["cost"].read_us for r in sel)
                out.append(f"{label}, {arch}, {speed.value}: total {lo:,.1f}-{hi:,.1f}x the read "
                           f"({'hidden' if hi <= 1 else 'not hidden'}); features are up to {100 * feat:.0f} % of it; "
                           f"similarity + greedy alone {sg:.2f}x the read")
    return "\n".join(f"- {s}" for s in out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simulator", default="icarus", choices=("icarus", "verilator"))
    ap.add_argument("--no-simulate", action="store_true", help="schedule replay only (no RTL simulation)")
    ap.add_argument("--write", action="store_true", help="put the tables into BENCHMARKS.md")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pa_pool_"))
    rs, checks, greedy = rows(None if args.no_simulate else args.simulator, tmp)
    text = "\n\n".join([table(rs), models_table(rs), greedy_table(greedy, rs), summary(rs)])
    print(text)
    print("\n".join(f"- {c}" for c in checks))
    if args.write:
        _write(text, checks, args)
    return 0


def _write(text: str, checks: list[str], args) -> None:
    from _markdown import replace_section

    cmd = "python bench/pa_pool_cycles.py" + (" --no-simulate" if args.no_simulate else f" --simulator {args.simulator}") \
        + " --write"
    intro = (
        f"{HEADING}\n\nCommand: `{cmd}` (issue #20 item 7; the cost model is `sim/perf/pool.py`, "
        "`tests/sim/test_pa_pool_cycles.py` recounts it and checks this table against it). One `nessa-pa` pool with "
        "the service's defaults (batch 128, pool = round(128 / fraction)), 10 balanced classes, the budget split over "
        "them as `Budget.GLOBAL` does; on the drive: read the pool's samples over P2P (2.36 GB/s, SIMULATION.md's "
        "`storage.p2p_bw`) -> `nessa_features` over the pool -> `nessa_greedy` phase 0 + 1 per class (similarity "
        "rows) -> one `nessa_fl_rtl` run with the classes as parts (stochastic, eps 0.01), stages one after the "
        "other, at 200 MHz (`fpga.clock_hz`, an assumption there). **As built**: the HLS kernels' loop trip counts x "
        "II (`host.device.opcounts`, plus [REQUANT_TILE]'s II 2); **design target**: 1,968 MAC/cycle for features "
        "and distances. Greedy cycles are the RTL engine's, the same at both speeds, against a memory with the "
        "system model's 24-cycle DDR read gap. Not in the cycles: host overhead per kernel run (assumed "
        f"{RUN_CALL_US:g} us queued, host/device/rtl/parts.py; a pool takes 1 + classes + 1 runs: about "
        f"{(2 + NUM_CLASSES) * RUN_CALL_US:g} us). Feature cycles are derived from the code, not measured: there "
        "is no Vitis co-simulation here and the emulator counts no cycles; the emulator does run every model "
        "listed (second table). \"slowest stage / read\" is the pipelined alternative (pool i + 1 read while "
        "pool i computes, the features and greedy kernels running concurrently), which no host code does yet.\n\n")
    checks_md = "\n\nChecks made by this run:\n" + "\n".join(f"- {c}" for c in checks) + "\n"
    replace_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", HEADING, intro + text + checks_md)


if __name__ == "__main__":
    sys.exit(main())
