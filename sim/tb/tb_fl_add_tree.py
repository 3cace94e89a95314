"""cocotb bench of fl_add_tree: random vectors with idle gaps; exact sums, order, latency log2(N).

Each loop iteration is one clock: at the falling edge the outputs of the last rising edge are
checked and the inputs for the next one are driven.
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, reset, start_clock

GAPS = {"none": 0.0, "idle": 0.3, "backpressure": 0.7}


@cocotb.test()
async def test_tree(dut):
    p = params()
    n, w, tw = int(p["N"]), int(p["W"]), int(p.get("TAG_W", 8))
    lat = (n - 1).bit_length()
    gap = GAPS[p.get("pause", "idle")]
    rng = random.Random(n * 100 + w)
    dut.in_valid.value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    expect: deque = deque()
    sent = seen = 0
    for cycle in range(700):
        await FallingEdge(dut.clk)
        if int(dut.out_valid.value):
            due, total, last, tag = expect.popleft()
            assert due == cycle, f"latency: result due at {due}, came at {cycle}"
            got = (int(dut.out_sum.value), int(dut.out_last.value), int(dut.out_tag.value))
            assert got == (total, last, tag), f"cycle {cycle}: {got} != {(total, last, tag)}"
            seen += 1
        valid = cycle < 600 and rng.random() >= gap
        if valid:
            vals = [rng.choice([0, (1 << w) - 1, rng.randrange(1 << w)]) for _ in range(n)]
            last, tag = rng.randint(0, 1), rng.randrange(1 << tw)
            dut.in_data.value = sum(v << (i * w) for i, v in enumerate(vals))
            dut.in_last.value, dut.in_tag.value = last, tag
            expect.append((cycle + lat, sum(vals), last, tag))
            sent += 1
        dut.in_valid.value = int(valid)
    assert not expect, f"{len(expect)} sums never came out"
    assert seen == sent > 100
