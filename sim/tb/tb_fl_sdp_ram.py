"""cocotb bench of fl_sdp_ram: random reads and writes vs a model; read-first on a collision."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, start_clock


@cocotb.test()
async def test_ram(dut):
    p = params()
    depth, width = int(p["DEPTH"]), int(p["WIDTH"])
    rng = random.Random(depth + width)
    dut.wr_en.value = 0
    dut.rd_addr.value = 0
    await start_clock(dut.clk)
    model = {}
    for a in range(depth):  # initialise (the engine clears what it uses)
        await FallingEdge(dut.clk)
        dut.wr_en.value, dut.wr_addr.value = 1, a
        model[a] = rng.randrange(1 << width)
        dut.wr_data.value = model[a]
    pending = None  # value rd_data must show after the next edge
    collisions = 0
    for _ in range(1500):
        await FallingEdge(dut.clk)
        if pending is not None:
            assert int(dut.rd_data.value) == pending
        we = rng.random() < 0.5
        wa, ra = rng.randrange(depth), rng.randrange(depth)
        if rng.random() < 0.1:
            ra = wa
        wd = rng.choice([0, (1 << width) - 1, rng.randrange(1 << width)])
        dut.wr_en.value, dut.wr_addr.value, dut.wr_data.value, dut.rd_addr.value = int(we), wa, wd, ra
        pending = model[ra]          # read-first: the old word, even when written this cycle
        collisions += int(we and wa == ra)
        if we:
            model[wa] = wd
    assert collisions > 5
