"""cocotb bench of fl_datapath: GAIN / UPDATE / WEIGHT passes over random rows vs a numpy model of
the cover vector and its claimed bits, with idle cycles inside rows (as R-channel stalls make)."""

from __future__ import annotations

import random

import numpy as np
import cocotb
from cocotb.triggers import FallingEdge

from sim.tb.common import params, reset, start_clock

GAIN, UPDATE, WEIGHT = 0, 1, 2
GAPS = {"none": 0.0, "idle": 0.25, "backpressure": 0.6}


@cocotb.test()
async def test_passes(dut):
    p = params()
    lanes, sim_w, n_max = int(p["LANES"]), int(p["SIM_W"]), int(p["N_MAX"])
    gap = GAPS[p.get("pause", "idle")]
    rng = random.Random(lanes * 31 + sim_w)
    nrng = np.random.default_rng(lanes)
    dut.in_valid.value = 0
    dut.clr_en.value = 0
    dut.mode.value = GAIN
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    rows_done = 0

    for n in (n_max, lanes + 1, max(1, lanes // 2 + 1), 3 * lanes - 1):
        n = min(n, n_max)
        beats = -(-n // lanes)
        dut.n_rem.value = n % lanes
        for b in range(beats):  # clear the cover words this class uses
            await FallingEdge(dut.clk)
            dut.clr_en.value, dut.clr_addr.value = 1, b
        await FallingEdge(dut.clk)
        dut.clr_en.value = 0
        cover = np.zeros(n, dtype=np.int64)
        claimed = np.zeros(n, dtype=bool)
        ops = [GAIN, UPDATE, GAIN, GAIN, UPDATE, GAIN, UPDATE, WEIGHT, WEIGHT, WEIGHT, GAIN]
        for op in ops:
            hi = rng.choice([3, (1 << sim_w) - 1])
            row = nrng.integers(0, hi + 1, size=n)
            if op == WEIGHT:  # rows that tie with the cover somewhere, so claims matter
                row = np.where(nrng.random(n) < 0.5, cover, row)
            if op == GAIN:
                want = int(np.maximum(row - cover, 0).sum())
            elif op == UPDATE:
                want = None
                cover = np.maximum(cover, row)
            else:
                hit = (row == cover) & ~claimed
                want = int(hit.sum())
                claimed |= hit
            dut.mode.value = op
            tag = rng.randrange(1 << int(p["TAG_W"]))
            padded = np.zeros(beats * lanes, dtype=np.int64)
            padded[:n] = row
            padded[n:] = nrng.integers(0, 1 << sim_w, size=beats * lanes - n)  # padding must be ignored
            b = 0
            result = None
            waited = 0
            while result is None:
                await FallingEdge(dut.clk)
                if int(dut.row_valid.value):
                    result = (int(dut.row_sum.value), int(dut.row_tag.value))
                send = b < beats and rng.random() >= gap
                if send:
                    chunk = padded[b * lanes:(b + 1) * lanes]
                    dut.in_data.value = sum(int(v) << (16 * i) for i, v in enumerate(chunk))
                    dut.in_last.value, dut.in_tag.value = int(b == beats - 1), tag
                    b += 1
                dut.in_valid.value = int(send)
                waited += 1
                assert waited < 20 * beats + 50, "row result never came"
            assert result[1] == tag
            if want is not None:
                assert result[0] == want, f"n={n} op={op}: row sum {result[0]} != {want}"
            rows_done += 1
    assert rows_done == 44
