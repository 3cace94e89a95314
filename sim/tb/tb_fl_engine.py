"""cocotb bench of fl_engine alone: the bench plays the read master + datapath ("row oracle":
it computes each requested row's sum from a numpy cover vector in the mode the engine asks for)
and the write master (random ready / busy times), so the controller's schedule, addresses,
tags and results are checked against the golden models (exact and stochastic mode) without the
AXI plumbing."""

from __future__ import annotations

import random
from collections import deque

import numpy as np
import cocotb
from cocotb.triggers import FallingEdge

from host.golden.greedy import greedy_fixed
from host.golden.stochastic import greedy_stochastic_fixed
from sim.tb.common import params, reset, start_clock
from sim.tb.vectors import random_cases

GAIN, UPDATE, WEIGHT = 0, 1, 2
SIM, IDS, GAINS, WEIGHTS, STATS = 0x10000, 0x800000, 0x900000, 0xA00000, 0xB00000


async def _run(dut, sim: np.ndarray, k: int, lanes: int, rng: random.Random, slow: float, mode: int = 0,
               seed: int = 0, ssize: int = 0) -> dict:
    n = sim.shape[0]
    ld = -(-n // lanes) * lanes + lanes * rng.randint(0, 1)
    beats = -(-n // lanes)
    for name, v in dict(sim_ptr=SIM, n_arg=n, k_arg=k, ld_arg=ld, ids_ptr=IDS, gains_ptr=GAINS,
                        weights_ptr=WEIGHTS, stats_ptr=STATS, mode_arg=mode, seed_arg=seed,
                        ssize_arg=ssize, parts_arg=0, parts_ptr=0).items():
        getattr(dut, name).value = v
    mem: dict[int, int] = {}
    cover = np.zeros(n, dtype=np.int64)
    claimed = np.zeros(n, dtype=bool)
    pos: dict[int, int] = {}
    rows: deque = deque()      # (ready_cycle, j, tag)
    cleared = set()
    wr_busy = 0
    job_busy = 0
    dut.ap_start.value = 1
    for cycle in range(2_000_000):
        await FallingEdge(dut.clk)
        if cycle == 1:
            dut.ap_start.value = 0
        if int(dut.ap_done.value):
            break
        dut.row_valid.value = 0
        if int(dut.clr_en.value):
            cleared.add(int(dut.clr_addr.value))
        # row results, in order, after the oracle's latency
        if rows and rows[0][0] <= cycle:
            _, j, tag = rows.popleft()
            mode = int(dut.mode.value)
            row = sim[j].astype(np.int64)
            if mode == GAIN:
                val = int(np.maximum(row - cover, 0).sum())
            elif mode == UPDATE:
                np.maximum(cover, row, out=cover)
                val = 0
            else:
                hit = (row == cover) & ~claimed
                claimed |= hit
                val = int(hit.sum())
            dut.row_valid.value, dut.row_tag.value, dut.row_sum.value = 1, tag, val
        # read jobs
        job_busy = max(0, job_busy - 1)
        ready = int(job_busy == 0 and rng.random() >= slow)  # next job may overlap a pending result
        if ready and int(dut.job_valid.value):
            addr, tag = int(dut.job_addr.value), int(dut.job_tag.value)
            assert int(dut.job_beats.value) == beats
            off = addr - SIM
            assert off % (2 * ld) == 0 and 0 <= off // (2 * ld) < n, f"job address {addr:#x}"
            j = off // (2 * ld)
            if int(dut.mode.value) == WEIGHT:
                assert tag == pos[j], "weight pass tags rows with the selection position"
            else:
                assert tag == j
            job_busy = beats + rng.randint(1, 6)
            rows.append((cycle + job_busy + 3, j, tag))
        dut.job_ready.value = ready
        # writes
        wr_busy = max(0, wr_busy - 1)
        wready = int(wr_busy == 0 and rng.random() >= slow)
        if wready and int(dut.wr_valid.value):
            mem[int(dut.wr_addr.value)] = int(dut.wr_data.value)
            wr_busy = rng.randint(1, 5)
        dut.wr_ready.value = wready
        dut.wr_idle.value = int(wr_busy == 0)
        # remember positions from the ids written so far (the engine's table is internal)
        for t in range(k):
            a = IDS + 4 * t
            if a in mem and mem[a] not in pos:
                pos[mem[a]] = t
    else:
        raise AssertionError("engine never finished")
    if int(dut.status.value) == 0:
        assert cleared == set(range(beats)), "cover words cleared"
    else:
        assert not cleared and not mem.keys() - set(range(STATS, STATS + 16, 4)), "refused run touched memory"
    assert not rows, "row results left unconsumed"
    words = lambda base, cnt: [mem.get(base + 4 * i) for i in range(cnt)]  # noqa: E731
    return dict(ids=words(IDS, k), gains=words(GAINS, 2 * k), weights=words(WEIGHTS, k), stats=words(STATS, 4),
                status=int(dut.status.value), cycles=int(dut.cycles.value))


@cocotb.test()
async def test_engine(dut):
    p = params()
    lanes, n_max = int(p["LANES"]), int(p["N_MAX"])
    slow = {"none": 0.0, "idle": 0.3, "backpressure": 0.7}[p.get("pause", "idle")]
    rng = random.Random(lanes)
    for name in ("ap_start", "job_ready", "row_valid", "wr_ready", "wr_idle", "rd_err", "wr_err", "beat_valid",
                 "beat_data"):
        getattr(dut, name).value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    for kind, sim, k in random_cases(21, min(n_max, 40), 6):
        n = sim.shape[0]
        seed, ss = rng.randrange(1 << 32), rng.choice([1, max(1, n // 2), n + 1])
        for mode in (2, 1):  # naive (= exact), stochastic
            res = await _run(dut, sim, k, lanes, rng, slow, mode, seed, ss)
            gold = greedy_stochastic_fixed(sim, k, seed, ss) if mode == 1 else greedy_fixed(sim, k)
            where = f"{kind} n={n} k={k} mode={mode} seed={seed} s={ss}"
            assert res["status"] == 0
            assert res["ids"] == gold.ids.tolist(), f"{where}: ids"
            gains = [res["gains"][2 * t] | res["gains"][2 * t + 1] << 32 for t in range(k)]
            assert gains == gold.gains.tolist(), f"{where}: gains"
            assert res["weights"] == gold.weights.tolist(), f"{where}: weights"
            assert res["stats"] == [0, 0, res["cycles"] & 0xFFFFFFFF, res["cycles"] >> 32]
    # a refused run: k > n
    sim = random_cases(1, 8, 3)[2][1]
    dut.k_arg.value = 0
    res = await _run(dut, sim, sim.shape[0] + 1, lanes, rng, slow)
    assert res["status"] == 0b10 and res["ids"][0] is None and res["stats"][0] == 0b10
    res = await _run(dut, sim, 2, lanes, rng, slow, mode=1, ssize=0)  # stochastic needs sample_size >= 1
    assert res["status"] == 1 << 6 and res["ids"][0] is None and res["stats"][0] == 1 << 6
    res = await _run(dut, sim, 2, lanes, rng, slow, mode=7)
    assert res["status"] == 1 << 5 and res["stats"][0] == 1 << 5
