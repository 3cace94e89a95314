"""The C++ model of the RTL kernel (fpga_kernels/rtl/cmodel/nessa_fl_rtl.cpp): bit-exact with the
golden model on the same classes the cocotb benches use (and larger ones), the RTL's status
word and cycle count (the schedule model the RTL matches in simulation), and callable through
the emulator's pyxrt-compatible API like any kernel."""

from __future__ import annotations

import numpy as np
import pytest

from host.device.rtl.cmodel_ctypes import CModel
from host.device.rtl.regmap import decode_status, pack_rows
from host.device.rtl.schedule import MemTiming, run_cycles
from host.golden.greedy import greedy_fixed
from host.golden.stochastic import greedy_stochastic_fixed, stochastic_sample_size
from sim.tb.vectors import KINDS, make_class, random_cases

LANES, N_MAX = 32, 8192  # the shipping build the model defaults to


@pytest.fixture(scope="module")
def model():
    return CModel(LANES, N_MAX)


@pytest.mark.parametrize("seed", [7, 21, 3])
def test_same_vectors_as_the_benches(model, seed):
    for kind, sim, k in random_cases(seed, 64, 12):
        r = model.run(sim, k)
        gold = greedy_fixed(sim, k)
        assert r.status == 0, decode_status(r.status)
        assert np.array_equal(r.ids, gold.ids) and np.array_equal(r.gains, gold.gains)
        assert np.array_equal(r.weights, gold.weights)
        ld = pack_rows(sim, LANES)[1]
        assert r.cycles == run_cycles(0, sim.shape[0], k, ld, gold.ids, LANES, 64)  # 4 KiB-aligned rows


@pytest.mark.parametrize("kind", KINDS)
def test_larger_classes(model, kind):
    rng = np.random.default_rng(len(kind))
    n = 333
    sim = make_class(kind, n, rng, d=64)
    k = 34
    r = model.run(sim, k)
    gold = greedy_fixed(sim, k)
    assert r.status == 0 and np.array_equal(r.ids, gold.ids) and np.array_equal(r.gains, gold.gains)
    assert np.array_equal(r.weights, gold.weights) and r.weights.sum() == n
    assert r.cycles == run_cycles(0, n, k, pack_rows(sim, LANES)[1], gold.ids, LANES, 64)


@pytest.mark.parametrize("lanes,n_max", [(4, 64), (8, 128)])
def test_other_builds(lanes, n_max):
    """The model compiled for the cocotb grid's builds agrees with the golden model too."""
    m = CModel(lanes, n_max)
    for kind, sim, k in random_cases(lanes, n_max, 8):
        r = m.run(sim, k)
        gold = greedy_fixed(sim, k)
        assert r.status == 0 and np.array_equal(r.ids, gold.ids) and np.array_equal(r.weights, gold.weights)
        assert r.cycles == run_cycles(0, sim.shape[0], k, pack_rows(sim, lanes)[1], gold.ids, lanes, 64)
    assert m.run(random_cases(0, 8, 3)[2][1], 1, n=n_max + 1, ld=n_max + lanes).status == 1


