"""Partitioned selection on the RTL kernel for bench/rtl_cycles.py: cycles of a class split into
parts of <= max_part members (fpga_kernels/rtl/parts.py: one kernel run per part, back to back),
RTL-simulated where feasible, and the quality cost against whole-class selection."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fpga_kernels.rtl.parts import PART_CALL_US, SYNC_CALL_US, Part, coverage, parts_golden, split_parts
from fpga_kernels.rtl.regmap import pack_rows
from fpga_kernels.rtl.schedule import cycle_breakdown
from host.golden.greedy import greedy_fixed
from host.golden.similarity import quantize_features, sim_q_rows
from host.golden.stochastic import greedy_stochastic_fixed, stochastic_sample_size

__all__ = ["parts_cycles", "simulate_parts", "quality_rows", "fashion_features", "call_overhead_ms"]

FASHION_CACHE = Path(__file__).resolve().parent / "out" / "sel_c_x.npy"  # bench/selection.py --cases c


def parts_cycles(sim: np.ndarray, parts: list[Part], gold_parts, lanes: int, max_burst: int, rng_bpc: int,
                 rng_units: int, mem=None) -> int:
    """Sum of the kernel's cycles register over the part runs (schedule model, 4 KiB-aligned rows)."""
    kw = {"mem": mem} if mem is not None else {}
    tot = 0
    for p, ids in zip(parts, gold_parts):
        n = len(p.members)
        ld = -(-n // lanes) * lanes
        tot += cycle_breakdown(0, n, p.k, ld, ids, lanes, max_burst, mode=1, seed=p.seed, sample_size=p.sample_size,
                               rng_bpc=rng_bpc, rng_units=rng_units, **kw)["cycles"]
    return tot


def simulate_parts(sim: np.ndarray, parts: list[Part], tmp: Path, rtl, cmodel, simulator: str) -> tuple[int, str]:
    """Every part's kernel run in one RTL simulation; asserts RTL == C++ model == golden per part.
    Returns (cycles summed over the parts, a line for the checks list)."""
    runs, blocks = [], []
    for i, p in enumerate(parts):
        block = np.ascontiguousarray(sim[np.ix_(p.members, p.members)])
        f = tmp / f"part{len(p.members)}_{i}_{p.seed}.npy"
        np.save(f, block)
        blocks.append(block)
        runs.append({"sim_file": str(f), "k": p.k, "mode": 1, "seed": p.seed, "sample_size": p.sample_size})
    t0 = time.time()
    rep = rtl({"runs": runs}, simulator)["runs"]
    wall = time.time() - t0
    total = 0
    for p, block, r in zip(parts, blocks, rep):
        gold = greedy_stochastic_fixed(block, p.k, p.seed, p.sample_size)
        cm = cmodel.run(block, p.k, mode=1, seed=p.seed, sample_size=p.sample_size)
        assert r["ids"] == gold.ids.tolist() and r["weights"] == gold.weights.tolist(), "RTL part != golden"
        assert r["ld"] == pack_rows(block, cmodel.lanes)[1]
        assert r["cycles"] == cm.cycles, f"part of {len(p.members)}: RTL {r['cycles']} cycles, C++ model {cm.cycles}"
        total += r["cycles"]
    n = sum(len(p.members) for p in parts)
    return total, (f"n={n} in {len(parts)} parts (stochastic, one kernel run each): RTL {total} cycles in all == "
                   f"C++ model == schedule model part by part, picks == golden (simulated in {wall:.0f} s)")


def fashion_features() -> tuple[np.ndarray, np.ndarray] | None:
    """Fashion-MNIST softmax - onehot features (60k x 10) cached by bench/selection.py, if there."""
    if not FASHION_CACHE.exists():
        return None
    return np.load(FASHION_CACHE), np.load(FASHION_CACHE.with_name("sel_c_y.npy"))


def _sim_of(x: np.ndarray, maxd_q: int) -> np.ndarray:
    q = quantize_features(x)
    n = len(q)
    return np.concatenate([sim_q_rows(q, np.arange(lo, min(n, lo + 500)), maxd_q) for lo in range(0, n, 500)])


def quality_rows(n: int, k: int, max_parts: list[int], seed: int, eps: float, maxd_q: int, classes: dict) -> list[dict]:
    """Quality of partitioned vs whole-class stochastic selection, per named class feature set.

    ``classes``: name -> float features [n, d]. Objective F(S) = sum_i max_{j in S} sim(i, j)
    over the whole class (what greedy maximises); cost = sum_i min_{j in S} dist(i, j) = n maxd - F
    (nothing is clamped for softmax - onehot at maxd = 2), the part F leaves out.
    """
    out = []
    for name, x in classes.items():
        sim = _sim_of(x, maxd_q)
        full = n * maxd_q
        whole = coverage(sim, greedy_stochastic_fixed(sim, k, seed, stochastic_sample_size(n, k, eps)).ids)
        rnd = coverage(sim, np.random.default_rng(seed).choice(n, k, replace=False))
        exact = coverage(sim, greedy_fixed(sim, k).ids) if n <= 1000 else None
        row = {"name": name, "whole_F": whole, "whole_cost": full - whole, "random_cost": full - rnd,
               "exact_cost": None if exact is None else full - exact, "parts": {}}
        for mp in max_parts:
            f = coverage(sim, parts_golden(sim, split_parts(n, k, mp, seed=seed, epsilon=eps)).ids)
            row["parts"][mp] = (f / whole, (full - f) / (full - whole))
        out.append(row)
    return out


def call_overhead_ms(parts: int, sync: bool = False) -> float:
    """Assumed host cost of the part runs (fpga_kernels/rtl/parts.py PART_CALL_US / SYNC_CALL_US)."""
    return parts * (SYNC_CALL_US if sync else PART_CALL_US) / 1e3
