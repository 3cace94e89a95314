"""cocotb bench of fl_urem: random and edge (num, den) pairs, remainder == num % den, fixed
latency NUM_W/BPC + 1 cycles from start to done, start ignored while busy; ends idle."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, reset, start_clock


@cocotb.test()
async def test_remainders(dut):
    p = params()
    nw, dw, bpc = int(p.get("NUM_W", 32)), int(p.get("DEN_W", 14)), int(p.get("BPC", 2))
    gap = p.get("pause", "none")
    rng = random.Random(nw * 100 + dw * 10 + bpc)
    dut.start.value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    edges = [(0, 1), ((1 << nw) - 1, 1), ((1 << nw) - 1, (1 << dw) - 1), (0, (1 << dw) - 1),
             ((1 << nw) - 2, (1 << dw) - 1), (1, 2)]
    cases = edges + [(rng.randrange(1 << nw), rng.randrange(1, 1 << dw)) for _ in range(120)]
    for num, den in cases:
        await FallingEdge(dut.clk)
        assert int(dut.busy.value) == 0
        dut.start.value, dut.num.value, dut.den.value = 1, num, den
        await FallingEdge(dut.clk)
        dut.start.value = 0
        cycles = 0
        while True:
            if rng.random() < 0.3:  # a start while busy must be ignored
                dut.start.value, dut.num.value, dut.den.value = 1, rng.randrange(1 << nw), 1
            if int(dut.done.value):
                break
            assert int(dut.busy.value) == 1 or cycles == nw // bpc
            await FallingEdge(dut.clk)
            dut.start.value = 0
            cycles += 1
            assert cycles <= nw // bpc + 1, "done late"
        dut.start.value = 0
        assert cycles == nw // bpc, f"latency {cycles + 1} != {nw // bpc + 1}"
        assert int(dut.rem.value) == num % den, f"{num} % {den}: got {int(dut.rem.value)}"
        if gap != "none":
            for _ in range(rng.randint(0, 3)):
                await FallingEdge(dut.clk)
                assert int(dut.rem.value) == num % den, "rem held until the next start"
    await FallingEdge(dut.clk)
    assert int(dut.busy.value) == 0 and int(dut.done.value) == 0, "idle at the end"
