"""cocotb bench of fl_argmax: rounds of values full of ties, indices ascending (exact mode) or in
random order (stochastic mode); best = largest value, ties to the lowest index; aux follows it."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, reset, start_clock


@cocotb.test()
async def test_rounds(dut):
    p = params()
    vw, iw = int(p["VAL_W"]), int(p["IDX_W"])
    aw = int(p.get("AUX_W", 1))
    rng = random.Random(vw + iw)
    dut.in_valid.value = 0
    dut.clear.value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    await FallingEdge(dut.clk)
    assert int(dut.best_valid.value) == 0
    for rnd in range(60):
        dut.clear.value = 1
        await FallingEdge(dut.clk)
        dut.clear.value = 0
        assert int(dut.best_valid.value) == 0
        top = rng.choice([1, 3, (1 << vw) - 1])
        shuffled = rnd % 2 == 1
        best = None
        for i in range(rng.randint(1, 30)):
            # ascending within a round (exact mode) or any order (stochastic mode's pool order)
            idx = rng.randrange(1 << iw) if shuffled else (i * 3 + rnd) % (1 << iw)
            val = min(rng.randint(0, top), (1 << vw) - 1)
            aux = rng.randrange(1 << aw)
            dut.in_valid.value, dut.in_val.value, dut.in_idx.value, dut.in_aux.value = 1, val, idx, aux
            if best is None or val > best[0] or (val == best[0] and idx < best[1]):
                best = (val, idx, aux)
            await FallingEdge(dut.clk)
            dut.in_valid.value = 0
            if rng.random() < 0.3:
                await FallingEdge(dut.clk)  # idle cycle: nothing changes
            assert int(dut.best_valid.value) == 1
            got = (int(dut.best_val.value), int(dut.best_idx.value), int(dut.best_aux.value))
            assert got == best, f"round {rnd} step {i}: {got} != {best}"
