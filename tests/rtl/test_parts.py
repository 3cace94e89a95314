"""Partitioned selection with the RTL kernel (host/device/rtl/parts.py): the split is GreeDi's
proportional split of host/greedi.py, every part's kernel run (C++ model of the RTL) equals the
golden model bit for bit and the schedule model cycle for cycle, and results map back to the class."""

from __future__ import annotations

import numpy as np
import pytest

from host.device.rtl.cmodel_ctypes import CModel
from host.device.rtl.parts import coverage, part_blocks, part_descs, parts_golden, split_parts
from host.device.rtl.schedule import MemTiming, parts_run_cycles
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
def test_one_run_with_parts_matches_golden_and_schedule(mode):
    """All parts in one kernel run (parts / parts_ptr): each part == the golden model on its block,
    results part after part, cycles == the schedule model; far fewer cycles than the whole class."""
    rng = np.random.default_rng(mode)
    n, k = 300, 30
    sim = make_class("features", n, rng, d=10)
    parts = split_parts(n, k, 128, seed=0xFFFFFFFE, mode=mode)  # seeds wrap: their uint32 pattern
    assert len(parts) == 3
    gold = parts_golden(sim, parts, mode)
    model = CModel(32, 8192)
    descs = [tuple(int(v) for v in d) for d in part_descs(parts)]
    r = model.run_parts(part_blocks(sim, parts), descs, mode=mode)
    assert r.status == 0 and np.array_equal(r.ids, np.concatenate(gold.part_ids))
    assert np.array_equal(r.weights, gold.weights) and gold.weights.sum() == n and len(set(gold.ids.tolist())) == k
    ld = -(-max(len(p.members) for p in parts) // 32) * 32
    assert r.cycles == parts_run_cycles(0, ld, descs, gold.part_ids, 32, 64, mode=mode)
    whole = model.run(sim, k, mode=mode, seed=9, sample_size=parts[0].sample_size)
    assert r.cycles * 4 < whole.cycles * 3
    # a bad descriptor stops the run after the earlier parts (status bit 7), cycles as modelled
    bads = [(descs[1][0], 0) + descs[1][2:], (ld + 1,) + descs[1][1:], (0,) + descs[1][1:]]
    for bad in bads + ([descs[1][:3] + (0,)] if mode == 1 else []):
        d2 = [descs[0], bad, descs[2]]
        r2 = model.run_parts(part_blocks(sim, parts), d2, mode=mode)
        assert r2.status == 1 << 7 and np.array_equal(r2.ids[:parts[0].k], gold.part_ids[0]), bad
        assert r2.ids[parts[0].k] == 0xFFFFFFFF, "nothing written for the bad part"
        assert r2.cycles == parts_run_cycles(0, ld, d2, gold.part_ids, 32, 64, mode=mode)
    # the same run against a 150 ns (30-cycle) DDR read latency, 8 and 2 bursts in flight
    for out in (8, 2):
        r3 = CModel(32, 8192, outstanding=out, read_gap=30, write_busy=40).run_parts(part_blocks(sim, parts), descs,
                                                                                      mode=mode)
        assert np.array_equal(r3.ids, r.ids)
        assert r3.cycles == parts_run_cycles(0, ld, descs, gold.part_ids, 32, 64, mem=MemTiming(30, 40), mode=mode,
                                             outstanding=out)


def test_coverage_is_the_golden_objective():
    sim = make_class("uniform", 50, np.random.default_rng(4))
    g = greedy_fixed(sim, 6)
    assert coverage(sim, g.ids) == g.objective


def test_parts_through_the_emulator():
    """device -> xclbin -> kernel -> buffers -> sync -> one run with the parts -> wait -> check."""
    emu = pytest.importorskip("host.device.emu")
    from host.device.rtl.parts import run_parts

    d = emu.device(0)
    uid = d.load_xclbin(emu.xclbin(emu.default_xclbin()))
    kern = emu.kernel(d, uid, "nessa_fl_rtl", emu.kernel.shared)
    sim = make_class("features", 333, np.random.default_rng(8), d=10)
    parts = split_parts(333, 34, 128, seed=0xFFFFFFF0)  # seeds wrap past 2**32 - 1: the uint32 pattern
    res = run_parts(emu, d, kern, sim, parts)
    gold = parts_golden(sim, parts)
    assert np.array_equal(res.ids, gold.ids) and np.array_equal(res.weights, gold.weights)
    assert res.cycles > 0
