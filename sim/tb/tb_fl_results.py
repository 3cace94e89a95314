"""cocotb bench of fl_results: random sequences of load / advance and step / weight / stats
commands against a Python statement of the word sequence of each (addresses mod 2**ADDR_W),
under a write master that is always ready (none), sometimes stalls (idle) or mostly stalls
(backpressure): every word in order, wr_valid exactly from the cycle after the command until
the cycle after its last word is accepted, done exactly with that last word, stats_ok = stats
pointer 4-byte aligned, and the command-time inputs (idx, pos, count) taken with the command.
Ends with no word left and wr_valid low."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, Timer

from sim.tb.common import params, pause_pattern, reset, start_clock

M32 = (1 << 32) - 1


@cocotb.test()
async def test_result_words(dut):
    p = params()
    n_max, addr_w = int(p.get("N_MAX", 4096)), int(p.get("ADDR_W", 64))
    amask = (1 << addr_w) - 1
    rng = random.Random(n_max + addr_w)
    pauses = pause_pattern(p.get("pause", "none"), addr_w)
    strobes = ("load", "advance", "step_wr", "weight_wr", "stats_wr")
    for name in strobes + ("adv_k", "t", "idx", "gain", "pos", "count", "status", "cycles", "wr_ready",
                           "ids_ptr", "gains_ptr", "weights_ptr", "stats_ptr"):
        getattr(dut, name).value = 0
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    await FallingEdge(dut.clk)

    base = {}
    words: list[tuple[int, int]] = []        # the active command's words still to come
    valid_from = None                        # cycle its first word is presented
    gap = 0                                  # idle cycles before the next command
    commands = {"step_wr": 0, "weight_wr": 0, "stats_wr": 0}
    c, total = 0, 140 if pauses is None else 260
    while c < total or words or valid_from is not None:
        for name in strobes:
            getattr(dut, name).value = 0
        ready = pauses is None or not next(pauses)
        dut.wr_ready.value = int(ready)
        await Timer(1, unit="ns")            # combinational done settles
        valid, done = int(dut.wr_valid.value), int(dut.done.value)
        busy = valid_from is not None and c >= valid_from
        assert valid == int(busy), f"cycle {c}: wr_valid={valid}, model {int(busy)}"
        if valid and ready:
            got = (int(dut.wr_addr.value), int(dut.wr_data.value))
            assert got == words[0], f"cycle {c}: word {got[0]:#x}={got[1]:#x}, model {words[0][0]:#x}={words[0][1]:#x}"
            words.pop(0)
            assert done == int(not words), f"cycle {c}: done={done} with {len(words)} words left"
            if not words:
                valid_from = None
                gap = rng.randint(0, 3)
        else:
            assert done == 0, f"cycle {c}: done without the last word accepted"
        if busy:                             # taken with the command: free to change now
            dut.idx.value, dut.pos.value, dut.count.value = rng.randrange(n_max), rng.randrange(n_max), rng.randrange(1 << 32)
        if valid_from is None and not words and not valid and c < total:   # none while wr_valid
            if gap:
                gap -= 1
            elif not base or rng.random() < 0.1:                     # load the pointers
                ptrs = {k: rng.randrange(1 << 64) & ~(0 if rng.random() < 0.3 else 3)
                        for k in ("ids_ptr", "gains_ptr", "weights_ptr", "stats_ptr")}
                for k, v in ptrs.items():
                    getattr(dut, k).value = v
                dut.load.value = 1
                base = {k: v & amask for k, v in ptrs.items()}
                base["ok"] = ptrs["stats_ptr"] % 4 == 0
            elif rng.random() < 0.1:                                 # the next part
                k = rng.randint(1, n_max)
                dut.adv_k.value, dut.advance.value = k, 1
                for key, size in (("ids_ptr", 4), ("gains_ptr", 8), ("weights_ptr", 4)):
                    base[key] = (base[key] + size * k) & amask
            else:
                kind = rng.choice(list(commands))
                commands[kind] += 1
                if kind == "step_wr":
                    t, idx, gain = rng.randrange(n_max), rng.randrange(n_max), rng.randrange(1 << 64)
                    dut.t.value, dut.idx.value, dut.gain.value = t, idx, gain
                    g = base["gains_ptr"] + 8 * t
                    words = [((base["ids_ptr"] + 4 * t) & amask, idx), (g & amask, gain & M32),
                             ((g + 4) & amask, gain >> 32)]
                elif kind == "weight_wr":
                    pos, count = rng.randrange(n_max), rng.randrange(1 << 32)
                    dut.pos.value, dut.count.value = pos, count
                    words = [((base["weights_ptr"] + 4 * pos) & amask, count)]
                else:
                    assert int(dut.stats_ok.value) == int(base["ok"]), "stats_ok != stats_ptr 4-byte aligned"
                    status, cyc = rng.randrange(1 << 32), rng.randrange(1 << 64)
                    dut.status.value, dut.cycles.value = status, cyc
                    s = base["stats_ptr"]
                    words = [(s, status), ((s + 4) & amask, 0), ((s + 8) & amask, cyc & M32),
                             ((s + 12) & amask, cyc >> 32)]
                getattr(dut, kind).value = 1
                valid_from = c + 1
        await FallingEdge(dut.clk)
        c += 1
        assert c < 20 * total, "writer stalled"
    assert min(commands.values()) >= 3, f"too few commands of a kind: {commands}"
    for name in strobes:
        getattr(dut, name).value = 0
    for _ in range(4):
        await FallingEdge(dut.clk)
        assert int(dut.wr_valid.value) == 0 and int(dut.done.value) == 0, "queue empty at the end"
