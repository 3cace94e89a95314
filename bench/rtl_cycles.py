"""Cycles of the RTL facility-location kernel per class, projected to 200 MHz, next to the time
the SmartSSD needs to read that class (2.36 GB/s, Xilinx's measured P2P rate).

    python bench/rtl_cycles.py [--simulator icarus|verilator] [--rows 300] [--write]

How the numbers are obtained (the shipping build: LANES=32 -> 512-bit bus, N_MAX=8192):
1. Full cocotb runs of nessa_fl_rtl (n = 128, 256; k = 10%) must equal the C++ model / schedule
   model (fpga_kernels/rtl/schedule.py) cycle for cycle, and match the golden model bit for bit.
2. At n = 1000 and 5000 the simulator runs the first ``--rows`` candidate rows of greedy step 0
   (a full n = 5000 run is ~4e8 cycles: days in a Python-driven simulation); the handshake cycle
   of every row job must equal the schedule model's prediction (that validates the burst split
   and 4 KiB-page pattern of those row lengths).
3. The full-k cycle counts then come from the C++ model, which replays the same schedule (exact
   for the simulated memory: read_gap=2, write_busy=3). A column with read_gap=30 (~150 ns DDR
   read latency at 200 MHz, one burst outstanding) shows the cost of the simple read master.
d does not enter the RTL engine (it takes similarity rows); it enters through computing those
rows, estimated here as the HLS nessa_greedy phase 1 is built: 64 distance lanes fed one int16
feature element per cycle, ceil(n/64) * n * d cycles (row writes overlap).
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

from fpga_kernels.rtl.cmodel_ctypes import CModel  # noqa: E402
from fpga_kernels.rtl.regmap import pack_rows  # noqa: E402
from fpga_kernels.rtl.schedule import MemTiming, cycle_breakdown, row_bursts  # noqa: E402
from host.golden.greedy import greedy_fixed  # noqa: E402
from host.golden.similarity import quantize_features, sim_q_rows  # noqa: E402
from sim.rtl_runner import Simulator, run_bench  # noqa: E402

LANES, N_MAX, MAX_BURST = 32, 8192, 64
CLOCK_HZ = 200e6
P2P_BPS = 2.36e9           # SmartSSD P2P read rate (Xilinx)
SAMPLE_BYTES = 28 * 28     # a Fashion-MNIST image, what the drive actually reads
DIST_LANES = 64            # HLS nessa_greedy phase 1: BLK distance lanes
MAXD_Q = 32768             # max_dist = 2 at Q1.14 (host/golden/similarity.py)
HDL = {"LANES": LANES, "N_MAX": N_MAX, "GAIN_W": 40, "MAX_BURST": MAX_BURST}


def class_sim(n: int, d: int, seed: int) -> np.ndarray:
    """Similarity rows of a class of softmax - onehot features (d logits), as the device builds them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, d)) * 2.0
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[:, 0] -= 1.0
    q = quantize_features(p)
    return np.concatenate([sim_q_rows(q, np.arange(lo, min(n, lo + 500)), MAXD_Q) for lo in range(0, n, 500)])


