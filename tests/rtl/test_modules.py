"""cocotb benches of every sub-module of the RTL kernel, on Icarus, over a parameter grid and
AXI / stream handshake patterns (none, idle, backpressure). Each case is one simulator run
(sim/tb/tb_<module>.py); the benches end by checking their queues are empty."""

from __future__ import annotations

import pytest

from sim.rtl_runner import BenchFailed, Simulator, run_bench

CASES = [
    ("fl_lane", {"SIM_W": 4}, {}),
    ("fl_lane", {"SIM_W": 16}, {}),
    ("fl_add_tree", {"N": 2, "W": 1, "TAG_W": 3}, {"pause": "none"}),
    ("fl_add_tree", {"N": 8, "W": 16, "TAG_W": 8}, {"pause": "idle"}),
    ("fl_add_tree", {"N": 32, "W": 16, "TAG_W": 12}, {"pause": "backpressure"}),
    ("fl_row_acc", {"IN_W": 21, "OUT_W": 40, "TAG_W": 8}, {"pause": "idle"}),
    ("fl_row_acc", {"IN_W": 8, "OUT_W": 8, "TAG_W": 2}, {"pause": "none"}),  # wraps: mod 2**OUT_W
    ("fl_argmax", {"VAL_W": 36, "IDX_W": 10, "AUX_W": 10}, {}),
    ("fl_argmax", {"VAL_W": 2, "IDX_W": 3, "AUX_W": 1}, {}),
    ("fl_urem", {"NUM_W": 32, "DEN_W": 14, "BPC": 2}, {"pause": "idle"}),
    ("fl_urem", {"NUM_W": 32, "DEN_W": 21, "BPC": 8}, {"pause": "none"}),
    ("fl_urem", {"NUM_W": 8, "DEN_W": 3, "BPC": 1}, {"pause": "idle"}),
    ("fl_draws", {"N_MAX": 64, "BPC": 2, "UNITS": 4}, {"pause": "idle"}),
    ("fl_draws", {"N_MAX": 16, "BPC": 8, "UNITS": 1}, {"pause": "none"}),
    ("fl_draws", {"N_MAX": 128, "BPC": 1, "UNITS": 7}, {"pause": "backpressure"}),
    ("fl_draws", {"N_MAX": 32, "BPC": 2, "UNITS": 32}, {"pause": "none"}),
    ("fl_pool", {"N_MAX": 64, "BPC": 2, "UNITS": 4}, {"pause": "none"}),
    ("fl_pool", {"N_MAX": 16, "BPC": 8, "UNITS": 1}, {"pause": "idle"}),
    ("fl_pool", {"N_MAX": 128, "BPC": 1, "UNITS": 7}, {"pause": "backpressure"}),
    ("fl_pool", {"N_MAX": 2, "BPC": 4, "UNITS": 32}, {"pause": "none"}),
    ("fl_results", {"N_MAX": 8192, "ADDR_W": 64}, {"pause": "none"}),
    ("fl_results", {"N_MAX": 64, "ADDR_W": 32}, {"pause": "idle"}),
    ("fl_results", {"N_MAX": 2, "ADDR_W": 40}, {"pause": "backpressure"}),
    ("fl_sdp_ram", {"DEPTH": 16, "WIDTH": 68}, {}),
    ("fl_sdp_ram", {"DEPTH": 256, "WIDTH": 13}, {}),
    ("fl_axi_rd", {"DATA_W": 512, "MAX_BURST": 64, "BEATS_W": 9, "TAG_W": 5, "OUTSTANDING": 8}, {"pause": "backpressure"}),
    ("fl_axi_rd", {"DATA_W": 64, "MAX_BURST": 256, "BEATS_W": 10, "TAG_W": 5, "OUTSTANDING": 1}, {"pause": "idle"}),
    ("fl_axi_rd", {"DATA_W": 32, "MAX_BURST": 4, "BEATS_W": 8, "TAG_W": 5, "ADDR_W": 32, "OUTSTANDING": 3},
     {"pause": "none", "latency": 30}),
    ("fl_axi_rd", {"DATA_W": 512, "MAX_BURST": 64, "BEATS_W": 9, "TAG_W": 5, "OUTSTANDING": 8},
     {"pause": "none", "latency": 30}),
    ("fl_axi_rd", {"DATA_W": 256, "MAX_BURST": 16, "BEATS_W": 9, "TAG_W": 4, "OUTSTANDING": 1},
     {"pause": "none", "latency": 5}),
    ("fl_axi_rd", {"DATA_W": 128, "MAX_BURST": 8, "BEATS_W": 9, "TAG_W": 3, "OUTSTANDING": 2},
     {"pause": "backpressure", "latency": 7}),
    ("fl_axi_rd", {"DATA_W": 64, "MAX_BURST": 2, "BEATS_W": 6, "TAG_W": 5, "OUTSTANDING": 64},
     {"pause": "idle", "latency": 12}),
    ("fl_arg_check", {"LANES": 2, "N_MAX": 64}, {}),
    ("fl_arg_check", {"LANES": 32, "N_MAX": 8192}, {}),
    ("fl_arg_check", {"LANES": 8, "N_MAX": 1 << 20}, {}),
    ("fl_axi_wr", {"DATA_W": 512}, {"pause": "backpressure"}),
    ("fl_axi_wr", {"DATA_W": 32, "ADDR_W": 32}, {"pause": "idle"}),
    ("fl_axil_ctrl", {}, {"pause": "none"}),
    ("fl_axil_ctrl", {"C_ADDR_W": 12}, {"pause": "backpressure"}),
    ("fl_datapath", {"LANES": 4, "SIM_W": 16, "N_MAX": 64, "GAIN_W": 22, "TAG_W": 6}, {"pause": "idle"}),
    ("fl_datapath", {"LANES": 32, "SIM_W": 16, "N_MAX": 128, "GAIN_W": 64, "TAG_W": 7}, {"pause": "backpressure"}),
    ("fl_datapath", {"LANES": 2, "SIM_W": 5, "N_MAX": 16, "GAIN_W": 9, "TAG_W": 4}, {"pause": "none"}),
    ("fl_engine", {"LANES": 4, "N_MAX": 64, "GAIN_W": 22, "ADDR_W": 64, "RNG_UNITS": 2}, {"pause": "idle"}),
    ("fl_engine", {"LANES": 16, "N_MAX": 64, "GAIN_W": 40, "ADDR_W": 32, "RNG_BPC": 8}, {"pause": "backpressure"}),
]


