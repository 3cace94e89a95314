"""Helpers shared by the cocotb benches: parameters, clock / reset, pause patterns, reports."""

from __future__ import annotations

import itertools
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

__all__ = ["params", "start_clock", "reset", "pause_pattern", "write_report", "PAUSE_MODES"]

#: Names of the AXI handshake patterns each bench runs under.
PAUSE_MODES = ("none", "idle", "backpressure")


def params() -> dict:
    """Bench parameters (HDL parameters plus bench-only options) from the runner."""
    return json.loads(os.environ.get("NESSA_TB_PARAMS", "{}"))


async def start_clock(clk, period_ns: int = 5) -> None:
    """200 MHz clock, the SmartSSD kernel clock the cycle projections assume."""
    cocotb.start_soon(Clock(clk, period_ns, unit="ns").start())
    await RisingEdge(clk)


async def reset(clk, rst, active_high: bool = True, cycles: int = 4) -> None:
    """Synchronous reset for ``cycles`` clocks."""
    rst.value = 1 if active_high else 0
    await ClockCycles(clk, cycles)
    rst.value = 0 if active_high else 1
    await RisingEdge(clk)


def pause_pattern(mode: str, seed: int):
    """Generator of 'pause this cycle' flags: none, idle (sparse stalls) or backpressure (mostly stalled)."""
    if mode == "none":
        return None
    rng = random.Random(seed)
    p = 0.2 if mode == "idle" else 0.6
    return (rng.random() < p for _ in itertools.count())


def write_report(data: dict) -> None:
    """Publish measured figures to the runner (merged over earlier writes of the same run)."""
    path = os.environ.get("NESSA_TB_REPORT")
    if not path:
        return
    old = json.loads(open(path).read()) if os.path.exists(path) else {}
    old.update(data)
    with open(path, "w") as fh:
        json.dump(old, fh)
