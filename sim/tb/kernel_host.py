"""The host side of ``nessa_fl_rtl`` inside cocotb: DDR model, register programming, a run.

Mirrors what XRT does on a card: buffers in DDR (cocotbext-axi ``AxiRam`` on m_axi_gmem),
arguments written to s_axi_control (``AxiLiteMaster``), ap_start, wait for ap_done (polling
the control register or waiting on the interrupt line), read the results back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam, AxiWriteBus
from cocotbext.axi.axi_ram import AxiRamWrite

from host.device.rtl.regmap import PART_DESC_DTYPE, REG, KernelArgs, pack_rows
from sim.tb.common import pause_pattern
from sim.tb.latency_ram import LatencyRead

__all__ = ["KernelHost", "RunResult", "SIM_BASE"]

SIM_BASE = 0x1_0000  # byte address of the similarity rows in the DDR model
GUARD = 0xA5         # fill byte of the output regions: what the kernel must not touch


@dataclass
class RunResult:
    ids: np.ndarray
    gains: np.ndarray
    weights: np.ndarray
    status: int
    cycles: int
    stats: tuple[int, int]  # {status, cycles} as the kernel wrote them to out_stats_ptr


class KernelHost:
    """DDR + control-bus model around one ``nessa_fl_rtl`` instance."""

    def __init__(self, dut, mem_size: int = 1 << 22, pause: str = "none", seed: int = 0, read_latency: int = 0):
        """``read_latency`` L > 0: reads served by sim/tb/latency_ram.py (first beat L cycles after AR,
        bursts pipelined -- DDR-like) instead of the cocotbext RAM's ~2 cycles; writes stay on
        cocotbext's ``AxiRamWrite`` over the same memory; only pause "none" then."""
        self.dut = dut
        self.clk = dut.ap_clk
        self.lanes = len(dut.m_axi_gmem_rdata) // 16
        self.lat = None
        if read_latency:
            if pause != "none":
                raise ValueError(f"read_latency={read_latency} runs without pauses, got pause={pause!r}")
            self.ram = _LatencyRam(dut, mem_size, read_latency)
            self.lat = self.ram.read_if
        else:
            self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_gmem"), dut.ap_clk, dut.ap_rst_n,
                              reset_active_level=False, size=mem_size)
            # A DDR controller takes many reads outstanding; cocotbext's default of 2 queued ARs would
            # throttle the read master (OUTSTANDING bursts) in a way no DDR does. Unbounded, the RAM
            # follows schedule.py's pipelined-memory rule with read_gap = 2 (pauses aside).
            self.ram.read_if.ar_channel.queue_occupancy_limit = -1
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n,
                                  reset_active_level=False)
        self.set_pause(pause, seed)
        for bus in (self.ram, self.axil):  # per-burst INFO lines cost more than the simulation
            for obj in (bus.write_if, bus.read_if):
                obj.log.setLevel(logging.WARNING)

    def set_pause(self, mode: str, seed: int = 0) -> None:
        """Stall every AXI channel of the DDR model with the named pattern (none / idle / backpressure)."""
        if self.lat is not None:
            return
        chans = [self.ram.read_if.ar_channel, self.ram.read_if.r_channel, self.ram.write_if.aw_channel,
                 self.ram.write_if.w_channel, self.ram.write_if.b_channel]
        for i, ch in enumerate(chans):
            gen = pause_pattern(mode, seed * 10 + i)
            if gen is None:
                ch.clear_pause_generator()
            else:
                ch.set_pause_generator(gen)

    def idle_queues(self) -> bool:
        """True when no AXI transaction is queued or in flight in the bus models."""
        r, w = self.ram.read_if, self.ram.write_if
        reads = r.empty() if self.lat is not None else (r.ar_channel.empty() and r.r_channel.empty()
                                                        and r.r_channel.idle())
        return (reads and w.aw_channel.empty() and w.w_channel.empty() and w.b_channel.empty() and w.b_channel.idle()
                and self.axil.write_if.aw_channel.empty() and self.axil.read_if.ar_channel.empty())

    def layout(self, n: int, k: int, ld: int, mode: int = 0, seed: int = 0, sample_size: int = 0) -> KernelArgs:
        """Buffers: rows at SIM_BASE, then ids, gains, weights, stats, each with a guard gap."""
        end = SIM_BASE + n * ld * 2
        ids = (end + 0x100) & ~0x3F
        gains = (ids + 4 * k + 0x100) & ~0x3F
        weights = (gains + 8 * k + 0x100) & ~0x3F
        stats = (weights + 4 * k + 0x100) & ~0x3F
        return KernelArgs(SIM_BASE, n, k, ld, ids, gains, weights, stats, mode, seed, sample_size)

    def load(self, sim: np.ndarray, k: int, align: int | None = None, mode: int = 0, seed: int = 0,
             sample_size: int = 0) -> KernelArgs:
        rows, ld = pack_rows(sim, align or self.lanes)
        args = self.layout(sim.shape[0], k, ld, mode, seed, sample_size)
        self.ram.write(SIM_BASE, rows.tobytes())
        self.ram.write(args.out_ids_ptr, bytes([GUARD]) * (args.out_stats_ptr + 16 + 64 - args.out_ids_ptr))
        return args

    def load_parts(self, blocks: list[np.ndarray], descs: list[tuple[int, int, int, int]], mode: int = 0) -> KernelArgs:
        """A class split into parts, for one run: the blocks' rows one after the other at SIM_BASE
        (one ld for all), the descriptors {n, k, seed, sample_size} after them, then the outputs
        (sum of k elements each). ``n`` / ``k`` of the returned args are the totals (the kernel
        ignores them with parts >= 1; results() reads k words)."""
        ld = -(-max(b.shape[0] for b in blocks) // self.lanes) * self.lanes
        rows = np.concatenate([np.pad(b, ((0, 0), (0, ld - b.shape[1]))) for b in blocks])
        n, k = rows.shape[0], sum(int(d[1]) for d in descs)
        table = np.array([tuple(int(v) & 0xFFFFFFFF for v in d) for d in descs], dtype=PART_DESC_DTYPE)
        desc_ptr = (SIM_BASE + rows.nbytes + 0x100) & ~0x3F
        base = self.layout(0, k, 0)  # output placement relative to the end of the descriptors
        shift = ((desc_ptr + table.nbytes + 0x100) & ~0x3F) - base.out_ids_ptr
        args = KernelArgs(SIM_BASE, n, k, ld, base.out_ids_ptr + shift, base.out_gains_ptr + shift,
                          base.out_weights_ptr + shift, base.out_stats_ptr + shift, mode, 0, 0, len(descs), desc_ptr)
        self.ram.write(SIM_BASE, rows.astype(np.uint16).tobytes())
        self.ram.write(desc_ptr, table.tobytes())
        self.ram.write(args.out_ids_ptr, bytes([GUARD]) * (args.out_stats_ptr + 16 + 64 - args.out_ids_ptr))
        return args

    async def program(self, args: KernelArgs) -> None:
        for off, val in args.words():
            await self.axil.write_dword(off, val)

    async def start(self) -> None:
        await self.axil.write_dword(REG["control"], 1)

    async def wait_done(self, poll_gap: int = 64, limit: int = 50_000_000) -> None:
        """Poll the control register until ap_done (clear-on-read) is seen."""
        waited = 0
        while True:
            ctrl = await self.axil.read_dword(REG["control"])
            if ctrl & 0b10:
                assert ctrl & 0b100, f"ap_idle must be set with ap_done (control={ctrl:#x})"
                return
            await ClockCycles(self.clk, poll_gap)
            waited += poll_gap
            assert waited < limit, "kernel did not finish"

    async def wait_interrupt(self, limit: int = 50_000_000) -> None:
        for _ in range(limit):
            await RisingEdge(self.clk)
            if self.dut.interrupt.value == 1:
                return
        raise AssertionError("no interrupt")

    async def results(self, args: KernelArgs) -> RunResult:
        k = args.k
        ids = np.frombuffer(self.ram.read(args.out_ids_ptr, 4 * k), dtype="<u4").astype(np.int64)
        gains = np.frombuffer(self.ram.read(args.out_gains_ptr, 8 * k), dtype="<u8").astype(np.uint64)
        weights = np.frombuffer(self.ram.read(args.out_weights_ptr, 4 * k), dtype="<u4").astype(np.int64)
        status = await self.axil.read_dword(REG["status"])
        lo = await self.axil.read_dword(REG["cycles"])
        hi = await self.axil.read_dword(REG["cycles"] + 4)
        st = np.frombuffer(self.ram.read(args.out_stats_ptr, 16), dtype="<u8")
        return RunResult(ids, gains, weights, status, lo | hi << 32, (int(st[0]), int(st[1])))

    def guards_intact(self, args: KernelArgs) -> bool:
        """Bytes between and after the output arrays still hold the guard pattern."""
        k = args.k
        spans = [(args.out_ids_ptr + 4 * k, args.out_gains_ptr), (args.out_gains_ptr + 8 * k, args.out_weights_ptr),
                 (args.out_weights_ptr + 4 * k, args.out_stats_ptr), (args.out_stats_ptr + 16, args.out_stats_ptr + 80)]
        return all(self.ram.read(a, b - a) == bytes([GUARD]) * (b - a) for a, b in spans)

    async def run(self, sim: np.ndarray, k: int, use_irq: bool = False, mode: int = 0, seed: int = 0,
                  sample_size: int = 0) -> tuple[KernelArgs, RunResult]:
        args = self.load(sim, k, mode=mode, seed=seed, sample_size=sample_size)
        await self.program(args)
        await self.start()
        if use_irq:
            await self.wait_interrupt()
        else:
            await self.wait_done()
        return args, await self.results(args)


class _LatencyRam:
    """AxiRam look-alike: cocotbext's write side and a sim/tb/latency_ram.py read side on one memory."""

    def __init__(self, dut, size: int, latency: int):
        self.write_if = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi_gmem"), dut.ap_clk, dut.ap_rst_n,
                                    reset_active_level=False, size=size)
        self.read_if = LatencyRead(dut, "m_axi_gmem", dut.ap_clk, dut.ap_rst_n, self.write_if, latency,
                                   reset_active_level=False)
        self.read_if.log = logging.getLogger("latency_ram")

    def read(self, address: int, length: int) -> bytes:
        return self.write_if.read(address, length)

    def write(self, address: int, data) -> None:
        self.write_if.write(address, data)
