"""Cycles of the RTL facility-location kernel per class, projected to 200 MHz, next to the time
the SmartSSD needs to read that class (2.36 GB/s, Xilinx's measured P2P rate), in exact mode and in
stochastic mode (mode 1, epsilon = the CPU default 0.01), for whole classes and for the shipped
configuration that hides selection under the read: the class split into parts of <= MAX_PART
members, all in one kernel run (host/device/rtl/parts.py), and that split's quality cost.

    python bench/rtl_cycles.py [--simulator icarus|verilator] [--rows 300] [--write]

How the numbers are obtained (the shipping build: LANES=32 -> 512-bit bus, N_MAX=8192, RNG_BPC=2,
RNG_UNITS=4 remainders computed ahead by fl_draws):
1. Full cocotb runs of nessa_fl_rtl (n = 128, 256; k = 10%; both modes) must equal the C++ model /
   schedule model (host/device/rtl/schedule.py) cycle for cycle, and match the golden models
   (host/golden/greedy.py, host/golden/stochastic.py) bit for bit.
2. Whole classes, n = 1000 and 5000: the simulator runs the first ``--rows`` candidate rows of
   greedy step 0 in exact mode and the whole first step's sample in stochastic mode (a full exact
   n = 5000 run is ~4e8 cycles: days in a Python-driven simulation); the handshake cycle of every
   row job must equal the schedule model's prediction. The full-k counts come from the C++ model,
   which replays the same schedule (exact for the simulated memory: read_gap=2, write_busy=3). A
   column with read_gap=30 (~150 ns DDR read latency at 200 MHz; write_busy=40) shows a card's
   DDR: fl_axi_rd keeps OUTSTANDING = 8 bursts in flight, so a stream of rows pays it once.
3. Partitioned classes (the shipped configuration), d = 10: the one kernel run over all parts is
   simulated in RTL and must equal the C++ model, the schedule model and the golden model part by
   part; d = 64: C++ model == schedule model. n = 1000 is simulated once more against the bench's
   30-cycle read latency memory (sim/tb/latency_ram.py): RTL == C++ model == schedule model with
   read_gap = 30 (writes there keep the simulation RAM's 3 cycles; the table's column uses 40). The host's overhead per kernel run is an assumption
   (host/device/rtl/parts.py: 5 us per queued run; 50 us if each run is waited for).
4. Quality: objective and k-medoid cost of partitioned vs whole-class stochastic selection, on
   Fashion-MNIST softmax - onehot features (bench/selection.py --cases c caches them; else only the
   synthetic classes) and on the synthetic classes of the tables.
d does not enter the RTL engine (it takes similarity rows); it enters through computing those
rows, estimated here as the HLS nessa_greedy phase 1 is built: 64 distance lanes fed one int16
feature element per cycle, ceil(n/64) * n * d cycles (per part: ceil(p/64) * p * d).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rtl_parts import (call_overhead_ms, fashion_features, one_run_cycles, quality_rows,  # noqa: E402
                        separate_runs_cycles, simulate_parts)
from host.device.rtl.cmodel_ctypes import CModel  # noqa: E402
from host.device.rtl.parts import (RUN_CALL_US, SYNC_CALL_US, part_blocks, part_descs,  # noqa: E402
                                    parts_golden, split_parts)
from host.device.rtl.schedule import MemTiming, cycle_breakdown  # noqa: E402
from host.golden.greedy import greedy_fixed  # noqa: E402
from host.golden.similarity import quantize_features, sim_q_rows  # noqa: E402
from host.golden.stochastic import greedy_stochastic_fixed, stochastic_sample_size  # noqa: E402
from sim.rtl_runner import Simulator, run_bench  # noqa: E402

LANES, N_MAX, MAX_BURST, RNG_BPC, RNG_UNITS = 32, 8192, 64, 2, 4
MAX_PART = 128             # shipped partition: parts of <= 128 members (n = 1000: 8 x 125; 5000: 40 x 125)
CLOCK_HZ = 200e6
P2P_BPS = 2.36e9           # SmartSSD P2P read rate (Xilinx)
SAMPLE_BYTES = 28 * 28     # a Fashion-MNIST image, what the drive actually reads
DIST_LANES = 64            # HLS nessa_greedy phase 1: BLK distance lanes
MAXD_Q = 32768             # max_dist = 2 at Q1.14 (host/golden/similarity.py)
EPSILON = 0.01             # host/facility_location.py DEFAULT_EPSILON
SEED = 1                   # stochastic-mode seed of every run here (part i: SEED + i)
OUTSTANDING = 8            # fl_axi_rd bursts in flight (shipped)
HDL = {"LANES": LANES, "N_MAX": N_MAX, "GAIN_W": 40, "MAX_BURST": MAX_BURST, "RNG_BPC": RNG_BPC,
       "RNG_UNITS": RNG_UNITS, "OUTSTANDING": OUTSTANDING}
MODES = {0: "exact", 1: "stochastic"}
HIDE_LANES = (32, 64, 128, 256, 512, 1024)
SWEEP_PARTS = (500, 250, 128, 64)
DDR150 = MemTiming(read_gap=30, write_busy=40)
SIM_LATENCY = 30           # the RTL check of the 150 ns column: the bench memory's read latency


def class_sim(n: int, d: int, seed: int) -> np.ndarray:
    """Similarity rows of a class of softmax - onehot features (d logits), as the device builds them."""
    return _sim(class_features(n, d, seed))


def class_features(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, d)) * 2.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[:, 0] -= 1.0
    return p


def _sim(x: np.ndarray) -> np.ndarray:
    q = quantize_features(x)
    n = len(q)
    return np.concatenate([sim_q_rows(q, np.arange(lo, min(n, lo + 500)), MAXD_Q) for lo in range(0, n, 500)])


def rtl(tb: dict, simulator: str) -> dict:
    return run_bench("nessa_fl_rtl", "sim.tb.tb_cycles", HDL, tb_params=tb, simulator=simulator).report


def kk(n: int) -> int:
    return math.ceil(0.1 * n)


def stoch_args(n: int, k: int) -> dict:
    return {"mode": 1, "seed": SEED, "sample_size": stochastic_sample_size(n, k, EPSILON)}


def golden(sim: np.ndarray, k: int, mode: int):
    if mode == 1:
        a = stoch_args(sim.shape[0], k)
        return greedy_stochastic_fixed(sim, k, a["seed"], a["sample_size"])
    return greedy_fixed(sim, k)


def read_cycles(n: int) -> float:
    """Cycles at 200 MHz the drive needs to read n samples at the P2P rate."""
    return n * SAMPLE_BYTES / P2P_BPS * CLOCK_HZ


def ms(cycles: float) -> float:
    return cycles / CLOCK_HZ * 1e3


def model_cycles(n: int, k: int, ids, mode: int, lanes: int = LANES, rng_units: int = RNG_UNITS,
                 mem: MemTiming | None = None) -> dict:
    """Exact schedule of one run (4 KiB-aligned rows padded to a multiple of lanes)."""
    ld = -(-n // lanes) * lanes
    extra = stoch_args(n, k) if mode == 1 else {}
    kw = {"mem": mem} if mem is not None else {}
    return cycle_breakdown(0, n, k, ld, ids, lanes, MAX_BURST, rng_bpc=RNG_BPC, rng_units=rng_units, **kw, **extra)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--simulator", default="icarus", choices=[s.value for s in Simulator])
    ap.add_argument("--rows", type=int, default=300, help="row jobs of exact step 0 simulated at n = 1000, 5000")
    ap.add_argument("--write", action="store_true", help="replace the RTL section of BENCHMARKS.md")
    args = ap.parse_args()
    if args.rows < 2:
        ap.error("--rows must be >= 2")
    tmp = Path(tempfile.mkdtemp(prefix="rtl_cycles_"))
    model = CModel(LANES, N_MAX, MAX_BURST, RNG_BPC, RNG_UNITS, OUTSTANDING)
    checks: list[str] = []
    _full_runs(tmp, model, args, checks)
    whole = _whole_classes(tmp, model, args, checks)
    parts = _parts_table(tmp, model, args, checks)
    quality = _quality_table()
    sweep = _sweep_table()
    text = "\n\n".join([parts, quality, whole, sweep, _hide_lanes()])
    print(text)
    print("\n".join(f"- {c}" for c in checks))
    if args.write:
        _write(text, checks, args)
    return 0


def _full_runs(tmp: Path, model: CModel, args, checks: list[str]) -> None:
    """Full simulated runs == C++ model == schedule model, results == golden, both modes."""
    for n in (128, 256):
        sim = class_sim(n, 10, n)
        k = kk(n)
        np.save(tmp / f"s{n}.npy", sim)
        for mode in MODES:
            extra = stoch_args(n, k) if mode == 1 else {}
            t0 = time.time()
            rep = rtl({"sim_file": str(tmp / f"s{n}.npy"), "k": k, **extra}, args.simulator)
            wall = time.time() - t0
            cm, gold = model.run(sim, k, **extra), golden(sim, k, mode)
            assert rep["ids"] == gold.ids.tolist() and rep["weights"] == gold.weights.tolist(), f"n={n}: RTL != golden"
            assert np.array_equal(cm.ids, gold.ids), f"n={n}: C++ model != golden"
            assert rep["cycles"] == cm.cycles == model_cycles(n, k, gold.ids, mode)["cycles"], \
                f"n={n} {MODES[mode]}: RTL {rep['cycles']} cycles, C++ model {cm.cycles}"
            checks.append(f"full run n={n} k={k} {MODES[mode]}: RTL {rep['cycles']} cycles == C++ model == "
                          f"schedule model, picks == golden (simulated in {wall:.0f} s)")


def _parts_table(tmp: Path, model: CModel, args, checks: list[str]) -> str:
    """The shipped configuration: parts of <= MAX_PART, stochastic, all parts in one kernel run."""
    head = ("| n | d | parts x members | k (sum over parts) | RTL cycles per class | how counted | RTL ms @200 MHz "
            "| read samples ms (784 B) | RTL / read "
            f"| (RTL + {RUN_CALL_US:g} us run overhead) / read | same, {SYNC_CALL_US:g} us | RTL / read, 150 ns DDR "
            "| same, OUTSTANDING = 1 | (RTL + 5 us) / read, 150 ns DDR | RTL / read, RNG_UNITS = 1 | distance stage ms (est., 64 lanes) | (RTL + run + distance) / read "
            "| distance lanes to hide it all |")
    out = [head, "|" + "---:|" * 4 + "---|" + "---:|" * 13]
    said, slow = [], []
    for n in (1000, 5000):
        k = kk(n)
        parts = split_parts(n, k, MAX_PART, seed=SEED, epsilon=EPSILON)
        sizes = sorted({len(p.members) for p in parts})
        for d in (10, 64):
            sim = class_sim(n, d, n + d)
            gold = parts_golden(sim, parts).part_ids
            sched = one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS)
            if d == 10:
                cyc, line = simulate_parts(sim, parts, tmp, rtl, model, args.simulator)
                checks.append(line)
                how = "RTL-simulated"
                if n == 1000:  # the 150 ns column's read side, against the RTL with a 30-cycle memory
                    lat_mem = MemTiming(read_gap=SIM_LATENCY, write_busy=3)
                    lat_model = CModel(LANES, N_MAX, MAX_BURST, RNG_BPC, RNG_UNITS, OUTSTANDING, SIM_LATENCY, 3)
                    lat_cyc, line = simulate_parts(sim, parts, tmp, rtl, lat_model, args.simulator, SIM_LATENCY)
                    assert lat_cyc == one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS, mem=lat_mem)
                    checks.append(line + f"; {ms(lat_cyc) / ms(read_cycles(n)):.2f}x the read")
            else:
                cm = model.run_parts(part_blocks(sim, parts), [tuple(int(v) for v in q) for q in part_descs(parts)])
                assert cm.status == 0 and np.array_equal(cm.ids, np.concatenate(gold))
                cyc, how = cm.cycles, "C++ model"
            assert cyc == sched, f"n={n} d={d} parts: {cyc} cycles, schedule model {sched}"
            one = one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, 1)
            ddr = one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS, mem=DDR150)
            ddr1 = one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS, mem=DDR150, outstanding=1)
            read = ms(read_cycles(n))
            ovh, sync = call_overhead_ms(1), call_overhead_ms(1, sync=True)
            dist_cyc = sum(-(-len(p.members) // DIST_LANES) * len(p.members) * d for p in parts)
            left = read - ms(cyc) - ovh  # time the distance stage may take (serial) and still hide
            need = f"{math.ceil(DIST_LANES * ms(dist_cyc) / left)}" if left > 0 else "none"
            r = (ms(cyc) + ovh) / read
            said.append(f"n = {n}, d = {d}: {r:.2f}x")
            slow.append((ms(ddr) + ovh) / read)
            out.append(f"| {n} | {d} | {len(parts)} x {'/'.join(map(str, sizes))} | {sum(p.k for p in parts)} "
                       f"| {cyc:,} | {how} | {ms(cyc):.3f} | {read:.3f} | {ms(cyc) / read:.2f}x | {r:.2f}x "
                       f"| {(ms(cyc) + sync) / read:.2f}x | {ms(ddr) / read:.2f}x | {ms(ddr1) / read:.2f}x "
                       f"| {(ms(ddr) + ovh) / read:.2f}x | {ms(one) / read:.2f}x "
                       f"| {ms(dist_cyc):.3f} | {(ms(cyc) + ovh + ms(dist_cyc)) / read:.2f}x | {need} |")
    return (f"**Shipped configuration (selection hidden under the read):** stochastic mode, each class split at "
            f"random into parts of <= {MAX_PART} members (GreeDi's proportional split with host/greedi.py's k split, "
            f"no merge round), all parts in one kernel run (parts / parts_ptr: the engine runs them back to back); "
            f"LANES = {LANES}, RNG_BPC = {RNG_BPC}, RNG_UNITS = {RNG_UNITS}. (RTL + run overhead) / sample read, "
            "simulated memory: " + "; ".join(said) + f". With a 150 ns DDR read latency (30 cycles; writes 40): "
            f"{min(slow):.2f}x-{max(slow):.2f}x, " + ("hidden" if max(slow) < 1 else "NOT hidden")
            + f" -- fl_axi_rd keeps OUTSTANDING = {OUTSTANDING} bursts in flight (the OUTSTANDING = 1 column: every "
            "4-beat row pays the latency).\n\n" + "\n".join(out))


def _quality_table() -> str:
    """Partitioned vs whole-class selection quality (golden models)."""
    classes: dict[int, dict[str, np.ndarray]] = {n: {} for n in (1000, 5000)}
    fm = fashion_features()
    for n in classes:
        for d in (10, 64):
            classes[n][f"synthetic d={d}"] = class_features(n, d, n + d)
        if fm is not None:
            x, y = fm
            for c in range(10):
                classes[n][f"Fashion-MNIST class {c}"] = x[np.flatnonzero(y == c)[:n]].astype(np.float64)
    cols = sorted({MAX_PART, 250, 500}, reverse=True)
    out = ["| n | features | " + " | ".join(f"F(parts <= {p}) / F(whole)" for p in cols) + " | "
           + " | ".join(f"cost(parts <= {p}) / cost(whole)" for p in cols)
           + " | cost(random k) / cost(whole) | cost(exact greedy) / cost(whole) |",
           "|---:|---|" + "---:|" * (2 * len(cols) + 2)]
    summary = []
    for n, named in classes.items():
        rows = quality_rows(n, kk(n), cols, SEED, EPSILON, MAXD_Q, named)
        fm_rows = [r for r in rows if r["name"].startswith("Fashion")]
        for r in rows if not fm_rows else [r for r in rows if not r["name"].startswith("Fashion")] + [_mean(fm_rows)]:
            ex = "-" if r["exact_cost"] is None else f"{r['exact_cost'] / r['whole_cost']:.3f}"
            out.append(f"| {n} | {r['name']} | " + " | ".join(f"{r['parts'][p][0]:.4f}" for p in cols) + " | "
                       + " | ".join(f"{r['parts'][p][1]:.3f}" for p in cols)
                       + f" | {r['random_cost'] / r['whole_cost']:.3f} | {ex} |")
        if fm_rows:
            worst = max(r["parts"][MAX_PART][1] for r in fm_rows)
            summary.append(f"n = {n}: Fashion-MNIST classes, parts <= {MAX_PART}: cost x{_mean(fm_rows)['parts'][MAX_PART][1]:.2f} "
                           f"on average (worst class x{worst:.2f}), objective x{_mean(fm_rows)['parts'][MAX_PART][0]:.4f}")
    note = ("Fashion-MNIST features not cached (run `python bench/selection.py --cases c` first): synthetic classes only."
            if fm is None else "Fashion-MNIST: softmax - onehot features of a SmallCNN after one epoch (bench/selection.py "
            "--cases c), the first n members of each class; the row is the mean over the 10 classes. " + "; ".join(summary) + ".")
    return ("**Quality cost of the split** (golden models; k = 10 %, whole class = stochastic greedy on the whole class, "
            "the same seed and epsilon). F = sum_i max_{j in S} sim(i, j) over the whole class (what greedy maximises, "
            "sim = 2 - distance in Q1.14); cost = sum_i min_{j in S} distance(i, j) = n 2 - F, what F leaves out (the "
            "k-medoid cost: lower is better). " + note + "\n\n" + "\n".join(out))


def _mean(rows: list[dict]) -> dict:
    keys = rows[0]["parts"].keys()
    return {"name": f"Fashion-MNIST, mean of {len(rows)} classes",
            "whole_cost": 1.0, "random_cost": float(np.mean([r["random_cost"] / r["whole_cost"] for r in rows])),
            "exact_cost": None if rows[0]["exact_cost"] is None
            else float(np.mean([r["exact_cost"] / r["whole_cost"] for r in rows])),
            "parts": {p: (float(np.mean([r["parts"][p][0] for r in rows])), float(np.mean([r["parts"][p][1] for r in rows])))
                      for p in keys}}


def _whole_classes(tmp: Path, model: CModel, args, checks: list[str]) -> str:
    """Whole classes, both modes: step-0 row jobs simulated, full counts from the C++ model."""
    rows_out = []
    for n in (1000, 5000):
        k = kk(n)
        sims = {d: class_sim(n, d, n + d) for d in (10, 64)}
        np.save(tmp / f"s{n}.npy", sims[10])
        for mode in MODES:
            extra = stoch_args(n, k) if mode == 1 else {}
            if mode == 1:  # step 0's pick (from the golden model) fixes step 0's sample
                want = model_cycles(n, k, golden(sims[10], k, 1).ids, 1)["jobs0"]
            else:
                want = model_cycles(n, 1, greedy_fixed(sims[10], 1).ids, 0)["jobs0"][:args.rows]
            t0 = time.time()
            rep = rtl({"sim_file": str(tmp / f"s{n}.npy"), "k": k, "rows": len(want), **extra}, args.simulator)
            wall = time.time() - t0
            assert rep["job_cycles"] == want, f"n={n} {MODES[mode]}: row job cycles differ from the schedule model"
            per_eval_sim = (want[-1] - want[0]) / (len(want) - 1)
            checks.append(f"n={n} {MODES[mode]}: first {len(want)} row jobs of step 0 at exactly the model's "
                          f"cycles ({per_eval_sim:.2f} cycles per candidate; simulated in {wall:.0f} s)")
            for d, sim in sims.items():
                cm = model.run(sim, k, **extra)
                if n <= 1000 or mode == 1:
                    gold = golden(sim, k, mode)
                    assert np.array_equal(cm.ids, gold.ids) and np.array_equal(cm.weights, gold.weights)
                sched = model_cycles(n, k, cm.ids, mode)
                assert sched["cycles"] == cm.cycles, f"n={n} d={d} {MODES[mode]}: schedule != C++ model"
                ddr = model_cycles(n, k, cm.ids, mode, mem=DDR150)
                one = model_cycles(n, k, cm.ids, mode, rng_units=1)["cycles"] if mode == 1 else cm.cycles
                dist = -(-n // DIST_LANES) * n * d
                rows_out.append(dict(n=n, d=d, k=k, mode=MODES[mode], s=extra.get("sample_size", "-"),
                                     evals=sched["evals"], cycles=cm.cycles, per_eval=cm.cycles / sched["evals"],
                                     ms=ms(cm.cycles), ddr_ms=ms(ddr["cycles"]), one_ms=ms(one),
                                     dist_ms=ms(dist), read_ms=ms(read_cycles(n)), feat_ms=n * d * 2 / P2P_BPS * 1e3))
    table = ["| n | d | k | mode | s | candidate evals | RTL cycles per class | cycles / eval | RTL ms @200 MHz "
             "| same, 150 ns DDR latency | distance stage ms (est.) | read samples ms (784 B) "
             "| read features ms (2d B) | RTL / sample read | same, RNG_UNITS = 1 | (RTL + distance) / sample read |",
             "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows_out:
        table.append(f"| {r['n']} | {r['d']} | {r['k']} | {r['mode']} | {r['s']} | {r['evals']:,} | {r['cycles']:,} "
                     f"| {r['per_eval']:.1f} | {r['ms']:.2f} | {r['ddr_ms']:.2f} | {r['dist_ms']:.1f} "
                     f"| {r['read_ms']:.2f} | {r['feat_ms']:.3f} | {r['ms'] / r['read_ms']:,.2f}x "
                     f"| {r['one_ms'] / r['read_ms']:,.2f}x | {(r['ms'] + r['dist_ms']) / r['read_ms']:,.1f}x |")
    said = []
    for n in (1000, 5000):
        ex = [r for r in rows_out if r["n"] == n and r["mode"] == "exact"]
        st = [r for r in rows_out if r["n"] == n and r["mode"] == "stochastic"]
        said.append(f"n = {n}: exact {ex[0]['ms'] / ex[0]['read_ms']:,.1f}x the sample read, stochastic "
                    f"{st[0]['ms'] / st[0]['read_ms']:,.2f}x ({ex[0]['cycles'] / st[0]['cycles']:,.0f}x fewer cycles)")
    return ("**Whole classes** (no split; for comparison), LANES = 32: " + "; ".join(said) + ". Rows are n wide, so "
            "whole-class time grows as n^2 / LANES against an O(n) read; the draws no longer matter here "
            "(RNG_UNITS = 1 column: one fl_urem, the draw floor of the build before fl_draws).\n\n" + "\n".join(table))


def _sweep_table() -> str:
    """Part size sweep (schedule model == C++ model, synthetic d = 10 class)."""
    out = ["| n | max part | parts | RTL cycles, one run | RTL / read | RTL / read, RNG_UNITS = 1 "
           f"| (RTL + {RUN_CALL_US:g} us) / read | parts as separate runs (+{RUN_CALL_US:g} us each) / read |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in (1000, 5000):
        k = kk(n)
        sim = class_sim(n, 10, n + 10)
        rc = ms(read_cycles(n))
        for mp in (n,) + SWEEP_PARTS:
            parts = split_parts(n, k, mp, seed=SEED, epsilon=EPSILON)
            gold = parts_golden(sim, parts).part_ids
            cyc = one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS)
            one = one_run_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, 1)
            sep = separate_runs_cycles(parts, gold, LANES, MAX_BURST, RNG_BPC, RNG_UNITS)
            out.append(f"| {n} | {mp} | {len(parts)} | {cyc:,} | {ms(cyc) / rc:.2f}x | {ms(one) / rc:.2f}x "
                       f"| {(ms(cyc) + call_overhead_ms(1)) / rc:.2f}x "
                       f"| {(ms(sep) + call_overhead_ms(len(parts))) / rc:.2f}x |")
    return ("**Part size** (stochastic, schedule model == C++ model, synthetic d = 10 class; max part = n is the whole "
            "class, one part): larger parts keep more quality (table above) but cost more cycles; the last column is "
            "the host calling the kernel once per part instead (each part's run + the assumed queued-run overhead).\n\n"
            + "\n".join(out))


def _hide_lanes() -> str:
    """Whole-class stochastic runs at more lanes (a wider datapath)."""
    out = ["**Whole classes at more lanes** (stochastic, schedule model; the RTL is built and verified for LANES <= 32 "
           "= one 512-bit port, more needs several ports or HBM): RTL time / sample read time.", "",
           "| n | LANES | cycles / candidate (step 0, mean) | RTL / read, RNG_UNITS = 4 | RTL / read, RNG_UNITS = 1 |",
           "|---:|---:|---:|---:|---:|"]
    summary = []
    for n in (1000, 5000):
        k = kk(n)
        ids = golden(class_sim(n, 10, n + 10), k, 1).ids
        first = None
        for lanes in HIDE_LANES:
            m4 = model_cycles(n, k, ids, 1, lanes=lanes)
            r4 = m4["cycles"] / read_cycles(n)
            r1 = model_cycles(n, k, ids, 1, lanes=lanes, rng_units=1)["cycles"] / read_cycles(n)
            if r4 <= 1.0 and first is None:
                first = lanes
            jobs = m4["jobs0"]  # row-job handshakes of step 0: the rows stream, one per this many cycles
            row = (jobs[-1] - jobs[0]) / (len(jobs) - 1)
            out.append(f"| {n} | {lanes} | {row:.1f} | {r4:.2f}x | {r1:.2f}x |")
        summary.append(f"n = {n}: " + (f"LANES = {first}" if first else f"none up to {HIDE_LANES[-1]}"))
    return "\n".join(out) + "\n\nSmallest LANES that hide a whole class (RNG_UNITS = 4): " + "; ".join(summary) + "."


def _write(table: str, checks: list[str], args) -> None:
    path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
    head = "## RTL facility-location engine"
    body = (f"{head}\n\nCommand: `python bench/rtl_cycles.py --simulator {args.simulator} --rows {args.rows} --write` "
            f"(shipping build LANES={LANES}, 512-bit bus, N_MAX={N_MAX}, RNG_BPC={RNG_BPC}, RNG_UNITS={RNG_UNITS}; "
            f"k = 10% of n; stochastic mode: epsilon = {EPSILON} (the CPU default) -> s = ceil(p/k_p ln(1/epsilon)) "
            f"candidates per step (47 for a whole class, 45-48 for parts), seed {SEED} (part i: {SEED} + i); "
            "features = softmax - onehot with d logits, Q1.14, similarity as host/golden/similarity.py; read = n "
            "Fashion-MNIST samples of 784 B at 2.36 GB/s). Method and caveats: fpga_kernels/rtl/README.md#cycles.\n\n"
            + table + "\n\n"
            "Reading it: an RTL column is the kernel's cycles register for one run (per part: descriptor fetch, "
            "CLEAR, k_i greedy steps, weight pass) for the DDR model of the simulation (first beat 2 cycles after AR, "
            "bursts pipelined); the 150 ns DDR columns replay the same schedule with a 30-cycle read latency (and "
            f"40-cycle writes). The read master (fl_axi_rd) keeps up to OUTSTANDING = {OUTSTANDING} bursts in flight "
            "and the engine issues each candidate's row job as soon as the candidate is known (the draws are computed "
            "ahead), so a greedy step's rows stream and the latency is paid about twice per step (the end of the "
            "candidate stream, the cover-update row) and once per weight-pass row, not once per candidate; the "
            "OUTSTANDING = 1 column is the cost without that (every 4-beat row pays it: ~2.8x, the previous build). "
            "The RTL itself was run against a 30-cycle latency memory in the test bench for n = 1000 (checks below): "
            "cycle for cycle the model. Selection is hidden under the read in every cell of the shipped "
            "configuration (n in {1000, 5000} x d in {10, 64}; d does not enter the engine, which takes similarity "
            "rows), for the simulated memory (also with a 50 us synchronous run overhead) and with the 150 ns DDR "
            "latency. "
            "Two things make the simulated-memory result: "
            "fl_draws computes the stochastic draws' remainders ahead (RNG_UNITS fl_urem units; with one unit every "
            "draw costs >= 17 cycles: the RNG_UNITS = 1 columns), and parts of <= 128 members make each candidate "
            "row 4 beats instead of n/32, run back to back inside one kernel call. The price is quality: the "
            "parts' union misses structure a whole-class selection sees (quality table). Not hidden: computing the "
            "similarity rows themselves -- at d = 64 the estimated 64-lane distance stage alone exceeds the read; "
            "the last column of the shipped table says how many distance lanes (one int16 feature element per lane "
            "per cycle) would let distance + selection + run overhead fit in the read, one after the other. Nothing "
            "here is synthesised (200 MHz is the target, not a timing-closed result); the run overhead is an "
            "assumption from XRT reports (host/device/rtl/parts.py), not measured on a card."
            "\n\nChecks made by this run:\n" + "\n".join(f"- {c}" for c in checks) + "\n")
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if head in old:
        start = old.index(head)
        nxt = old.find("\n## ", start + len(head))
        old = old[:start] + body + ("\n" + old[nxt + 1:] if nxt >= 0 else "")
        path.write_text(old if old.endswith("\n") else old + "\n")
    else:
        path.write_text(old.rstrip("\n") + "\n\n" + body)


if __name__ == "__main__":
    raise SystemExit(main())
