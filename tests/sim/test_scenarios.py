"""The named scenarios: their derived inputs, a regression table, and the break-even search."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sim.perf import System, get_scenario, scenario_names, simulate, sweep
from sim.perf.macs import model_macs, param_bytes
from sim.perf.report import BREAK_EVEN_KNOBS, break_even, format_break_even, format_table
from sim.perf import scenarios as S

# (scenario, drives, full s/epoch, gpu-select s/epoch, nessa s/epoch, nessa select s, nessa network B/epoch)
# Hand checks: FM full = 60,000 x 1e-5 s (GPU-bound); ImageNet full at 8 drives = 1,281,167 / 2,700 / 8;
# web-1b full on 1 drive = 1e9 x 12,288 B / 2.36 GB/s (SSD-bound); NeSSA network = the 10% subset.
REGRESSION = [
    ("fashion-mnist-1", 1, 0.6, 0.0764168, 0.0837764, 0.475528, 4.704e+06),
    ("fashion-mnist-1", 4, 0.6, 0.0764168, 0.0634342, 0.0686846, 4.704e+06),
    ("cifar10-1", 1, 2, 0.238623, 0.469903, 5.39807, 1.536e+07),
    ("cifar10-1", 4, 2, 0.238623, 0.265754, 1.31507, 1.536e+07),
    ("imagenet-8", 1, 81.7167, 12.3303, 674.156, 13318.6, 1.94181e+10),
    ("imagenet-8", 8, 59.3133, 6.97727, 89.1876, 1664.31, 1.94181e+10),
    ("imagenet-8", 32, 59.3133, 6.97727, 26.7776, 416.107, 1.94181e+10),
    ("web-1b", 1, 5206.78, 784.966, 22633.7, 442260, 1.2288e+12),
    ("web-1b", 256, 781.25, 95.0953, 161.738, 1672.26, 1.2288e+12),
]


@pytest.mark.parametrize("name,drives,full,gpu_sel,nessa,select,net", REGRESSION)
def test_regression_table(name, drives, full, gpu_sel, nessa, select, net):
    r = simulate(get_scenario(name), drives).results
    assert r[System.FULL].epoch_s == pytest.approx(full, rel=1e-4)
    assert r[System.GPU_SELECT].epoch_s == pytest.approx(gpu_sel, rel=1e-4)
    assert r[System.NESSA].epoch_s == pytest.approx(nessa, rel=1e-4)
    assert r[System.NESSA].select_s == pytest.approx(select, rel=1e-4)
    assert r[System.NESSA].bytes["network"] == pytest.approx(net, rel=1e-4)


def test_hand_checked_figures():
    fm = simulate(get_scenario("fashion-mnist-1")).results[System.FULL]
    assert fm.epoch_s == pytest.approx(60_000 * 1e-5) and fm.bottleneck == "gpu compute"
    web = simulate(get_scenario("web-1b"), 1).results[System.FULL]
    assert web.epoch_s == pytest.approx(1e9 * 12_288 / 2.36e9) and web.bottleneck == "ssd read"
    im = simulate(get_scenario("imagenet-8")).results[System.FULL]
    assert im.epoch_s == pytest.approx(1_281_167 / 2700 / 8)


def test_required_scenarios_exist_and_sweep():
    names = scenario_names()
    for n in ("fashion-mnist-1", "cifar10-1", "imagenet-8", "web-1b"):
        assert n in names
    web = get_scenario("web-1b")
    assert web.drive_counts[0] == 1 and web.drive_counts[-1] == 256
    assert get_scenario("imagenet-8").storage.drives == 8
    assert get_scenario("fashion-mnist-1").storage.drives == get_scenario("cifar10-1").storage.drives == 1
    with pytest.raises(KeyError, match="known:"):
        get_scenario("no-such")


@pytest.mark.parametrize("arch,shape,classes,macs,nbytes", [
    ("small_cnn", (28, 28), 10, S.SMALL_CNN_28_MACS, S.SMALL_CNN_28_BYTES),
    ("resnet20", (32, 32, 3), 10, S.RESNET20_32_MACS, S.RESNET20_32_BYTES),
    ("resnet20", (64, 64, 3), 1000, S.RESNET20_64_C1000_MACS, S.RESNET20_64_C1000_BYTES),
])
def test_model_figures_are_counted_from_host_models(arch, shape, classes, macs, nbytes):
    assert model_macs(arch, shape, classes) == macs
    assert param_bytes(arch, shape, classes) == nbytes


def test_resnet20_count_matches_the_literature():
    # He et al. 2016 give ~41 M multiply-adds for ResNet-20 on CIFAR-10.
    assert 40e6 < S.RESNET20_32_MACS < 42e6


def test_capacity_flag():
    web = get_scenario("web-1b")
    assert web.with_drives(1).over_capacity and not web.with_drives(4).over_capacity
    table = format_table(web, sweep(dataclasses.replace(web, drive_counts=(1, 4))))
    lines = table.splitlines()
    assert "over capacity" in lines[3] and "over capacity" not in lines[4]


@pytest.mark.parametrize("name", ["cifar10-1", "imagenet-8"])
def test_break_even_is_where_the_speedup_crosses_one(name):
    sc = get_scenario(name)
    knob, _label, lo, hi = BREAK_EVEN_KNOBS[0]  # feature MACs on the drive
    be = break_even(sc, sc.storage.drives, knob, System.FULL, lo, hi)
    assert be.value is not None and be.pays_below
    section, field = knob.split(".")
    at = lambda v: simulate(dataclasses.replace(sc, **{section: dataclasses.replace(getattr(sc, section), **{field: v})}))
    assert at(be.value * 0.9).speedup(System.FULL) > 1 > at(be.value * 1.1).speedup(System.FULL)
    text = format_break_even(sc, sc.storage.drives)
    assert "feature MACs/sample" in text and "storage-host NIC" in text


def test_nessa_pays_against_full_data_where_the_drives_can_keep_up():
    # The shape of the result the docs state (SIMULATION.md): tiny models on one drive pay,
    # ResNet-50 features on the KU15P need >= 16 drives to beat streaming everything.
    assert simulate(get_scenario("fashion-mnist-1")).speedup(System.FULL) > 3
    im = get_scenario("imagenet-8")
    assert simulate(im, 8).speedup(System.FULL) < 1 < simulate(im, 16).speedup(System.FULL)


def test_this_machine_scenario_reads_the_committed_calibration():
    from sim.calibrate import CALIBRATION_FILE

    cal = json.loads(CALIBRATION_FILE.read_text())
    sc = get_scenario("this-machine")
    assert sc.trainer.train_s_per_sample == cal["measured"]["train_s_per_sample"]
    assert sc.storage.host_nic_bw == cal["measured"]["stream_bps"]
    r = simulate(sc).results
    assert r[System.NESSA].epoch_s > 0


@pytest.mark.parametrize("arch,shape,macs", [
    ("small_cnn", (28, 28), S.SMALL_CNN_28_MACS),
    ("resnet20", (32, 32, 3), S.RESNET20_32_MACS),
])
def test_feature_macs_equal_the_hls_kernels_operation_count(arch, shape, macs):
    # The FPGA feature kernel's own count (host.device.opcounts over the exported int8 program).
    import numpy as np
    import torch

    from host.device.opcounts import features_op_counts
    from host.models import build_model
    from host.quantize.export import export_model

    torch.manual_seed(0)
    model = build_model(arch, shape, 10).eval()
    calib = np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8)
    qm = export_model(model, calib, shape, arch=arch)
    assert features_op_counts(qm, 1)["macs_per_sample"] == macs


def test_kernels_as_written_are_slower_than_the_design_target():
    from host.device.opcounts import AS_WRITTEN_FEATURE_MACS_PER_CYCLE
    from sim.perf.params import Fpga

    sc = get_scenario("cifar10-1")
    slow = dataclasses.replace(sc, fpga=Fpga.as_written())
    # the opcounts cycle estimate of nessa_features' PE array on ResNet-20, at 200 MHz
    assert Fpga.as_written().macs_per_s == AS_WRITTEN_FEATURE_MACS_PER_CYCLE * 200e6
    a = simulate(sc).results[System.NESSA].select_s
    b = simulate(slow).results[System.NESSA].select_s
    assert 3 * a < b < 20 * a  # design target 1,968 MAC/cycle vs 227.5 effective


def test_compare_demo_reads_metrics(tmp_path):
    from sim.calibrate import compare_demo, predict_run

    sc = get_scenario("this-machine")
    for strategy, epochs, wall in (("full", 2, 100.0), ("nessa", 6, 40.0)):
        d = tmp_path / strategy
        d.mkdir()
        rec = {"run": strategy, "strategy": strategy, "epoch": epochs, "wall_s": wall, "selection_s": 1.0}
        (d / "metrics.jsonl").write_text(json.dumps({**rec, "epoch": 1}) + "\n" + json.dumps(rec) + "\n")
    rows = {r["strategy"]: r for r in compare_demo(sc, tmp_path)}
    assert set(rows) == {"full", "nessa"}
    full = rows["full"]
    assert full["epochs"] == 2 and full["measured_wall_s"] == 100.0
    assert full["predicted_wall_s"] == pytest.approx(predict_run(sc, "full", 2))
    assert full["error"] == pytest.approx((full["predicted_wall_s"] - 100.0) / 100.0)
    # nessa pays ceil(6 / R) selections on top of its subset epochs; serial >= pipelined.
    assert rows["nessa"]["predicted_serial_wall_s"] >= rows["nessa"]["predicted_wall_s"]
    assert predict_run(sc, "nessa", 6) > predict_run(sc, "random", 6)


def test_simulation_md_tables_match_the_model():
    # SIMULATION.md's tables are generated (python -m sim.perf.markdown --update SIMULATION.md):
    # they must not drift from the code.
    from pathlib import Path

    from sim.perf.markdown import NAMES, as_written_markdown, hidden_markdown, inputs_markdown, results_markdown

    text = (Path(__file__).resolve().parents[2] / "SIMULATION.md").read_text()
    assert results_markdown("cifar10-1") in text
    assert inputs_markdown(NAMES) in text
    assert as_written_markdown(NAMES) in text
    assert hidden_markdown() in text
