"""cocotb bench of fl_pool: the stochastic candidate pool (host/golden/stochastic.py's partial
Fisher-Yates) against a Python replay of the golden pool, for random (seed, n, k, sample_size)
incl. sample_size 1, > n and k = n, several classes back to back (as parts are): every
candidate and its `last` flag, a random pick removed per step, and cand_valid exactly in the
cycle the swap stage's rule says -- the take of draw g in the first cycle >= max(the WAIT
cycle, g's ready cycle, fl_draws' rule), cand_valid 2 cycles after it -- while `next` comes
at once (none), sometimes late (idle) or mostly late (backpressure). A reset in the middle of
a step, then a clean class; ends idle with no draw left and no cand_valid."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge

from host.golden.stochastic import seed_state, xorshift32
from sim.tb.common import params, pause_pattern, reset, start_clock


class _Clock:
    """Cycle counter: the bench acts at falling edges (inputs are sampled at the next rise)."""

    def __init__(self, dut):
        self.dut, self.c = dut, 0

    async def tick(self):
        await FallingEdge(self.dut.clk)
        self.c += 1


async def _class(dut, clk, seed, n, k, ssize, units, lat, pauses, rng, stop_after=None):
    """One class: start, clear, k steps (or stop after `stop_after` draws, for the reset case)."""
    dut.seed.value, dut.n.value, dut.k.value, dut.ssize.value = seed, n, k, ssize
    dut.start.value = 1
    start_c = clk.c
    await clk.tick()
    dut.start.value = 0
    issue, takes = start_c, []               # fl_draws: I(g) = max(I(g-1) + 1, T(g - units))
    for j in range(n):                       # CLEAR: pool[j] = j
        dut.clr_en.value, dut.clr_idx.value = 1, j
        await clk.tick()
    dut.clr_en.value = 0
    pool, m, state, drawn = list(range(n)), n, seed_state(seed), 0
    for t in range(k):
        for _ in range(rng.randint(0, 3)):
            await clk.tick()
        dut.step.value = 1
        wait_from = clk.c + 1                # WAIT starts the cycle after step
        await clk.tick()
        dut.step.value = 0
        cnt = min(ssize, m)
        for r in range(cnt):
            state = xorshift32(state)
            p = r + state % (m - r)
            pool[r], pool[p] = pool[p], pool[r]
            g = len(takes)
            issue = max(issue + 1, takes[g - units] if g >= units else 0)
            take = max(wait_from, issue + lat)
            while not int(dut.cand_valid.value):
                assert clk.c < take + 2, f"step {t} draw {r}: no cand_valid by cycle {clk.c} (model {take + 2})"
                await clk.tick()
            assert clk.c == take + 2, f"step {t} draw {r}: cand_valid in cycle {clk.c}, model {take + 2}"
            assert int(dut.cand.value) == pool[r], f"step {t} draw {r}: cand {int(dut.cand.value)} != {pool[r]}"
            assert int(dut.last.value) == (r == cnt - 1), f"step {t} draw {r}: last wrong"
            takes.append(take)
            drawn += 1
            if stop_after is not None and drawn == stop_after:
                return
            await clk.tick()                 # the swap's second write
            assert not int(dut.cand_valid.value), "cand_valid for two cycles"
            while True:                      # HOLD: nothing new until next
                await clk.tick()
                assert not int(dut.cand_valid.value), "cand_valid while holding"
                if pauses is None or not next(pauses):
                    break
            dut.next.value = 1
            wait_from = clk.c + 1
            await clk.tick()
            dut.next.value = 0
        for _ in range(1 + rng.randint(1, 3)):   # pool[m-1] is read from the last next on
            await clk.tick()
            assert not int(dut.cand_valid.value), "cand_valid after the step's last draw"
        pos = rng.randrange(cnt)             # the step's pick, by pool position
        dut.remove.value, dut.remove_pos.value = 1, pos
        pool[pos] = pool[m - 1]
        m -= 1
        await clk.tick()
        dut.remove.value = 0


@cocotb.test()
async def test_pool_classes(dut):
    p = params()
    n_max, bpc, units = int(p.get("N_MAX", 64)), int(p.get("BPC", 2)), int(p.get("UNITS", 4))
    lat = 32 // bpc + 1
    rng = random.Random(n_max * 100 + bpc * 10 + units)
    pauses = pause_pattern(p.get("pause", "none"), units)
    for name in ("start", "clr_en", "clr_idx", "step", "next", "remove", "remove_pos"):
        getattr(dut, name).value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    clk = _Clock(dut)
    await clk.tick()
    cases = [(0, 1, 1, 1), (0xFFFFFFFF, n_max, n_max, 1), (7, n_max, min(3, n_max), n_max + 5), (123, n_max, 2, 1 << 31)]
    for _ in range(5):
        n = rng.randint(1, n_max)
        cases.append((rng.randrange(1 << 32), n, rng.randint(1, n), rng.choice([1, 2, max(1, n // 3), n, n + 1])))
    for seed, n, k, ssize in cases:
        await _class(dut, clk, seed, n, k, ssize, units, lat, pauses, rng)
        for _ in range(rng.randint(0, 2)):
            await clk.tick()
        assert int(dut.idle.value) == 1 and not int(dut.cand_valid.value), "pool not idle after its class"
    # reset in the middle of a step (draws in flight), then a clean class
    await _class(dut, clk, 99, n_max, n_max, n_max, units, lat, pauses, rng, stop_after=min(3, n_max))
    await reset(dut.clk, dut.rst)
    clk.c = 0
    await clk.tick()
    await _class(dut, clk, 5, n_max, 2, 3, units, lat, pauses, rng)
    for _ in range(lat + 2):
        await clk.tick()
        assert int(dut.idle.value) == 1 and not int(dut.cand_valid.value), "empty at the end"
