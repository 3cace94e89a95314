"""cocotb bench of fl_row_acc: rows of random length with idle gaps; totals mod 2**OUT_W, tags, order."""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, reset, start_clock

GAPS = {"none": 0.0, "idle": 0.3, "backpressure": 0.7}


@cocotb.test()
async def test_rows(dut):
    p = params()
    iw, ow, tw = int(p["IN_W"]), int(p["OUT_W"]), int(p.get("TAG_W", 8))
    gap = GAPS[p.get("pause", "idle")]
    rng = random.Random(iw * 7 + ow)
    dut.in_valid.value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    expect: deque = deque()
    rows = [[rng.choice([0, (1 << iw) - 1, rng.randrange(1 << iw)]) for _ in range(rng.randint(1, 9))]
            for _ in range(80)]
    beats = [(v, i == len(r) - 1, t) for t, r in enumerate(rows) for i, v in enumerate(r)]
    seen = 0
    cycle = 0
    while beats or expect or cycle < 5:
        await FallingEdge(dut.clk)
        if int(dut.out_valid.value):
            due, total, tag = expect.popleft()
            assert due == cycle, f"row result due at {due}, came at {cycle}"
            assert (int(dut.out_sum.value), int(dut.out_tag.value)) == (total, tag)
            seen += 1
        valid = bool(beats) and rng.random() >= gap
        if valid:
            v, last, t = beats.pop(0)
            dut.in_sum.value, dut.in_last.value, dut.in_tag.value = v, int(last), t % (1 << tw)
            if last:
                expect.append((cycle + 1, sum(rows[t]) % (1 << ow), t % (1 << tw)))
        dut.in_valid.value = int(valid)
        cycle += 1
        assert cycle < 10_000
    assert seen == len(rows) and not expect
