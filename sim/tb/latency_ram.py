"""An AXI4 read slave with a fixed read latency, for the benches that model real DDR.

cocotbext-axi's ``AxiRamRead`` answers a burst about two cycles after its AR; DDR behind a
Vitis shell takes ~150 ns (30 cycles at 200 MHz) but pipelines: bursts queue up and their data
streams back to back. This model does exactly that, with one ID (data in AR order):

* ARREADY is always high (optionally paused by a pause generator, like cocotbext's channels);
* burst b accepted on AR in cycle ``a_b`` has its first beat on R in cycle
  ``max(a_b + latency, last beat of burst b-1 + 1)``, then one beat per cycle while RREADY is
  high (RVALID holds while RREADY is low, as AXI requires).

That is the rule ``host/device/rtl/schedule.py`` uses for ``MemTiming(read_gap=latency)``; with
``latency=2`` it is also how the cocotbext RAM behaves for the kernel's reads. The data comes
from ``mem.read(addr, nbytes)`` (e.g. an ``AxiRamWrite`` sharing the same bus's write side).
"""

from __future__ import annotations

from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

__all__ = ["LatencyRead"]


class LatencyRead:
    """Read channels (AR, R) of ``prefix`` on ``dut`` served from ``mem`` after ``latency`` cycles."""

    def __init__(self, dut, prefix: str, clk, rst, mem, latency: int, reset_active_level: bool = True,
                 ar_pause=None):
        if latency < 1:
            raise ValueError(f"latency must be >= 1 cycle, got {latency}")
        self._sig = {name: getattr(dut, f"{prefix}_{name}") for name in
                     ("arvalid", "arready", "araddr", "arlen", "arsize", "rvalid", "rready", "rdata", "rresp",
                      "rlast", "rid")}
        self.clk, self.rst, self.mem, self.latency = clk, rst, mem, latency
        self.rst_level = 1 if reset_active_level else 0
        self.nbytes = len(self._sig["rdata"]) // 8
        self.ar_pause = ar_pause
        self.bursts: deque = deque()   # (first-beat cycle, addr, beats) not yet fully sent
        self.accepted = []             # (AR cycle, addr, beats) of every burst, for the benches
        self.beats = []                # cycle of every R beat handed over
        self._sig["arready"].value = 0
        self._sig["rvalid"].value = 0
        self._sig["rid"].value = 0
        self._sig["rresp"].value = 0
        cocotb.start_soon(self._run())

    def empty(self) -> bool:
        """No burst accepted and not yet fully answered."""
        return not self.bursts

    async def _run(self) -> None:
        s = self._sig
        cycle = 0
        sent = 0             # beats of the head burst handed over
        prev_end = -1        # cycle of the previous burst's last beat
        ready_next = 1
        while True:
            await RisingEdge(self.clk)
            cycle += 1       # the edge ending cycle ``cycle - 1``; values read now are that cycle's
            if int(self.rst.value) == self.rst_level:
                self.bursts.clear()
                sent, prev_end = 0, -1
                s["arready"].value = 0
                s["rvalid"].value = 0
                continue
            c = cycle - 1    # the cycle whose handshakes this edge completes
            if int(s["arvalid"].value) and int(s["arready"].value):
                beats = int(s["arlen"].value) + 1
                self.accepted.append((c, int(s["araddr"].value), beats))
                self.bursts.append([c + self.latency, int(s["araddr"].value), beats])
            if int(s["rvalid"].value) and int(s["rready"].value):
                self.beats.append(c)
                sent += 1
                if sent == self.bursts[0][2]:
                    self.bursts.popleft()
                    sent, prev_end = 0, c
            # drive cycle ``cycle``
            if self.ar_pause is not None:
                ready_next = 0 if next(self.ar_pause) else 1
            s["arready"].value = ready_next
            if self.bursts:
                start, addr, beats = self.bursts[0]
                if sent == 0 and cycle >= max(start, prev_end + 1):
                    self.bursts[0][0] = cycle          # first beat goes out now (stays valid until taken)
                if cycle >= self.bursts[0][0] or sent > 0:
                    a = addr + sent * self.nbytes
                    s["rdata"].value = int.from_bytes(bytes(self.mem.read(a, self.nbytes)), "little")
                    s["rlast"].value = int(sent == beats - 1)
                    s["rvalid"].value = 1
                    continue
            s["rvalid"].value = 0
