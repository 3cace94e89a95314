"""cocotb bench of fl_draws: the remainders x % (m - r) of host/golden/stochastic.py's draw
sequence, in order, for random (seed, n, k, sample_size) incl. sample_size 1, > n and k = n;
out_valid exactly in the cycles the issue rule I(g) = max(I(g-1) + 1, T(g - UNITS)) (I(0) = the
cycle after start, ready 32/BPC + 1 cycles after issue) says, under a consumer that takes at
once (none), sometimes pauses (idle) or mostly pauses (backpressure) and raises take when
nothing is valid; a start in the middle of a sequence drops it; ends idle with no draw left."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from host.golden.stochastic import seed_state, xorshift32
from sim.tb.common import params, pause_pattern, reset, start_clock


def golden_draws(seed: int, n: int, k: int, ssize: int) -> list[int]:
    """x % (m - r) of every draw of a run, in order (host/golden/stochastic.py)."""
    out, state = [], seed_state(seed)
    for t in range(k):
        m = n - t
        for r in range(min(ssize, m)):
            state = xorshift32(state)
            out.append(state % (m - r))
    return out


async def _sequence(dut, seed, n, k, ssize, units, lat, pauses, rng, stop_after=None, timed=True):
    """Start a sequence and take its remainders; check values and (timed) the cycle each is valid."""
    want = golden_draws(seed, n, k, ssize)
    dut.seed.value, dut.n.value, dut.k.value, dut.ssize.value = seed, n, k, ssize
    dut.start.value = 1
    await FallingEdge(dut.clk)          # start sampled at the end of the previous cycle (c0)
    dut.start.value = 0
    c = 1                               # cycles since c0
    issue, takes, got = 0, [], []
    ready_at = None
    limit = stop_after if stop_after is not None else len(want)
    while len(got) < limit:
        g = len(got)
        if ready_at is None:            # the head's issue cycle follows from earlier takes
            issue = max(issue + 1, takes[g - units] if g >= units else 0)
            ready_at = issue + lat
        valid = int(dut.out_valid.value)
        if timed:
            assert valid == (c >= ready_at), f"draw {g}: out_valid={valid} in cycle {c}, model ready at {ready_at}"
        paused = pauses is not None and next(pauses)
        take = int(not paused) if valid else int(rng.random() < 0.5)  # take without valid is ignored
        dut.take.value = take
        if valid and take:
            assert int(dut.out_rem.value) == want[g], f"draw {g}: rem {int(dut.out_rem.value)} != {want[g]}"
            got.append(int(dut.out_rem.value))
            takes.append(c)
            ready_at = None
        await FallingEdge(dut.clk)
        dut.take.value = 0
        c += 1
        assert c < 100 * (len(want) + 10) * lat, "draws stalled"
    return got


@cocotb.test()
async def test_draw_sequences(dut):
    p = params()
    n_max, bpc, units = int(p.get("N_MAX", 64)), int(p.get("BPC", 2)), int(p.get("UNITS", 4))
    lat = 32 // bpc + 1
    rng = random.Random(n_max * 100 + bpc * 10 + units)
    pauses = pause_pattern(p.get("pause", "none"), units)
    dut.start.value, dut.take.value = 0, 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    await FallingEdge(dut.clk)          # _sequence starts from a falling edge
    cases = [(0, 1, 1, 1), (0xFFFFFFFF, n_max, n_max, 1), (7, n_max, 3, n_max + 5), (123, n_max, 1, 1 << 31)]
    for _ in range(6):
        n = rng.randint(1, n_max)
        cases.append((rng.randrange(1 << 32), n, rng.randint(1, n), rng.choice([1, 2, max(1, n // 3), n, n + 1])))
    for seed, n, k, ssize in cases:
        await _sequence(dut, seed, n, k, ssize, units, lat, pauses, rng)
        for _ in range(rng.randint(0, 2) * lat):  # nothing more comes
            assert int(dut.out_valid.value) == 0 and int(dut.idle.value) == 1
            await FallingEdge(dut.clk)
    # a start in the middle of a sequence (units still busy) drops it; the new one is right
    await _sequence(dut, 99, n_max, n_max, n_max, units, lat, pauses, rng, stop_after=min(3, n_max), timed=False)
    await _sequence(dut, 5, n_max, 2, 3, units, lat, pauses, rng, timed=False)
    await _sequence(dut, 6, n_max, 2, 3, units, lat, pauses, rng)       # timed again once the units are idle
    for _ in range(lat + 2):
        await FallingEdge(dut.clk)
        assert int(dut.out_valid.value) == 0 and int(dut.idle.value) == 1, "empty at the end"
