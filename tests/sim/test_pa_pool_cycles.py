"""The per-pool cost model (sim/perf/pool.py) against independent counts, and BENCHMARKS.md's
per-pool table against the model (bench/pa_pool_cycles.py), so the table cannot drift."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from host.device.opcounts import TILE_PX
from host.models import build_model
from sim.perf.macs import count_macs
from sim.perf.params import Fpga, Storage
from sim.perf.pool import Speed, feature_model, greedy_cycles_model, plan_pool, pool_cost, read_us, similarity_cycles

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("nessa_bench_pa_pool_cycles", ROOT / "bench" / "pa_pool_cycles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _out(size: int, k: int, pad: int, stride: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _small_cnn_by_hand(chw: tuple[int, int, int]) -> tuple[int, int]:
    """(MACs, [REQUANT_TILE] II-2 cycles) of host.models' SmallCNN from its layer shapes: conv ->
    pool -> conv -> pool -> fc -> head, walked over the module list with the output-size formula."""
    m = build_model("small_cnn", (chw[1], chw[2], chw[0]) if chw[0] == 3 else chw[1:], 10)
    _c, h, w = chw
    macs = requant = 0
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            k, p, s = mod.kernel_size[0], mod.padding[0], mod.stride[0]
            h, w = _out(h, k, p, s), _out(w, k, p, s)
            macs += mod.out_channels * h * w * mod.in_channels * k * k
            requant += h * math.ceil(w / TILE_PX) * mod.out_channels
        elif isinstance(mod, nn.MaxPool2d):
            h, w = h // mod.kernel_size, w // mod.kernel_size
        elif isinstance(mod, nn.Linear):
            macs += mod.in_features * mod.out_features
    return macs, requant


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def models(bench):
    return {(arch, shape): feature_model(bench.export(arch, shape), arch)
            for _label, shape, archs in bench.SAMPLE_TYPES for arch in archs}


def test_feature_stage_against_layer_shapes(models):
    fpga = Fpga()
    plan = plan_pool(1280, 128, 10)
    for shape, chw in (((28, 28), (1, 28, 28)), ((32, 32, 3), (3, 32, 32))):
        fm = models[("small_cnn", shape)]
        macs, requant = _small_cnn_by_hand(chw)
        assert fm.macs_per_sample == macs  # the exported layer program does the model's MACs
        assert fm.requant_extra == requant
        assert fm.sample_bytes == math.prod(chw)
        built = pool_cost(fm, plan, Speed.AS_BUILT, greedy_cycles=0)
        assert built.feature_cycles == 1280 * (fm.cycles_as_written + requant)
        target = pool_cost(fm, plan, Speed.DESIGN_TARGET, greedy_cycles=0)
        assert target.feature_cycles == pytest.approx(1280 * macs / 1968)  # 1,968 DSPs x 2 x 50 %
    assert _small_cnn_by_hand((1, 28, 28))[0] == 16 * 28 * 28 * 9 + 32 * 14 * 14 * 16 * 9 + 32 * 7 * 7 * 64 + 64 * 10
    # ResNet-20 recounted by forward hooks (torch), not from the layer program
    r20 = models[("resnet20", (32, 32, 3))]
    assert r20.macs_per_sample == count_macs(build_model("resnet20", (32, 32, 3), 10), (3, 32, 32))
    # SIMULATION.md's "as built ~210 MAC/cycle" on ResNet-20 (about 8 % over the II-1 cycle model)
    rate = r20.macs_per_sample / r20.cycles_per_sample(Speed.AS_BUILT, fpga)
    assert 205 < rate < 215 and 1.05 < (r20.cycles_as_written + r20.requant_extra) / r20.cycles_as_written < 1.10


def test_pool_plan_read_and_totals(bench):
    assert [(b, p) for _f, b, p in bench.pool_sizes()] == [(128, 1280), (128, 427)]  # round(128 / fraction)
    plan = plan_pool(427, 128, 10)
    assert sum(plan.counts) == 427 and plan.k == 128 and max(plan.counts) - min(plan.counts) == 1
    assert all(abs(k - 128 * n / 427) < 1 for n, k in zip(plan.counts, plan.ks))
    with pytest.raises(ValueError, match="pool"):
        plan_pool(0, 128, 10)
    assert read_us(1280, 784, Storage()) == pytest.approx(1280 * 784 / 2.36e9 * 1e6)
    # similarity at the target: phase 0 + phase 1, 2 * sum n_c^2 d MACs at 1,968 MAC/cycle, plus the
    # one-pick tail: 2 ld + n + 3 (ld / 32 + 24) + 3 n (n = 43: ld = 64; n = 42: ld = 64)
    tail = {43: 128 + 43 + 3 * 26 + 129, 42: 128 + 42 + 3 * 26 + 126}
    assert similarity_cycles(plan, 10, Speed.DESIGN_TARGET, Fpga()) == pytest.approx(
        2 * sum(n * n * 10 for n in plan.counts) / 1968 + sum(tail[n] for n in plan.counts))
    c = pool_cost(bench.FeatureModel("x", 784, 10, 1000, 50, 5), plan, Speed.AS_BUILT, greedy_cycles=1234)
    assert c.total_cycles == 427 * 55 + c.similarity_cycles + 1234
    assert c.ratio == pytest.approx(c.total_cycles / 200e6 * 1e6 / c.read_us)
    with pytest.raises(ValueError, match="greedy_cycles"):
        pool_cost(bench.FeatureModel("x", 784, 10, 1000, 50, 5), plan, Speed.AS_BUILT, greedy_cycles=float("nan"))


def test_greedy_replay_equals_the_cpp_model(bench, tmp_path):
    from host.device.rtl.cmodel_ctypes import CModel
    from host.device.rtl.parts import part_blocks, part_descs, parts_golden

    plan = plan_pool(427, 128, 10)
    g = bench.greedy_measure(plan, Fpga(), None, tmp_path)
    sim, parts = bench._pool_parts(plan)
    cm = CModel(32, 8192, 64, 2, 4, 8, 24, 3).run_parts(part_blocks(sim, parts), [tuple(map(int, d)) for d in
                                                                                   part_descs(parts)], mode=1)
    assert cm.status == 0 and cm.cycles == g["card"] > g["sim_ram"]
    assert np.array_equal(cm.ids, np.concatenate(parts_golden(sim, parts).part_ids))
    assert 0.8 < greedy_cycles_model(plan, Fpga(), 0.01) / g["card"] < 1.0  # the closed form, as reported


def test_benchmarks_table_is_the_model(bench, tmp_path):
    text = (ROOT / "BENCHMARKS.md").read_text()
    start = text.find(bench.HEADING)
    assert start >= 0, "BENCHMARKS.md has no per-pool section: run python bench/pa_pool_cycles.py --write"
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else None]
    rs, _checks, _greedy = bench.rows(None, tmp_path)
    assert bench.table(rs) in section
    assert bench.models_table(rs) in section
    assert bench.summary(rs) in section
