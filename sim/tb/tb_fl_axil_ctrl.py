"""cocotb bench of fl_axil_ctrl: the ap_ctrl_hs register semantics Vitis/XRT rely on.

The bench plays the kernel (answers ap_start with ap_done/ap_ready pulses) and the host
(cocotbext-axi AxiLiteMaster, optionally with idle / backpressure on its channels).
"""

from __future__ import annotations

import logging

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from host.device.rtl.regmap import REG
from sim.tb.common import params, pause_pattern, reset, start_clock


async def _kernel(dut, runs: list, busy_cycles: int = 20):
    """Idle until ap_start; then 'run' for busy_cycles and pulse ap_done + ap_ready."""
    dut.ap_idle.value = 1
    while True:
        await FallingEdge(dut.clk)
        if int(dut.ap_start.value):
            dut.ap_idle.value = 0
            runs.append(1)
            await ClockCycles(dut.clk, busy_cycles, rising=False)
            dut.ap_done.value, dut.ap_ready.value = 1, 1
            await FallingEdge(dut.clk)
            dut.ap_done.value, dut.ap_ready.value = 0, 0
            dut.ap_idle.value = 1


@cocotb.test()
async def test_registers(dut):
    p = params()
    mode = p.get("pause", "none")
    dut.rst.value = 1
    dut.ap_done.value = dut.ap_ready.value = 0
    dut.ap_idle.value = 1
    dut.status.value = 0x305
    dut.cycles.value = 0x1234_5678_9ABC_DEF0
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)
    axil.write_if.log.setLevel(logging.WARNING)
    axil.read_if.log.setLevel(logging.WARNING)
    chans = [axil.write_if.aw_channel, axil.write_if.w_channel, axil.write_if.b_channel,
             axil.read_if.ar_channel, axil.read_if.r_channel]
    for i, ch in enumerate(chans):
        gen = pause_pattern(mode, 50 + i)
        if gen is not None:
            ch.set_pause_generator(gen)
    await start_clock(dut.clk)
    await reset(dut.clk, dut.rst)
    runs: list = []
    cocotb.start_soon(_kernel(dut, runs))

    # arguments: full words, read back, and byte-strobed partial writes
    vals = {off: 0x1111_1111 * (i + 1) & 0xFFFF_FFFF for i, off in enumerate(range(0x10, 0x48, 4))}
    for off, v in vals.items():
        await axil.write_dword(off, v)
    for off, v in vals.items():
        assert await axil.read_dword(off) == (0 if off == 0x24 else v), f"register {off:#x}"
    await axil.write(REG["n"] + 1, b"\xAB")  # one byte lane
    vals[REG["n"]] = (vals[REG["n"]] & ~0xFF00) | 0xAB00
    assert await axil.read_dword(REG["n"]) == vals[REG["n"]]
    assert int(dut.n.value) == vals[REG["n"]]
    assert int(dut.sim_ptr.value) == vals[0x14] << 32 | vals[0x10]
    assert int(dut.out_stats_ptr.value) == vals[0x44] << 32 | vals[0x40]
    assert await axil.read_dword(REG["status"]) == 0x305
    assert await axil.read_dword(REG["cycles"]) == 0x9ABC_DEF0
    assert await axil.read_dword(REG["cycles"] + 4) == 0x1234_5678
    assert await axil.read_dword(0x7C) == 0, "unmapped reads 0"
    # the stochastic-mode arguments appended after the read-only words
    new = {REG["mode"]: 1, REG["seed"]: 0xDEAD_BEEF, REG["sample_size"]: 0x0001_2345, REG["parts"]: 40,
           REG["parts_ptr"]: 0x8765_4320, REG["parts_ptr"] + 4: 0x0000_00AB}
    for off, v in new.items():
        await axil.write_dword(off, v)
    for reg in ("status", "cycles"):
        await axil.write_dword(REG[reg], 0)  # read-only: ignored
    assert await axil.read_dword(REG["status"]) == 0x305 and await axil.read_dword(REG["cycles"]) == 0x9ABC_DEF0
    for off, v in new.items():
        assert await axil.read_dword(off) == v, f"register {off:#x}"
    assert (int(dut.mode.value), int(dut.seed.value), int(dut.sample_size.value), int(dut.parts.value)) == \
        tuple(new.values())[:4]
    assert int(dut.parts_ptr.value) == 0xAB_8765_4320
    assert await axil.read_dword(0x64) == 0, "0x64 (between parts and parts_ptr) is unmapped"

    # ap_ctrl_hs handshake
    assert await axil.read_dword(REG["control"]) == 0b0100
    await axil.write_dword(REG["ier"], 0b11)
    await axil.write_dword(REG["gie"], 1)
    await axil.write_dword(REG["control"], 1)
    while not int(dut.interrupt.value):
        await RisingEdge(dut.clk)
    assert len(runs) == 1
    ctrl = await axil.read_dword(REG["control"])
    assert ctrl == 0b1110, f"done + idle + ready, start cleared: {ctrl:#b}"
    assert await axil.read_dword(REG["control"]) == 0b0100, "ap_done / ap_ready are clear-on-read"
    assert await axil.read_dword(REG["isr"]) == 0b11
    await axil.write_dword(REG["isr"], 0b01)  # toggle-on-write
    assert await axil.read_dword(REG["isr"]) == 0b10 and int(dut.interrupt.value) == 1
    await axil.write_dword(REG["isr"], 0b10)
    assert int(dut.interrupt.value) == 0
    await axil.write_dword(REG["gie"], 0)

    # auto_restart keeps ap_start high across ap_ready: the kernel runs again by itself
    await axil.write_dword(REG["control"], 0b1000_0001)
    while len(runs) < 3:
        await RisingEdge(dut.clk)
    assert await axil.read_dword(REG["control"]) & 0b1000_0001 == 0b1000_0001
    await axil.write_dword(REG["control"], 0)  # auto_restart off; ap_start drops at the next ap_ready
    for _ in range(200):
        await RisingEdge(dut.clk)
        if not int(dut.ap_start.value):
            break
    assert int(dut.ap_start.value) == 0
    await ClockCycles(dut.clk, 30)
    settled = len(runs)
    await ClockCycles(dut.clk, 60)
    assert len(runs) == settled, "kernel restarted after auto_restart was cleared"
    assert int(dut.interrupt.value) == 0, "GIE off: no interrupt"
    await ClockCycles(dut.clk, 5)
    for ch in chans:
        assert ch.empty(), "AXI-Lite queues not empty at the end"
