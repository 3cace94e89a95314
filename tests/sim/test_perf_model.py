"""Invariants of the SmartSSD-cluster performance model (sim.perf)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import pytest

from sim.perf import Engine, Optimizer, System, get_scenario, simulate, sources
from sim.perf.model import budget_total, selection_seconds
from sim.perf.params import is_assumption
from sim.perf.work import budget, evaluations, plan_class, plan_parts

SCENARIOS = ("fashion-mnist-1", "cifar10-1", "imagenet-8", "web-1b")
DRIVES = (1, 2, 3, 8, 64, 256)
BANDWIDTHS = (
    "storage.p2p_bw", "storage.ssd_read_bw", "storage.drive_link_bw", "storage.host_pcie_bw", "storage.host_nic_bw",
    "trainer.gpu_pcie_bw", "trainer.host_nic_bw",
)
_DATA_LINKS = ("drive_out", "network", "gpu_pcie")


def _with(sc, path: str, value):
    section, name = path.split(".")
    return dataclasses.replace(sc, **{section: dataclasses.replace(getattr(sc, section), **{name: value})})


def _variants(name: str):
    """The scenario as shipped, on the CPU engine, and with each optimizer."""
    sc = get_scenario(name)
    yield sc
    yield dataclasses.replace(sc, engine=Engine.CPU)
    for opt in (Optimizer.NAIVE, Optimizer.LAZY):
        yield _with(sc, "selection.optimizer", opt)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("fraction", (0.01, 0.1, 0.3, 0.9, 1.0))
def test_nessa_never_moves_more_data_than_full(name, fraction):
    for sc in _variants(name):
        sc = _with(sc, "selection.fraction", fraction)
        for d in DRIVES:
            r = simulate(sc, d).results
            full, nessa = r[System.FULL].bytes, r[System.NESSA].bytes
            for link in _DATA_LINKS:
                if sc.engine is Engine.CPU and link == "drive_out":
                    continue  # the CPU engine reads everything off the drives: that is its cost
                assert nessa[link] <= full[link] * (1 + 1e-12), (sc.name, sc.engine, d, link)
            if fraction <= 0.9:  # control traffic (model pushes, summaries) included
                assert r[System.NESSA].bytes["network"] + nessa["control"] <= full["network"], (sc.name, d)
            # The selected subset is what leaves the drives on the FPGA engine.
            if sc.engine is Engine.FPGA:
                assert nessa["drive_out"] == pytest.approx(budget_total(sc.with_drives(d)) * sc.dataset.sample_bytes)


@pytest.mark.parametrize("name", SCENARIOS)
def test_time_is_monotone_in_every_bandwidth(name):
    for sc in _variants(name):
        for d in (1, 8, 256):
            base = simulate(sc, d).results
            for bw in BANDWIDTHS:
                section, field = bw.split(".")
                faster = simulate(_with(sc, bw, getattr(getattr(sc, section), field) * 2.0), d).results
                slower = simulate(_with(sc, bw, getattr(getattr(sc, section), field) * 0.5), d).results
                for s in System:
                    assert faster[s].epoch_s <= base[s].epoch_s * (1 + 1e-12), (name, bw, d, s)
                    assert slower[s].epoch_s >= base[s].epoch_s * (1 - 1e-12), (name, bw, d, s)
                    assert faster[s].select_s <= base[s].select_s * (1 + 1e-12), (name, bw, d, s)


def test_some_bandwidth_matters():
    # The monotonicity test would pass on a model that ignored bandwidth: make sure it does not.
    sc = get_scenario("imagenet-8")
    slow = simulate(_with(sc, "storage.host_nic_bw", 1e8)).results
    base = simulate(sc).results
    assert slow[System.FULL].epoch_s > 10 * base[System.FULL].epoch_s
    assert slow[System.FULL].bottleneck == "storage nic"
    slow_p2p = simulate(_with(_with(sc, "storage.p2p_bw", 1e6), "selection.fraction", 0.1)).results
    assert slow_p2p[System.NESSA].select_s > base[System.NESSA].select_s


@pytest.mark.parametrize("name", SCENARIOS)
def test_more_drives_never_slow_selection(name):
    for sc in _variants(name):
        prev = math.inf
        for d in (1, 2, 3, 4, 5, 8, 12, 16, 32, 64, 100, 128, 256, 512):
            s = simulate(sc, d).results[System.NESSA].select_s
            assert s <= prev * (1 + 1e-9), (name, sc.engine, sc.selection.optimizer, d, prev, s)
            prev = s
    # ... and they do speed it up where the drives do the work.
    sc = get_scenario(name)
    assert simulate(sc, 64).results[System.NESSA].select_s < simulate(sc, 1).results[System.NESSA].select_s / 8


@pytest.mark.parametrize("name", SCENARIOS)
def test_fraction_one_is_full_plus_selection(name):
    for sc in _variants(name):
        sc = _with(sc, "selection.fraction", 1.0)
        for d in (1, 8):
            r = simulate(sc, d).results
            full, nessa = r[System.FULL], r[System.NESSA]
            sel = sum(selection_seconds(sc.with_drives(d), System.NESSA).values())
            assert nessa.stream_s == pytest.approx(full.stream_s, rel=1e-12)
            assert nessa.epoch_s == pytest.approx(full.epoch_s + sel / sc.selection.reselect_every, rel=1e-12)
            assert nessa.select_s == pytest.approx(sel, rel=1e-12) and sel > 0
            assert nessa.bytes["network"] == pytest.approx(full.bytes["network"], rel=1e-12)


def test_subset_speeds_up_a_gpu_bound_epoch():
    sc = get_scenario("cifar10-1")
    r = simulate(sc).results
    assert r[System.FULL].bottleneck == "gpu compute"
    assert r[System.NESSA].stream_s == pytest.approx(r[System.FULL].stream_s * budget_total(sc) / sc.dataset.num_samples)


def test_reselection_period_amortises_selection():
    sc = get_scenario("imagenet-8")
    a = simulate(_with(sc, "selection.reselect_every", 5)).results[System.NESSA]
    b = simulate(_with(sc, "selection.reselect_every", 50)).results[System.NESSA]
    assert a.select_s == pytest.approx(b.select_s)
    assert a.epoch_s - a.stream_s == pytest.approx(10 * (b.epoch_s - b.stream_s))


def test_energy_counts_gpus_and_drives():
    sc = get_scenario("imagenet-8")
    r = simulate(sc).results
    # Idle power is a floor: every device draws at least idle power over the epoch.
    floor = r[System.FULL].epoch_s * (sc.trainer.gpus * sc.trainer.gpu_idle_w + sc.storage.drives * sc.storage.drive_idle_w)
    assert r[System.FULL].energy_j >= floor
    assert r[System.FULL].energy_j <= r[System.FULL].epoch_s * (
        sc.trainer.gpus * sc.trainer.gpu_active_w + sc.storage.drives * sc.storage.drive_active_w)


# -- selection work -------------------------------------------------------------------------
def _count_naive(p: int, k: int) -> int:
    return sum(p - t for t in range(k))


@pytest.mark.parametrize("p,k", [(1, 1), (10, 1), (10, 10), (100, 7), (1000, 100)])
def test_naive_evaluations_count_every_unselected_candidate(p, k):
    assert evaluations(p, k, Optimizer.NAIVE, 0.01) == _count_naive(p, k)
    assert evaluations(p, k, Optimizer.LAZY, 0.01) <= _count_naive(p, k)
    assert evaluations(p, k, Optimizer.STOCHASTIC, 0.01) <= _count_naive(p, k)


def test_stochastic_is_linear_in_class_size():
    e1 = evaluations(10_000, 1_000, Optimizer.STOCHASTIC, 0.01)
    e2 = evaluations(20_000, 2_000, Optimizer.STOCHASTIC, 0.01)
    assert e2 == pytest.approx(2 * e1)
    assert e1 == pytest.approx(10_000 * math.log(100))


def test_plans_cover_the_class_and_respect_the_cap():
    for n in (1, 7, 1000, 6000, 1_000_000):
        for drives in (1, 3, 8, 256):
            pl = plan_class(n, 0.1, drives, 4096)
            assert pl.part <= 4096 and pl.parts * pl.part == pytest.approx(n)
            assert (pl.merge_n > 0) == (pl.parts > 1)
            if pl.parts > 1:
                assert pl.merge_n >= pl.merge_k == budget(n, 0.1)
    assert plan_parts(10, 0.5, 1).merge_n == 0
    with pytest.raises(ValueError, match="parts"):
        plan_parts(10, 0.5, 0)


# -- validation and sources -----------------------------------------------------------------
@pytest.mark.parametrize("path,value,match", [
    ("selection.fraction", 0.0, "selection.fraction"),
    ("selection.fraction", 1.5, "selection.fraction"),
    ("selection.epsilon", 1.0, "selection.epsilon"),
    ("storage.p2p_bw", -1.0, "storage.p2p_bw"),
    ("storage.host_nic_bw", float("nan"), "storage.host_nic_bw"),
    ("trainer.gpus", 0, "trainer.gpus"),
    ("selection.reselect_every", 2.5, "selection.reselect_every"),
    ("storage.storage_hosts", 5, "storage.storage_hosts"),
])
def test_bad_inputs_are_named(path, value, match):
    sc = _with(get_scenario("cifar10-1"), path, value)
    with pytest.raises(ValueError, match=match.replace(".", r"\.")):
        simulate(sc)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_input_has_a_unit_and_a_source(name):
    rows = sources(get_scenario(name))
    assert len(rows) > 40
    for field, _value, unit, source in rows:
        assert unit and source, field
    # The brief's figure is cited, not assumed; the rest say which is which.
    by_name = {r[0]: r for r in rows}
    assert by_name["storage.p2p_bw"][1] == 2.36e9 and "Xilinx" in by_name["storage.p2p_bw"][3]
    assert not is_assumption(by_name["storage.p2p_bw"][3])
    assert any(is_assumption(r[3]) for r in rows)


# -- FPGA costs against the kernels' own models ----------------------------------------------
@pytest.mark.parametrize("n", [64, 300, 1000, 2000])
@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.3])
def test_greedy_cycles_follow_the_rtl_schedule(n, fraction):
    # host/device/rtl/schedule.py replays fl_engine.v exactly (checked against Icarus by the RTL tests).
    import numpy as np

    from host.device.rtl.schedule import MemTiming, run_cycles
    from sim.perf.params import Fpga

    k = budget(n, fraction)
    ids = np.random.default_rng(n).permutation(n)[:k]
    ref = run_cycles(0, n, k, -(-n // 32) * 32, ids, 32, 64, MemTiming(read_gap=2, write_busy=3))
    fp = Fpga(read_gap_cycles=2, write_busy_cycles=3)
    mine = fp.greedy_cycles(n, k, evaluations(n, k, Optimizer.NAIVE, 0.01))
    assert mine == pytest.approx(ref, rel=0.05)


def test_similarity_pass_uses_the_hls_operation_count():
    from host.device.opcounts import DISTANCE_MACS_PER_CYCLE, greedy_op_counts
    from sim.perf.params import Fpga

    fp = Fpga.as_written()
    n, d, k = 2000, 10, 200
    t = fp.part_seconds(n, k, 0.0, d) - fp.greedy_cycles(n, k, 0.0) / fp.clock_hz
    assert t == pytest.approx(greedy_op_counts(n, d, k)["distance_macs"] / (DISTANCE_MACS_PER_CYCLE * fp.clock_hz))


def test_lazy_greedy_is_costed_on_the_hls_kernel_that_runs_it():
    """DeviceFlow runs lazy greedy on nessa_greedy (the RTL engine has no lazy mode): the model
    charges the rows that kernel reads (its own rows_read stat on the emulator) plus its
    upper-bound scans, and so costs lazy above the RTL engine's schedule for the same evaluations."""
    from host.device import emu
    from host.device.flow import DeviceFlow
    from sim.perf.params import Fpga, Optimizer

    rng = np.random.default_rng(5)
    q = rng.integers(0, 16384, (300, 10)).astype(np.int16)
    run = DeviceFlow(emu, emu.default_xclbin(), use_rtl=False).greedy(q, 30, maxd_q=0, mode=0)
    assert run.kernel == "nessa_greedy"
    assert Fpga.hls_lazy_rows(300, run.evaluations, 30) == run.rows_read
    fp = Fpga()
    lazy = fp.part_seconds(300, 30, run.evaluations, 10, Optimizer.LAZY)
    rtl = fp.part_seconds(300, 30, run.evaluations, 10, Optimizer.NAIVE)
    # every re-evaluation and pick scans the 300 upper bounds first
    assert lazy > rtl
    assert (lazy - rtl) * fp.clock_hz >= (run.evaluations - 300 + 30) * 300 - fp.greedy_cycles(300, 30, run.evaluations)