@pytest.mark.parametrize("seed", [0, 5, 0xFFFFFFFF])
def test_stochastic_mode(model, seed):
    """Mode 1 == host/golden/stochastic.py bit for bit (sample sizes 1, < n, the epsilon default, > n),
    cycles == the schedule model replaying the golden sample."""
    rng = np.random.default_rng(seed & 0xFFFF)
    for kind, sim, k in random_cases(seed & 0xFF, 96, 10):
        n = sim.shape[0]
        for ss in {1, max(1, n // 4), stochastic_sample_size(n, k, 0.01), n + 3, int(rng.integers(1, n + 1))}:
            r = model.run(sim, k, mode=1, seed=seed, sample_size=ss)
            gold = greedy_stochastic_fixed(sim, k, seed, ss)
            where = f"{kind} n={n} k={k} s={ss}"
            assert r.status == 0, (where, decode_status(r.status))
            assert np.array_equal(r.ids, gold.ids) and np.array_equal(r.gains, gold.gains), where
            assert np.array_equal(r.weights, gold.weights), where
            assert r.cycles == run_cycles(0, n, k, pack_rows(sim, LANES)[1], gold.ids, LANES, 64, mode=1,
                                          seed=seed, sample_size=ss), where


@pytest.mark.parametrize("lanes,n_max,bpc,units", [(8, 128, 1, 1), (32, 8192, 8, 3), (4, 64, 2, 17)])
def test_stochastic_draw_builds(lanes, n_max, bpc, units):
    """Other fl_draws builds (RNG_BPC, RNG_UNITS): same picks, cycles == the schedule model of that build."""
    m = CModel(lanes, n_max, rng_bpc=bpc, rng_units=units)
    for kind, sim, k in random_cases(units, min(n_max, 96), 6):
        n = sim.shape[0]
        ss = stochastic_sample_size(n, k, 0.01)
        r = m.run(sim, k, mode=1, seed=units, sample_size=ss)
        gold = greedy_stochastic_fixed(sim, k, units, ss)
        assert r.status == 0 and np.array_equal(r.ids, gold.ids) and np.array_equal(r.weights, gold.weights)
        assert r.cycles == run_cycles(0, n, k, pack_rows(sim, lanes)[1], gold.ids, lanes, 64, mode=1, seed=units,
                                      sample_size=ss, rng_bpc=bpc, rng_units=units), (kind, n, k)


def test_stochastic_large_class_fewer_cycles(model):
    """At the default epsilon and k = 10 %, stochastic mode reads far fewer rows than exact mode."""
    sim = make_class("features", 500, np.random.default_rng(2), d=64)
    k = 50
    ss = stochastic_sample_size(500, k, 0.01)
    st, ex = model.run(sim, k, mode=1, seed=3, sample_size=ss), model.run(sim, k, mode=2)
    gold = greedy_stochastic_fixed(sim, k, 3, ss)
    assert np.array_equal(st.ids, gold.ids) and np.array_equal(st.weights, gold.weights)
    assert np.array_equal(ex.ids, greedy_fixed(sim, k).ids)  # mode 2 (naive) == exact
    assert st.cycles * 5 < ex.cycles


def test_refused_arguments_write_only_stats(model):
    sim = make_class("uniform", 8, np.random.default_rng(0))
    for kw, bit in [(dict(k=0), 1), (dict(k=9), 1), (dict(k=2, n=0), 0), (dict(k=2, n=N_MAX + 1), 0),
                    (dict(k=2, ld=8), 2), (dict(k=2, ld=-32), 2), (dict(k=2, ld=1 << 24), 2),
                    (dict(k=2, mode=3), 5), (dict(k=2, mode=-1), 5), (dict(k=2, mode=1, sample_size=0), 6)]:
        r = model.run(sim, **kw)
        assert r.status >> bit & 1, (kw, r.status)
        assert r.cycles == 3 and r.ids[0] == 0xFFFFFFFF and r.weights[0] == 0xFFFFFFFF


def test_through_the_emulator():
    """device -> xclbin -> kernel -> bos -> sync -> run -> wait -> check, as host code does."""
    emu = pytest.importorskip("host.device.emu")
    d = emu.device(0)
    xb = emu.xclbin(emu.default_xclbin())
    if "nessa_fl_rtl:nessa_fl_rtl_1" not in [ip.get_name() for ip in xb.get_ips()]:
        pytest.fail("the emulator library lacks nessa_fl_rtl (Makefile must compile rtl/cmodel/*.cpp)")
    uid = d.load_xclbin(xb)
    kern = emu.kernel(d, uid, "nessa_fl_rtl", emu.kernel.shared)
    sim = make_class("features", 150, np.random.default_rng(5))
    k = 15
    rows, ld = pack_rows(sim)
    bos = [emu.bo(d, nbytes, emu.bo.normal, kern.group_id(g))
           for g, nbytes in [(0, rows.nbytes), (4, 4 * k), (5, 8 * k), (6, 4 * k), (7, 16)]]
    bos[0].write(rows.view(np.uint8).ravel(), 0)
    bos[0].sync(emu.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, rows.nbytes, 0)
    for mode, seed, ss in [(0, 0, 0), (1, -7, 23)]:  # exact; stochastic (seed as its uint32 pattern)
        run = kern(bos[0], 150, k, ld, bos[1], bos[2], bos[3], bos[4], mode, seed, ss, 0, bos[4])  # parts = 0:
        # one class; parts_ptr is not read then (any buffer will do)
        assert run.wait(10_000) == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED
        out = []
        for b, dt in zip(bos[1:], ["<u4", "<u8", "<u4", "<u8"]):
            b.sync(emu.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE, b.size(), 0)
            out.append(np.frombuffer(b.read(b.size(), 0).tobytes(), dtype=dt))
        gold = greedy_fixed(sim, k) if mode == 0 else greedy_stochastic_fixed(sim, k, seed & 0xFFFFFFFF, ss)
        assert out[3][0] == 0
        assert np.array_equal(out[0], gold.ids) and np.array_equal(out[1], gold.gains)
        assert np.array_equal(out[2], gold.weights)


@pytest.mark.parametrize("lanes,n_max,outstanding,read_gap", [(8, 128, 1, 2), (32, 8192, 8, 30), (4, 64, 3, 9)])
def test_read_master_builds_and_latencies(lanes, n_max, outstanding, read_gap):
    """Builds with other OUTSTANDING (fl_axi_rd bursts in flight) and memories with a longer read
    latency (30 cycles = the 150 ns DDR column): same picks, cycles == the schedule model, both modes."""
    mem = MemTiming(read_gap=read_gap, write_busy=3)
    m = CModel(lanes, n_max, outstanding=outstanding, read_gap=read_gap, write_busy=3)
    for kind, sim, k in random_cases(outstanding + read_gap, min(n_max, 96), 5):
        n, ld = sim.shape[0], pack_rows(sim, lanes)[1]
        ss = stochastic_sample_size(n, k, 0.01)
        for mode, kw in ((0, {}), (1, dict(seed=read_gap, sample_size=ss))):
            r = m.run(sim, k, mode=mode, **kw)
            gold = greedy_fixed(sim, k) if mode == 0 else greedy_stochastic_fixed(sim, k, read_gap, ss)
            assert r.status == 0 and np.array_equal(r.ids, gold.ids) and np.array_equal(r.weights, gold.weights)
            assert r.cycles == run_cycles(0, n, k, ld, gold.ids, lanes, 64, mem=mem, mode=mode,
                                          outstanding=outstanding, **kw), (kind, n, k, mode)


def test_outstanding_hides_the_read_latency():
    """With a 30-cycle read latency, 8 bursts in flight stream the rows: far fewer cycles than one."""
    sim = make_class("features", 120, np.random.default_rng(4), d=10)
    k, ss = 12, stochastic_sample_size(120, 12, 0.01)
    runs = {o: CModel(32, 8192, outstanding=o, read_gap=30).run(sim, k, mode=1, seed=1, sample_size=ss)
            for o in (1, 8)}
    assert np.array_equal(runs[1].ids, runs[8].ids)
    assert runs[8].cycles * 2 < runs[1].cycles
