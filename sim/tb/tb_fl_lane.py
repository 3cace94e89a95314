"""cocotb bench of fl_lane (combinational): every input combination at small SIM_W, random at wide."""

from __future__ import annotations

import itertools
import random

import cocotb
from cocotb.triggers import Timer

from sim.tb.common import params


def _model(s, c, claimed, en, wm, w):
    hit = int(en and not claimed and s == c)
    diff = (s - c) if (en and s > c) else 0
    return (hit if wm else diff), (max(s, c) if en else c), int(claimed or hit)


@cocotb.test()
async def test_lane(dut):
    w = int(params()["SIM_W"])
    rng = random.Random(5)
    top = (1 << w) - 1
    if w <= 4:
        vecs = itertools.product(range(top + 1), range(top + 1), (0, 1), (0, 1), (0, 1))
    else:
        edge = [0, 1, top - 1, top]
        vecs = [(rng.choice(edge + [rng.randint(0, top)]), rng.choice(edge + [rng.randint(0, top)]),
                 rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 1)) for _ in range(3000)]
    count = 0
    for s, c, claimed, en, wm in vecs:
        dut.s.value, dut.c.value, dut.claimed.value, dut.en.value, dut.weight_mode.value = s, c, claimed, en, wm
        await Timer(1, unit="ns")
        want = _model(s, c, claimed, en, wm, w)
        got = (int(dut.val.value), int(dut.cover_new.value), int(dut.claimed_new.value))
        assert got == want, f"s={s} c={c} claimed={claimed} en={en} wm={wm}: {got} != {want}"
        count += 1
    assert count >= 2048
