"""Open-source synthesis of the RTL engine: Yosys maps the smallest build of fl_engine (the engine
without its AXI masters and control registers) to UltraScale+ cells (bench/synth.py does every
build of nessa_fl_rtl for BENCHMARKS.md). Needs Debian's yosys (.ci/run installs it)."""

from __future__ import annotations

import importlib.util
import re
import sys

from sim.rtl_runner import REPO_ROOT

#: The smallest legal build: LANES 2, N_MAX 2 * LANES rounded to the benches' 64, the narrowest
#: gain (16 + log2 N_MAX) and address, one remainder unit.
SMALLEST = {"LANES": 2, "N_MAX": 64, "GAIN_W": 22, "ADDR_W": 32, "RNG_UNITS": 1}
#: Yosys messages that are no defect: ABC's note on a combinational network, and BRAM ports
#: narrowed to the address bits a memory uses.
_BENIGN = (r"ABC: Warning: The network is combinational", r"Warning: Resizing cell port ")


def _bench():
    spec = importlib.util.spec_from_file_location("nessa_bench_synth", REPO_ROOT / "bench" / "synth.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve the module by name
    spec.loader.exec_module(mod)
    return mod


def test_smallest_engine_maps_to_ultrascale_plus_cells():
    synth = _bench()
    r = synth.synthesize("fl_engine", SMALLEST, timeout_s=300)  # raises when yosys or `check -assert` fails
    assert not r.generic_cells(), f"unmapped cells or latches: {r.generic_cells()}"
    assert r.luts > 100 and r.ffs > 100 and r.carry > 0
    # the cover / pool / table memories are inferred as RAM, not spread over registers
    assert r.lutram + r.ramb18 + r.ramb36 > 0
    assert "Replacing memory" not in r.log
    warnings = [line for line in r.log.splitlines() if "Warning" in line
                and not any(re.search(b, line) for b in _BENIGN)]
    assert not warnings, "\n".join(warnings[:20])
    assert r.dsp >= 1  # the row-address multiply j * row_bytes maps to DSP48E2 slices
