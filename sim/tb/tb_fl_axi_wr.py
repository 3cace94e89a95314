"""cocotb bench of fl_axi_wr on a cocotbext-axi RAM: single-word writes land on exactly their four
bytes (strobes), under AW / W / B pauses; the master idles with nothing in flight at the end."""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiWriteBus
from cocotbext.axi.axi_ram import AxiRamWrite

from sim.tb.common import params, pause_pattern, reset, start_clock

MEM = 1 << 14


@cocotb.test()
async def test_words(dut):
    p = params()
    mode = p.get("pause", "none")
    rng = random.Random(int(p["DATA_W"]))
    dut.rst.value = 1
    dut.req_valid.value = 0
    ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=MEM)
    ram.log.setLevel(logging.WARNING)
    for i, ch in enumerate((ram.aw_channel, ram.w_channel, ram.b_channel)):
        gen = pause_pattern(mode, 30 + i)
        if gen is not None:
            ch.set_pause_generator(gen)
    model = bytearray(rng.randrange(256) for _ in range(MEM))
    ram.write(0, bytes(model))
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    for i in range(120):
        addr = rng.randrange(0, MEM // 4) * 4
        word = rng.randrange(1 << 32)
        await FallingEdge(dut.clk)
        waited = 0
        while not int(dut.req_ready.value):
            await FallingEdge(dut.clk)
            waited += 1
            assert waited < 500, "write master stuck"
        dut.req_valid.value, dut.req_addr.value, dut.req_data.value = 1, addr, word
        await FallingEdge(dut.clk)
        dut.req_valid.value = 0
        model[addr:addr + 4] = word.to_bytes(4, "little")
        if rng.random() < 0.3:
            await ClockCycles(dut.clk, rng.randint(1, 4))
    for _ in range(500):
        await FallingEdge(dut.clk)
        if int(dut.idle.value):
            break
    assert int(dut.idle.value) == 1 and int(dut.err.value) == 0
    await ClockCycles(dut.clk, 3)
    assert ram.read(0, MEM) == bytes(model), "memory differs from the model (wrong bytes or strobes)"
    assert ram.aw_channel.empty() and ram.w_channel.empty() and ram.b_channel.empty() and ram.b_channel.idle()
