"""cocotb bench of fl_argmax: rounds of values full of ties; best = first maximum (lowest index)."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, reset, start_clock


@cocotb.test()
async def test_rounds(dut):
    p = params()
    vw, iw = int(p["VAL_W"]), int(p["IDX_W"])
    rng = random.Random(vw + iw)
    dut.in_valid.value = 0
    dut.clear.value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    await FallingEdge(dut.clk)
    assert int(dut.best_valid.value) == 0
    for rnd in range(40):
        dut.clear.value = 1
        await FallingEdge(dut.clk)
        dut.clear.value = 0
        assert int(dut.best_valid.value) == 0
        top = rng.choice([1, 3, (1 << vw) - 1])
        best = None
        for i in range(rng.randint(1, 30)):
            idx = (i * 3 + rnd) % (1 << iw)  # ascending within a round, as the engine streams
            val = min(rng.randint(0, top), (1 << vw) - 1)
            dut.in_valid.value, dut.in_val.value, dut.in_idx.value = 1, val, idx
            if best is None or val > best[0]:
                best = (val, idx)
            await FallingEdge(dut.clk)
            dut.in_valid.value = 0
            if rng.random() < 0.3:
                await FallingEdge(dut.clk)  # idle cycle: nothing changes
            assert int(dut.best_valid.value) == 1
            assert (int(dut.best_val.value), int(dut.best_idx.value)) == best, f"round {rnd} step {i}"
