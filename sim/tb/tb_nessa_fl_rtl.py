"""cocotb bench of the top ``nessa_fl_rtl`` (and so of fl_engine): bit-exact vs the golden models,
exact mode (host/golden/greedy.py) and stochastic mode (host/golden/stochastic.py).

Bench parameters (NESSA_TB_PARAMS): LANES, N_MAX, ... (the HDL ones), ``pause`` (none / idle /
backpressure on every DDR channel), ``cases`` (random classes per run), ``n_max`` (largest n),
``latency`` (L > 0: reads from sim/tb/latency_ram.py, first beat L cycles after AR, bursts
pipelined, as DDR; cycles must then equal the schedule model with read_gap = L).
Every random class runs in both modes (stochastic with a random seed and sample size).
"""

from __future__ import annotations

import numpy as np
import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from host.device.rtl.regmap import REG, KernelArgs, decode_status
from host.device.rtl.parts import split_parts
from host.device.rtl.schedule import COCOTB_AXI_RAM, MemTiming, parts_run_cycles, run_cycles
from host.golden.greedy import greedy_fixed
from host.golden.stochastic import greedy_stochastic_fixed
from sim.tb.common import params, reset, start_clock, write_report
from sim.tb.kernel_host import KernelHost, SIM_BASE
from sim.tb.vectors import make_class, random_cases


async def _setup(dut, pause: str | None = None, seed: int = 0, mem_size: int = 1 << 22) -> KernelHost:
    p = params()
    dut.ap_rst_n.value = 0  # the bus models must see reset before they sample anything
    host = KernelHost(dut, mem_size=mem_size, pause=pause or p.get("pause", "none"), seed=seed,
                      read_latency=int(p.get("latency", 0)))
    await start_clock(dut.ap_clk)
    await reset(dut.ap_clk, dut.ap_rst_n, active_high=False)
    await ClockCycles(dut.ap_clk, 2)
    return host


def _timing(p: dict) -> dict:
    """Schedule-model keywords for this bench's build and memory."""
    lat = int(p.get("latency", 0))
    return {"mem": MemTiming(read_gap=lat, write_busy=COCOTB_AXI_RAM.write_busy) if lat else COCOTB_AXI_RAM,
            "outstanding": int(p.get("OUTSTANDING", 8)), "rng_bpc": int(p.get("RNG_BPC", 2)),
            "rng_units": int(p.get("RNG_UNITS", 4))}


def _check(kind, sim, k, res, args=None, host=None, mode=0, seed=0, sample_size=0):
    if mode == 1:
        gold = greedy_stochastic_fixed(sim, k, seed, sample_size)
    else:
        gold = greedy_fixed(sim, k)
    where = f"{kind} n={sim.shape[0]} k={k} mode={mode} seed={seed} s={sample_size}"
    assert res.status == 0, f"{where}: status {res.status:#x} {decode_status(res.status)}"
    assert np.array_equal(res.ids, gold.ids), f"{where}: ids {res.ids} != {gold.ids}"
    assert np.array_equal(res.gains, gold.gains), f"{where}: gains {res.gains} != {gold.gains}"
    assert np.array_equal(res.weights, gold.weights), f"{where}: weights {res.weights} != {gold.weights}"
    assert res.weights.sum() == sim.shape[0]
    assert res.stats == (0, res.cycles), f"{where}: stats words {res.stats} != (0, {res.cycles})"
    if host is not None:
        assert host.guards_intact(args), f"{where}: kernel wrote outside its output arrays"