@pytest.mark.parametrize("module,hdl_params,tb_params", CASES,
                         ids=[f"{m}-{'-'.join(f'{k}{v}' for k, v in h.items())}-{t.get('pause', '')}{t.get('latency', '')}"
                              for m, h, t in CASES])
def test_module_bench(module, hdl_params, tb_params):
    res = run_bench(module, f"sim.tb.tb_{module}", hdl_params, tb_params=tb_params, simulator=Simulator.ICARUS)
    assert res.tests >= 1 and res.failed == 0


@pytest.mark.parametrize("module,bad,msg", [
    ("fl_add_tree", {"N": 6}, "must be a power of two"),
    ("fl_datapath", {"LANES": 4, "N_MAX": 64, "GAIN_W": 21}, "GAIN_W=21"),
    ("fl_axi_rd", {"MAX_BURST": 512}, "MAX_BURST=512"),
    ("fl_axi_rd", {"OUTSTANDING": 0}, "OUTSTANDING=0"),
    ("fl_urem", {"BPC": 3}, "BPC=3"),
    ("fl_arg_check", {"LANES": 32, "N_MAX": 32}, "N_MAX=32"),
    ("fl_engine", {"RNG_BPC": 16}, "BPC=16"),
    ("fl_engine", {"RNG_UNITS": 33}, "RNG_UNITS=33"),
    ("fl_draws", {"UNITS": 33}, "UNITS=33"),
    ("fl_pool", {"BPC": 3}, "fl_pool: BPC=3"),
    ("fl_results", {"ADDR_W": 16}, "fl_results: ADDR_W=16"),
    ("nessa_fl_rtl", {"LANES": 4, "C_M_AXI_GMEM_DATA_WIDTH": 128}, "must equal 16*LANES"),
])
def test_bad_parameters_stop_elaboration(module, bad, msg):
    """A bad parameter stops the simulation at time 0 with a message naming it."""
    with pytest.raises(BenchFailed) as err:
        run_bench(module, "sim.tb.tb_elab", bad, simulator=Simulator.ICARUS)
    assert msg in str(err.value)
