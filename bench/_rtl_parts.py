"""Partitioned selection on the RTL kernel for bench/rtl_cycles.py: cycles of a class split into
parts of <= max_part members, all parts in one kernel run (host/device/rtl/parts.py), RTL-simulated
where feasible, and the quality cost against whole-class selection."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from host.device.rtl.parts import (RUN_CALL_US, SYNC_CALL_US, Part, coverage, part_blocks, part_descs, parts_golden,
                                    split_parts)
from host.device.rtl.schedule import parts_run_cycles, run_cycles
from host.golden.greedy import greedy_fixed
from host.golden.similarity import quantize_features, sim_q_rows
from host.golden.stochastic import greedy_stochastic_fixed, stochastic_sample_size

__all__ = ["one_run_cycles", "separate_runs_cycles", "simulate_parts", "quality_rows", "fashion_features",
           "call_overhead_ms"]

FASHION_CACHE = Path(__file__).resolve().parent / "out" / "sel_c_x.npy"  # bench/selection.py --cases c


def _descs(parts: list[Part]) -> list[tuple[int, int, int, int]]:
    return [tuple(int(v) for v in d) for d in part_descs(parts)]


def _ld(parts: list[Part], lanes: int) -> int:
    return -(-max(len(p.members) for p in parts) // lanes) * lanes


def one_run_cycles(parts: list[Part], gold_parts, lanes: int, max_burst: int, rng_bpc: int, rng_units: int,
                   mem=None, outstanding: int | None = None) -> int:
    """The cycles register of one run over all parts (schedule model; rows from a 4 KiB page)."""
    kw = {"mem": mem} if mem is not None else {}
    if outstanding is not None:
        kw["outstanding"] = outstanding
    return parts_run_cycles(0, _ld(parts, lanes), _descs(parts), gold_parts, lanes, max_burst, mode=1,
                            rng_bpc=rng_bpc, rng_units=rng_units, **kw)


def separate_runs_cycles(parts: list[Part], gold_parts, lanes: int, max_burst: int, rng_bpc: int,
                         rng_units: int) -> int:
    """Sum of the cycles registers if every part were its own kernel run (schedule model)."""
    return sum(run_cycles(0, len(p.members), p.k, -(-len(p.members) // lanes) * lanes, ids, lanes, max_burst, mode=1,
                          seed=p.seed, sample_size=p.sample_size, rng_bpc=rng_bpc, rng_units=rng_units)
               for p, ids in zip(parts, gold_parts))


def simulate_parts(sim: np.ndarray, parts: list[Part], tmp: Path, rtl, cmodel, simulator: str,
                   latency: int = 0) -> tuple[int, str]:
    """One kernel run over all parts in RTL simulation; asserts RTL == C++ model (built for the same
    memory timing) == golden. ``latency`` L > 0: reads from the testbench's L-cycle latency memory
    (sim/tb/latency_ram.py; writes stay on the cocotbext RAM). Returns (its cycles, a checks line)."""
    blocks = part_blocks(sim, parts)
    files = []
    for i, b in enumerate(blocks):
        files.append(str(tmp / f"part{sim.shape[0]}_{i}.npy"))
        np.save(files[-1], b)
    descs = _descs(parts)
    t0 = time.time()
    rep = rtl({"parts": {"blocks": files, "descs": descs, "mode": 1}, **({"latency": latency} if latency else {})},
              simulator)
    wall = time.time() - t0
    gold = parts_golden(sim, parts)
    cm = cmodel.run_parts(blocks, descs, mode=1)
    assert rep["status"] == 0 and cm.status == 0
    assert rep["ids"] == np.concatenate(gold.part_ids).tolist() and rep["weights"] == gold.weights.tolist(), \
        "RTL parts != golden"
    assert rep["ld"] == _ld(parts, cmodel.lanes)
    assert rep["cycles"] == cm.cycles, f"n={sim.shape[0]} parts: RTL {rep['cycles']} cycles, C++ model {cm.cycles}"
    mem = f" against a {latency}-cycle read latency memory" if latency else ""
    return rep["cycles"], (f"n={sim.shape[0]} in {len(parts)} parts, one kernel run (stochastic){mem}: RTL {rep['cycles']} "
                           f"cycles == C++ model == schedule model, picks == golden part by part (simulated in {wall:.0f} s)")


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


def call_overhead_ms(runs: int, sync: bool = False) -> float:
    """Assumed host cost of kernel runs (host/device/rtl/parts.py RUN_CALL_US / SYNC_CALL_US)."""
    return runs * (SYNC_CALL_US if sync else RUN_CALL_US) / 1e3
