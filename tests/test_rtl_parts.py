"""Partitioned selection with the RTL kernel (fpga_kernels/rtl/parts.py): the split is GreeDi's
proportional split of host/greedi.py, every part's kernel run (C++ model of the RTL) equals the
golden model bit for bit and the schedule model cycle for cycle, and results map back to the class."""

from __future__ import annotations

import numpy as np
import pytest

from fpga_kernels.rtl.cmodel_ctypes import CModel
from fpga_kernels.rtl.parts import coverage, parts_golden, split_parts
from fpga_kernels.rtl.regmap import pack_rows
from fpga_kernels.rtl.schedule import run_cycles
from host.golden.greedy import greedy_fixed
from host.greedi import split_budget
from sim.tb.vectors import make_class


@pytest.mark.parametrize("n,k,max_part", [(1000, 100, 128), (5000, 500, 128), (7, 7, 3), (130, 1, 64), (64, 5, 64)])
def test_split_is_a_proportional_partition(n, k, max_part):
    parts = split_parts(n, k, max_part, seed=3)
    members = np.concatenate([p.members for p in parts])
    assert sorted(members.tolist()) == list(range(n)) or k < -(-n // max_part)  # parts without a pick drop out
    sizes = [len(p.members) for p in parts]
    assert max(sizes) <= max_part and max(sizes) - min(sizes) <= 1
    assert sum(p.k for p in parts) == k and all(1 <= p.k <= len(p.members) for p in parts)
    assert all(np.all(np.diff(p.members) > 0) for p in parts)
    assert [p.seed for p in parts] == sorted({p.seed for p in parts})
    full = np.array([len(m) for m in np.array_split(np.arange(n), -(-n // max_part))])
    assert [p.k for p in parts] == [int(b) for b in split_budget(k, full) if b > 0]  # host/greedi.py's rule


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="k <= n"):
        split_parts(10, 11, 4)
    with pytest.raises(ValueError, match="max_part"):
        split_parts(10, 2, 0)


@pytest.mark.parametrize("mode", [1, 0])
def test_kernel_per_part_matches_golden_and_schedule(mode):
    rng = np.random.default_rng(mode)
    n, k = 300, 30
    sim = make_class("features", n, rng, d=10)
    parts = split_parts(n, k, 128, seed=9, mode=mode)
    assert len(parts) == 3
    gold = parts_golden(sim, parts, mode)
    model = CModel(32, 8192)
    ids, weights, cycles = [], [], 0
    for p, local in zip(parts, gold.part_ids):
        block = sim[np.ix_(p.members, p.members)]
        r = model.run(block, p.k, mode=mode, seed=p.seed, sample_size=p.sample_size)
        assert r.status == 0 and np.array_equal(r.ids, local)
        assert r.cycles == run_cycles(0, len(p.members), p.k, pack_rows(block, 32)[1], r.ids, 32, 64, mode=mode,
                                      seed=p.seed, sample_size=p.sample_size)
        ids.append(p.members[r.ids])
        weights.append(r.weights)
        cycles += r.cycles
    assert np.array_equal(np.concatenate(ids), gold.ids) and np.array_equal(np.concatenate(weights), gold.weights)
    assert gold.weights.sum() == n and len(set(gold.ids.tolist())) == k
    # parts read p-wide rows: far fewer cycles than the whole class in the same mode
    whole = model.run(sim, k, mode=mode, seed=9, sample_size=parts[0].sample_size)
    assert cycles * 4 < whole.cycles * 3


def test_coverage_is_the_golden_objective():
    sim = make_class("uniform", 50, np.random.default_rng(4))
    g = greedy_fixed(sim, 6)
    assert coverage(sim, g.ids) == g.objective


def test_parts_through_the_emulator():
    """device -> xclbin -> kernel -> buffers -> sync -> one run per part (queued) -> wait -> check."""
    emu = pytest.importorskip("host.device.emu")
    from fpga_kernels.rtl.parts import run_parts

    d = emu.device(0)
    uid = d.load_xclbin(emu.xclbin(emu.default_xclbin()))
    kern = emu.kernel(d, uid, "nessa_fl_rtl", emu.kernel.shared)
    sim = make_class("features", 333, np.random.default_rng(8), d=10)
    parts = split_parts(333, 34, 128, seed=0xFFFFFFF0)  # seeds wrap past 2**32 - 1: the uint32 pattern
    res = run_parts(emu, d, kern, sim, parts)
    gold = parts_golden(sim, parts)
    assert np.array_equal(res.ids, gold.ids) and np.array_equal(res.weights, gold.weights)
    model = CModel(32, 8192)
    assert res.cycles == [model.run(np.ascontiguousarray(sim[np.ix_(p.members, p.members)]), p.k, mode=1,
                                    seed=p.seed, sample_size=p.sample_size).cycles for p in parts]
