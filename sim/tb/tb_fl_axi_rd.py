"""cocotb bench of fl_axi_rd on a cocotbext-axi RAM: bursts split at MAX_BURST and 4 KiB pages,
data, last and tag of every beat in order, backpressure from the RAM (AR / R pauses) and from
the consumer (out_ready), and no burst left in flight at the end."""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiReadBus
from cocotbext.axi.axi_ram import AxiRamRead

from sim.tb.common import params, pause_pattern, reset, start_clock

MEM = 1 << 16


@cocotb.test()
async def test_jobs(dut):
    p = params()
    data_w, max_burst = int(p["DATA_W"]), int(p["MAX_BURST"])
    mode = p.get("pause", "none")
    nbytes = data_w // 8
    rng = random.Random(data_w + max_burst)
    dut.rst.value = 1
    dut.job_valid.value = 0
    dut.out_ready.value = 1
    ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=MEM)
    ram.log.setLevel(logging.WARNING)
    for i, ch in enumerate((ram.ar_channel, ram.r_channel)):
        gen = pause_pattern(mode, 17 + i)
        if gen is not None:
            ch.set_pause_generator(gen)
    image = bytes(rng.randrange(256) for _ in range(MEM))
    ram.write(0, image)
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)

    bursts = []  # (addr, beats) accepted on AR

    async def watch_ar():
        while True:
            await FallingEdge(dut.clk)
            if int(dut.m_axi_arvalid.value) and int(dut.m_axi_arready.value):
                bursts.append((int(dut.m_axi_araddr.value), int(dut.m_axi_arlen.value) + 1))

    cocotb.start_soon(watch_ar())
    max_beats = min((1 << int(p["BEATS_W"])) - 1, 300)
    total_beats = 0
    for tag in range(25):
        beats = max(1, min(max_beats, rng.choice([1, 2, max_burst, max_burst + 1, rng.randint(1, max_beats)])))
        page = rng.randrange(1, MEM // 4096 - 1) * 4096
        addr = page - rng.choice([nbytes, 2 * nbytes, 0, rng.randrange(0, 4096 // nbytes) * nbytes])
        addr = min(addr, MEM - beats * nbytes) // nbytes * nbytes
        await FallingEdge(dut.clk)
        assert int(dut.job_ready.value) == 1 and int(dut.busy.value) == 0
        dut.job_valid.value, dut.job_addr.value, dut.job_beats.value, dut.job_tag.value = 1, addr, beats, tag
        first = len(bursts)
        got = []
        cycles = 0
        await FallingEdge(dut.clk)
        dut.job_valid.value = 0
        while len(got) < beats:
            ready = 0 if (mode != "none" and rng.random() < 0.3) else 1
            dut.out_ready.value = ready
            if ready and int(dut.out_valid.value):  # taken at the coming rising edge
                got.append((int(dut.out_data.value), int(dut.out_last.value), int(dut.out_tag.value)))
            await FallingEdge(dut.clk)
            cycles += 1
            assert cycles < 60 * beats + 200, f"job {tag} stalled after {len(got)} of {beats} beats"
        dut.out_ready.value = 1
        for i, (data, last, t) in enumerate(got):
            want = int.from_bytes(image[addr + i * nbytes: addr + (i + 1) * nbytes], "little")
            assert data == want, f"job {tag} beat {i}: data mismatch"
            assert last == int(i == beats - 1) and t == tag
        mine = bursts[first:]
        assert sum(b for _, b in mine) == beats, f"job {tag}: bursts {mine} do not cover {beats} beats"
        pos = addr
        for a, b in mine:
            assert a == pos and 1 <= b <= max_burst, f"burst {a:#x}+{b} (max {max_burst})"
            assert a // 4096 == (a + b * nbytes - 1) // 4096, f"burst {a:#x}+{b} crosses a 4 KiB page"
            pos += b * nbytes
        total_beats += beats
    await ClockCycles(dut.clk, 5)
    assert int(dut.busy.value) == 0 and int(dut.err.value) == 0
    assert ram.ar_channel.empty() and ram.r_channel.empty() and ram.r_channel.idle(), "queues not empty"
    assert total_beats > 100
