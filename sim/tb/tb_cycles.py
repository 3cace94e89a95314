"""Cycle measurements for bench/rtl_cycles.py (not part of the test suite's pass/fail set).

tb params: ``sim_file`` (.npy uint16 n x n), ``k``, ``rows`` (0 = run to ap_done; R > 0 = stop
after the first R row jobs of greedy step 0 and report their handshake cycles), ``mode``,
``seed``, ``sample_size`` (the kernel arguments; default exact mode).
Report: {"cycles", "ids", "gains", "weights"} for a full run, or {"job_cycles": [...]} (cycle of
each row job's handshake, counted from the clock edge that accepted ap_start).
tb param ``parts`` ({"blocks": [.npy files], "descs": [[n, k, seed, sample_size], ...], "mode"}) instead:
one kernel run over a class split into parts (parts / parts_ptr), reported as {"cycles", "ids",
"weights", "status", "ld"} (results of every part in turn).
"""

from __future__ import annotations

import numpy as np
import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, write_report
from sim.tb.tb_nessa_fl_rtl import _setup


@cocotb.test()
async def test_measure(dut):
    p = params()
    if "parts" in p:
        await _parts(dut, p["parts"])
        return
    sim = np.load(p["sim_file"])
    k, rows = int(p["k"]), int(p.get("rows", 0))
    n = sim.shape[0]
    need = (1 << 16) + n * (-(-n // 32) * 32) * 2 + 16 * k + (1 << 20)
    host = await _setup(dut, mem_size=1 << max(22, (need - 1).bit_length()))
    args = host.load(sim, k, mode=int(p.get("mode", 0)), seed=int(p.get("seed", 0)),
                     sample_size=int(p.get("sample_size", 0)))
    await host.program(args)
    if rows == 0:
        await host.start()
        await host.wait_done(poll_gap=512)
        res = await host.results(args)
        assert res.status == 0
        write_report({"cycles": res.cycles, "ids": res.ids.tolist(), "gains": [int(g) for g in res.gains],
                      "weights": res.weights.tolist(), "ld": args.ld, "sim_ptr": args.sim_ptr})
        return
    eng = dut.u_engine
    await host.start()
    started = None
    cycle = 0
    hs = []
    while len(hs) < rows:
        await FallingEdge(dut.ap_clk)
        cycle += 1
        if started is None:
            if int(eng.ap_idle.value) == 0:
                started = cycle  # first cycle in CHECK
            continue
        if int(eng.job_valid.value) and int(eng.job_ready.value):
            hs.append(cycle - started)
    write_report({"job_cycles": hs, "ld": args.ld, "sim_ptr": args.sim_ptr})


async def _parts(dut, spec: dict) -> None:
    blocks = [np.load(f) for f in spec["blocks"]]
    rows = sum(b.shape[0] for b in blocks)
    width = -(-max(b.shape[0] for b in blocks) // 32) * 32
    k = sum(int(d[1]) for d in spec["descs"])
    need = (1 << 16) + rows * width * 2 + 16 * len(blocks) + 16 * k + (1 << 20)
    host = await _setup(dut, mem_size=1 << max(22, (need - 1).bit_length()))
    args = host.load_parts(blocks, [tuple(d) for d in spec["descs"]], int(spec.get("mode", 1)))
    await host.program(args)
    await host.start()
    await host.wait_done(poll_gap=512)
    res = await host.results(args)
    assert host.idle_queues()
    write_report({"cycles": res.cycles, "ids": res.ids.tolist(), "weights": res.weights.tolist(),
                  "status": res.status, "ld": args.ld})