def rtl(tb: dict, simulator: str) -> dict:
    return run_bench("nessa_fl_rtl", "sim.tb.tb_cycles", HDL, tb_params=tb, simulator=simulator).report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--simulator", default="icarus", choices=[s.value for s in Simulator])
    ap.add_argument("--rows", type=int, default=300, help="row jobs of step 0 simulated at n = 1000, 5000")
    ap.add_argument("--write", action="store_true", help="replace the RTL section of BENCHMARKS.md")
    args = ap.parse_args()
    if args.rows < 2:
        ap.error("--rows must be >= 2")
    tmp = Path(tempfile.mkdtemp(prefix="rtl_cycles_"))
    model = CModel(LANES, N_MAX, MAX_BURST)
    checks = []

    # 1. full simulated runs == C++ model == schedule model, results == golden
    for n in (128, 256):
        sim = class_sim(n, 10, n)
        k = math.ceil(0.1 * n)
        np.save(tmp / f"s{n}.npy", sim)
        t0 = time.time()
        rep = rtl({"sim_file": str(tmp / f"s{n}.npy"), "k": k}, args.simulator)
        wall = time.time() - t0
        cm, gold = model.run(sim, k), greedy_fixed(sim, k)
        assert rep["ids"] == gold.ids.tolist() and rep["weights"] == gold.weights.tolist(), f"n={n}: RTL != golden"
        assert np.array_equal(cm.ids, gold.ids), f"n={n}: C++ model != golden"
        assert rep["cycles"] == cm.cycles, f"n={n}: RTL {rep['cycles']} cycles, C++ model {cm.cycles}"
        checks.append(f"full run n={n} k={k}: RTL {rep['cycles']} cycles == C++/schedule model "
                      f"(simulated in {wall:.0f} s, {rep['cycles'] / wall:.0f} cycles/s)")

    # 2. + 3. the table
    rows_out = []
    for n in (1000, 5000):
        sims = {d: class_sim(n, d, n + d) for d in (10, 64)}
        np.save(tmp / f"s{n}.npy", sims[10])
        t0 = time.time()
        rep = rtl({"sim_file": str(tmp / f"s{n}.npy"), "k": math.ceil(0.1 * n), "rows": args.rows}, args.simulator)
        wall = time.time() - t0
        ld = rep["ld"]
        beats = -(-n // LANES)
        cost = [sum(2 + b for b in row_bursts(rep["sim_ptr"] + j * ld * 2, beats, 2 * LANES, MAX_BURST))
                for j in range(args.rows)]
        want = list(np.cumsum([n + 4] + [1 + c for c in cost[:-1]]))
        assert rep["job_cycles"] == want, f"n={n}: row job cycles differ from the schedule model"
        per_eval_sim = (rep["job_cycles"][-1] - rep["job_cycles"][0]) / (args.rows - 1)
        checks.append(f"n={n}: first {args.rows} row jobs of step 0 at exactly the model's cycles "
                      f"({per_eval_sim:.2f} cycles per candidate; simulated in {wall:.0f} s)")
        for d, sim in sims.items():
            k = math.ceil(0.1 * n)
            t0 = time.time()
            cm = model.run(sim, k)
            t_cm = time.time() - t0
            if n <= 1000:
                gold = greedy_fixed(sim, k)
                assert np.array_equal(cm.ids, gold.ids) and np.array_equal(cm.weights, gold.weights)
            ld_pad = -(-n // LANES) * LANES
            ddr = cycle_breakdown(0, n, k, ld_pad, cm.ids, LANES, MAX_BURST, MemTiming(read_gap=30, write_busy=40))
            evals = k * n - k * (k - 1) // 2
            dist = -(-n // DIST_LANES) * n * d
            rows_out.append(dict(n=n, d=d, k=k, evals=evals, cycles=cm.cycles, per_eval=cm.cycles / evals,
                                 ms=cm.cycles / CLOCK_HZ * 1e3, ddr_ms=ddr["cycles"] / CLOCK_HZ * 1e3,
                                 dist_ms=dist / CLOCK_HZ * 1e3,
                                 read_ms=n * SAMPLE_BYTES / P2P_BPS * 1e3, feat_ms=n * d * 2 / P2P_BPS * 1e3,
                                 t_cm=t_cm))
    table = ["| n | d | k | candidate evals | RTL cycles per class (whole run) | cycles / eval | RTL ms @200 MHz "
             "| same, 150 ns DDR latency | distance stage ms (est.) | read samples ms (784 B) "
             "| read features ms (2d B) | (RTL + distance) / sample read |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows_out:
        table.append(f"| {r['n']} | {r['d']} | {r['k']} | {r['evals']:,} | {r['cycles']:,} | {r['per_eval']:.1f} "
                     f"| {r['ms']:.1f} | {r['ddr_ms']:.1f} | {r['dist_ms']:.1f} | {r['read_ms']:.2f} "
                     f"| {r['feat_ms']:.3f} | {(r['ms'] + r['dist_ms']) / r['read_ms']:,.0f}x |")
    text = "\n".join(table)
    print(text)
    print("\n".join(f"- {c}" for c in checks))
    if args.write:
        _write(text, checks, args)
    return 0


def _write(table: str, checks: list[str], args) -> None:
    path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
    head = "## RTL facility-location engine"
    body = (f"{head}\n\nCommand: `python bench/rtl_cycles.py --simulator {args.simulator} --rows {args.rows} --write` "
            "(shipping build LANES=32, 512-bit bus, N_MAX=8192; k = 10% of n; features = softmax - onehot "
            "with d logits, Q1.14, similarity as host/golden/similarity.py). Method and caveats: "
            "fpga_kernels/rtl/README.md#cycles.\n\n" + table + "\n\n"
            "Reading it: the RTL column is the whole kernel run (CLEAR, k greedy steps, weight pass) "
            "for the DDR model of the simulation (first beat 2 cycles after AR); the next column replays "
            "the same schedule with a 30-cycle (150 ns) read latency, paid once per burst by the "
            "one-burst-outstanding read master. d does not enter the engine (it takes similarity rows); "
            "it enters through computing the rows (estimate: 64 distance lanes, one feature element per "
            "cycle, as the HLS kernel's phase 1). Exact greedy is O(k n^2) against an O(n) read, so at "
            "k = 10% selection is NOT hidden under the 2.36 GB/s read: 53-66x the read time at n = 1000, "
            "~1,200x at n = 5000. Hiding it needs far fewer evaluations (stochastic / lazy greedy, "
            "partitioning) rather than more lanes alone.\n\nChecks made by this run:\n"
            + "\n".join(f"- {c}" for c in checks) + "\n")
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if head in old:
        start = old.index(head)
        nxt = old.find("\n## ", start + len(head))
        old = old[:start] + body + (old[nxt + 1:] if nxt >= 0 else "")
        path.write_text(old if old.endswith("\n") else old + "\n")
    else:
        path.write_text(old.rstrip("\n") + "\n\n" + body)


if __name__ == "__main__":
    raise SystemExit(main())
