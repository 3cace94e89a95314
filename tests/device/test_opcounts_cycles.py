"""host.device.opcounts' cycle estimates follow the HLS kernels' PE arrays as written."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fpga_kernels import KERNEL_DIR
from host.device import opcounts as oc
from host.quantize.format import Op


def _defines(path) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^#define (\w+) (\d+)", path.read_text(), re.M)}


def test_constants_mirror_the_kernel_headers():
    pe = _defines(KERNEL_DIR / "include" / "nessa_pe.h")
    greedy = _defines(KERNEL_DIR / "hls" / "nessa_greedy.cpp")
    assert (pe["NF_TILE_OC"], pe["NF_TILE_PX"], pe["NF_XBANKS"], pe["NF_WT_TAPS"], pe["NF_WLOAD_BYTES"]) == (
        oc.TILE_OC, oc.TILE_PX, oc.XBANKS, oc.WT_TAPS, oc.WLOAD_BYTES)
    assert (pe["NF_LIN_LANES"], pe["NF_TAP_DEPTH"], pe["NF_LIN_DEPTH"]) == (oc.LIN_LANES, oc.TAP_DEPTH, oc.LIN_DEPTH)
    assert (pe["NESSA_GREEDY_DVEC"], greedy["NESSA_GREEDY_BLK"], greedy["NESSA_GREEDY_WBEAT"]) == (
        oc.GREEDY_DVEC, oc.GREEDY_BLK, oc.GREEDY_WBEAT)
    # the stride-2 window (2 * TILE_PX consecutive elements) fits the slot banks
    assert 2 * oc.TILE_PX <= oc.XBANKS


def test_conv_cycles_follow_the_pe_array():
    # 32 oc x 32-wide rows, 3x3, 64 in: exactly one tile, two row segments per row
    cyc = oc.layer_cycles(Op.CONV, 64, 32, 32, 32, 32, 32, 3, 1)
    taps = 64 * 9
    load = oc.TILE_OC * -(-taps // oc.WLOAD_BYTES)
    assert cyc == load + 32 * 2 * (1 + taps + oc.TAP_DEPTH + 32)
    macs = 32 * 32 * 32 * taps
    assert oc.CONV_MACS_PER_CYCLE * 0.8 < macs / cyc <= oc.CONV_MACS_PER_CYCLE
    # half the output channels: same cycles less the requantisation, half the MACs
    assert oc.layer_cycles(Op.CONV, 64, 32, 32, 16, 32, 32, 3, 1) == load + 64 * (1 + taps + oc.TAP_DEPTH + 16)
    # stride 3 reads its window in two cycles per tap
    assert oc.layer_cycles(Op.CONV, 8, 30, 30, 8, 10, 10, 3, 3) > oc.layer_cycles(Op.CONV, 8, 20, 20, 8, 10, 10, 3, 2)
    # a layer past the weight tile re-loads its chunks per row segment
    big = oc.layer_cycles(Op.CONV, 1024, 4, 4, 32, 4, 4, 3, 1)
    assert big > 4 * (1024 * 9) + 4 * 2 * oc.TILE_OC * -(-oc.WT_TAPS // oc.WLOAD_BYTES)


def test_linear_and_element_ops():
    assert oc.layer_cycles(Op.LINEAR, 3136, 1, 1, 64, 1, 1, 1) == 64 * (49 + oc.LIN_DEPTH)
    assert oc.layer_cycles(Op.ADD, 16, 32, 32, 16, 32, 32, 1) == 16 * 32 * 32 // oc.TILE_PX
    assert oc.layer_cycles(Op.GAP, 64, 8, 8, 64, 1, 1, 8) == 64 * 2
    assert oc.layer_cycles(Op.MAXPOOL, 16, 28, 28, 16, 14, 14, 2, 2) == 16 * 14 * 1 * (4 + 2)
    with pytest.raises(ValueError, match="opcode"):
        oc.layer_cycles(99, 1, 1, 1, 1, 1, 1, 1)


@pytest.mark.parametrize("arch,shape,rate", [("resnet20", (32, 32, 3), oc.AS_WRITTEN_FEATURE_MACS_PER_CYCLE),
                                             ("small_cnn", (28, 28), 107.5)])
def test_model_rates_behind_the_system_model(arch, shape, rate):
    import torch

    from host.models import build_model
    from host.quantize.export import export_model

    torch.manual_seed(0)
    qm = export_model(build_model(arch, shape, 10).eval(),
                      np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8), shape, arch=arch)
    c = oc.features_op_counts(qm, 3)
    assert c["cycles"] == 3 * c["cycles_per_sample"]
    assert sum(layer["cycles"] for layer in c["layers"]) < c["cycles_per_sample"]
    assert c["macs_per_cycle"] == pytest.approx(rate, abs=0.05)
    assert 1 < c["macs_per_cycle"] < oc.CONV_MACS_PER_CYCLE


def test_distance_cycles():
    g = oc.greedy_op_counts(2000, 64, 200)
    blocks = -(-2000 // 64)
    assert g["distance_cycles"] == blocks * (2000 * 8 + oc.GREEDY_DIST_DEPTH) + 2000 * 64
    assert g["distance_macs"] / g["distance_cycles"] == pytest.approx(oc.DISTANCE_MACS_PER_CYCLE, rel=0.25)
    # d = 10 pads to 16 columns and is bound by the two write beats per row
    small = oc.greedy_op_counts(640, 10, 64)
    assert small["distance_cycles"] == 10 * (640 * 2 + oc.GREEDY_DIST_DEPTH) + 640 * 16
    assert oc.greedy_op_counts(640, 10, 64, maxd_from_data=True)["distance_cycles"] == 2 * small["distance_cycles"]