@cocotb.test()
async def test_random_classes(dut):
    """Random classes of every kind in both modes vs the golden models, bit for bit; cycles per
    candidate evaluation equal to the schedule model when the DDR model does not stall."""
    p = params()
    host = await _setup(dut)
    n_max = min(int(p.get("n_max", 48)), int(p["N_MAX"]))
    exact = p.get("pause", "none") == "none"
    rng = np.random.default_rng(int(p.get("seed", 7)) + 1000)
    per_eval = []
    for i, (kind, sim, k) in enumerate(random_cases(int(p.get("seed", 7)), n_max, int(p.get("cases", 6)))):
        n = sim.shape[0]
        # stochastic: a random seed (full 32-bit range) and a sample size from 1 to beyond n
        seed = int(rng.integers(0, 1 << 32))
        ssize = int(rng.choice([1, max(1, n // 3), n, n + 5, int(rng.integers(1, n + 1))]))
        for mode, sd, ss in ((0, 0, 0), (1, seed, ssize)):
            args, res = await host.run(sim, k, use_irq=False, mode=mode, seed=sd, sample_size=ss)
            _check(kind, sim, k, res, args, host, mode, sd, ss)
            evals = k * n - k * (k - 1) // 2 if mode == 0 else sum(min(ss, n - t) for t in range(k))
            model = run_cycles(args.sim_ptr, n, k, args.ld, res.ids, host.lanes, int(p.get("MAX_BURST", 64)),
                               mode=mode, seed=sd, sample_size=ss, **_timing(p))
            if exact:  # without pauses the memory's latencies are the model's constants
                assert res.cycles == model, (f"{kind} n={n} k={k} mode={mode}: {res.cycles} cycles, "
                                             f"schedule model says {model}")
            else:
                assert res.cycles >= model, "stalls can only add cycles"
            per_eval.append((n, k, evals, res.cycles, model, mode))
    await ClockCycles(dut.ap_clk, 10)
    assert host.idle_queues(), "AXI queues not empty at the end"
    write_report({"runs": per_eval})


@cocotb.test()
async def test_interrupt_and_row_padding(dut):
    """Interrupt path (GIE/IER/ISR), ap_done clear-on-read, auto-restart off; rows padded to 32."""
    host = await _setup(dut)
    rng = np.random.default_rng(3)
    sim = make_class("features", 37, rng)
    k = 5
    args = host.load(sim, k, align=32)
    assert args.ld == 64
    await host.axil.write_dword(REG["gie"], 1)
    await host.axil.write_dword(REG["ier"], 0b01)
    await host.program(args)
    assert await host.axil.read_dword(REG["control"]) & 0b100, "ap_idle before start"
    await host.start()
    await ClockCycles(dut.ap_clk, 3)
    ctrl = await host.axil.read_dword(REG["control"])
    assert ctrl & 0b001 and not ctrl & 0b100, f"running: ap_start=1, ap_idle=0 (control={ctrl:#x})"
    await host.wait_interrupt()
    assert await host.axil.read_dword(REG["isr"]) == 0b01
    ctrl = await host.axil.read_dword(REG["control"])
    assert ctrl & 0b1110 == 0b1110 and not ctrl & 1, f"done+idle+ready, start cleared (control={ctrl:#x})"
    assert await host.axil.read_dword(REG["control"]) & 0b1010 == 0, "ap_done / ap_ready clear on read"
    await host.axil.write_dword(REG["isr"], 0b01)  # toggle-on-write clears it
    await RisingEdge(dut.ap_clk)
    assert dut.interrupt.value == 0
    _check("features", sim, k, await host.results(args), args, host)
    for off, val in args.words():  # arguments read back
        assert await host.axil.read_dword(off) == val
    assert host.idle_queues()


@cocotb.test()
async def test_bad_arguments(dut):
    """Each bad argument finishes at once with its status bit and writes nothing."""
    p = params()
    host = await _setup(dut)
    sim = make_class("uniform", 8, np.random.default_rng(1))
    good = host.load(sim, 3)
    lanes = host.lanes
    bad = {
        0: [dict(n=0), dict(n=int(p["N_MAX"]) + 1, ld=int(p["N_MAX"]) + lanes)],
        1: [dict(k=0), dict(k=9)],
        2: [dict(ld=4 if lanes > 4 else 6), dict(ld=good.ld + 1), dict(ld=1 << 24)],
        3: [dict(sim_ptr=SIM_BASE + 2)],
        4: [dict(out_ids_ptr=good.out_ids_ptr + 2), dict(out_weights_ptr=good.out_weights_ptr + 1),
            dict(out_stats_ptr=good.out_stats_ptr + 2)],
        5: [dict(mode=3), dict(mode=0xFFFFFFFF)],
        6: [dict(mode=1, sample_size=0)],
    }
    bad[3].append(dict(parts=2, parts_ptr=good.out_ids_ptr + 4))  # descriptors must be 16-byte aligned
    bad[2].append(dict(parts=1, parts_ptr=good.out_ids_ptr, ld=0))
    for bit, variants in bad.items():
        for change in variants:
            if bit == 2 and change["ld"] % lanes == 0 and change["ld"] >= 8:
                continue  # ld=good.ld+1 is fine when LANES == 1 (never: LANES >= 2)
            args = KernelArgs(**{**good.__dict__, **change})
            await host.program(args)
            await host.start()
            await host.wait_done()
            res = await host.results(good)
            assert res.status >> bit & 1, f"{change}: status {res.status:#x} lacks bit {bit}"
            assert res.cycles == 3, f"{change}: refused run took {res.cycles} cycles (CHECK, FINISH)"
            assert host.guards_intact(good) and set(host.ram.read(good.out_ids_ptr, 4)) == {0xA5}
            if bit != 4:
                assert res.stats == (res.status, res.cycles), f"{change}: stats {res.stats}"
            host.ram.write(good.out_stats_ptr, bytes([0xA5]) * 16)
    # and the kernel still works afterwards
    await host.program(good)
    await host.start()
    await host.wait_done()
    _check("uniform", sim, 3, await host.results(good), good, host)
    assert host.idle_queues()


@cocotb.test()
async def test_reset_mid_run(dut):
    """ap_rst_n in the middle of a run (bursts in flight), then a clean run matches the golden model."""
    host = await _setup(dut)
    rng = np.random.default_rng(11)
    sim = make_class("uniform", 40, rng)
    args = host.load(sim, 12, mode=1, seed=5, sample_size=7)  # reset lands among stochastic draws
    await host.program(args)
    await host.start()
    # wait until a read burst is actually in flight
    for _ in range(10_000):
        await RisingEdge(dut.ap_clk)
        if dut.m_axi_gmem_rvalid.value == 1:
            break
    await ClockCycles(dut.ap_clk, 37)
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 5)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 5)
    ctrl = await host.axil.read_dword(REG["control"])
    assert ctrl == 0b100, f"after reset: idle only (control={ctrl:#x})"
    assert await host.axil.read_dword(REG["n"]) == 0, "arguments cleared by reset"
    sim2 = make_class("ties", 33, rng)
    args2, res = await host.run(sim2, 9)
    _check("ties", sim2, 9, res, args2, host)
    args3, res = await host.run(sim2, 9, mode=1, seed=77, sample_size=6)  # the pool was re-initialised
    _check("ties", sim2, 9, res, args3, host, 1, 77, 6)
    await ClockCycles(dut.ap_clk, 10)
    assert host.idle_queues()


def _golden_part(block, p, mode):
    return greedy_stochastic_fixed(block, p.k, p.seed, p.sample_size) if mode == 1 else greedy_fixed(block, p.k)


@cocotb.test()
async def test_parts(dut):
    """A class split into parts (host/greedi.py's split, descriptors in DDR) in one run, both modes:
    every part bit-exact vs the golden model on its block, results one part after the other,
    cycles == the schedule model without pauses; a bad descriptor stops the run (status bit 7)
    after the earlier parts wrote their results, and nothing of it or later parts is written."""
    p = params()
    host = await _setup(dut)
    n_max = min(int(p.get("n_max", 48)), int(p["N_MAX"]))
    exact = p.get("pause", "none") == "none"
    lanes, burst = host.lanes, int(p.get("MAX_BURST", 64))
    rng = np.random.default_rng(int(p.get("seed", 7)) + 77)
    for case in range(2):
        n = int(rng.integers(n_max + 1, 3 * n_max))
        sim = make_class(("features", "ties")[case], n, rng)
        k = int(rng.integers(n // 8 + 1, n // 3 + 1))
        max_part = int(rng.integers(max(2, n_max // 2), n_max + 1))
        for mode in (1, 0):
            parts = split_parts(n, k, max_part, seed=int(rng.integers(0, 1 << 32)), mode=mode, epsilon=0.3)
            blocks = [np.ascontiguousarray(sim[np.ix_(q.members, q.members)]) for q in parts]
            golds = [_golden_part(b, q, mode) for b, q in zip(blocks, parts)]
            descs = [(len(q.members), q.k, q.seed, q.sample_size) for q in parts]
            args = host.load_parts(blocks, descs, mode)
            await host.program(args)
            await host.start()
            await host.wait_done()
            res = await host.results(args)
            where = f"n={n} k={k} max_part={max_part} mode={mode}"
            assert res.status == 0, f"{where}: status {res.status:#x} {decode_status(res.status)}"
            assert np.array_equal(res.ids, np.concatenate([g.ids for g in golds])), f"{where}: ids"
            assert np.array_equal(res.gains, np.concatenate([g.gains for g in golds])), f"{where}: gains"
            assert np.array_equal(res.weights, np.concatenate([g.weights for g in golds])), f"{where}: weights"
            assert res.stats == (0, res.cycles) and host.guards_intact(args)
            model = parts_run_cycles(args.sim_ptr, args.ld, descs, [g.ids for g in golds], lanes, burst, mode=mode,
                                     **_timing(p))
            assert res.cycles == model if exact else res.cycles >= model, f"{where}: {res.cycles} cycles, model {model}"
    # a bad descriptor (k = 0 in the second part): the first part's results, then status bit 7
    descs[1] = (descs[1][0], 0, descs[1][2], descs[1][3])
    args = host.load_parts(blocks, descs, mode)
    await host.program(args)
    await host.start()
    await host.wait_done()
    res = await host.results(args)
    assert res.status == 1 << 7 and res.stats == (1 << 7, res.cycles), f"status {res.status:#x}"
    k0 = parts[0].k
    assert np.array_equal(res.ids[:k0], golds[0].ids) and np.array_equal(res.weights[:k0], golds[0].weights)
    assert set(host.ram.read(args.out_ids_ptr + 4 * k0, 4 * parts[1].k)) == {0xA5}, "nothing after the bad part"
    model = parts_run_cycles(args.sim_ptr, args.ld, descs, [g.ids for g in golds], lanes, burst, mode=mode,
                             **_timing(p))
    assert res.cycles == model if exact else res.cycles >= model
    await ClockCycles(dut.ap_clk, 10)
    assert host.idle_queues()
