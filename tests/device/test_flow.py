"""One host flow for every runtime: the same pyxrt call sequence against the emulator and against
the API-faithful stand-in, equal results, and the P2P read path over a real Arrow store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.device import emu
from tests.device import standin
from host.device.flow import DeviceError, DeviceFlow
from host.device.p2p import shard_runs, store_features
from tests.device.recorder import Recorder
from host.golden.qforward import qforward
from host.models import build_model
from host.quantize.export import export_model


@pytest.fixture(scope="module")
def qmodel():
    torch.manual_seed(0)
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)
    return export_model(build_model("small_cnn", (8, 8), 5).eval(), x, (8, 8))


def _session(rt, tmp_path):
    rec = Recorder(rt)
    if rt is emu:
        return rec, DeviceFlow(rec, emu.default_xclbin())
    path = tmp_path / "nessa.xclbin"  # the stand-in only checks that the file exists, as XRT opens it
    path.write_bytes(b"xclbin2\0")
    return rec, DeviceFlow(rec, str(path))


def _workload(flow, qm, rng_seed=3):
    rng = np.random.default_rng(rng_seed)
    x = rng.integers(0, 256, (37, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 5, 37).astype(np.int32)
    f = flow.features(qm, x, y, embedding=True, batch_size=16)
    q = f.features[y == y[0]] if (y == y[0]).sum() > 3 else f.features
    g0 = flow.greedy(q, 3, maxd_q=0, mode=0)
    g1 = flow.greedy(q, 2, maxd_q=40000, mode=1, seed=-5, sample_size=2)
    return x, y, f, g0, g1


def test_same_call_sequence_and_results_on_emulator_and_standin(qmodel, tmp_path):
    rec_e, flow_e = _session(emu, tmp_path)
    rec_s, flow_s = _session(standin, tmp_path)
    x, y, fe, ge0, ge1 = _workload(flow_e, qmodel)
    _, _, fs, gs0, gs1 = _workload(flow_s, qmodel)
    assert rec_e.calls == rec_s.calls
    apis = [api for api, _ in rec_e.calls]
    # device -> xclbin -> load -> kernel -> buffers -> sync -> run -> wait -> sync back -> read
    assert apis[:5] == ["device", "xclbin", "device.load_xclbin", "xclbin.get_ips", "kernel"]
    # 3 feature batches; lazy greedy on nessa_greedy; stochastic = nessa_greedy's similarity rows
    # + nessa_fl_rtl over them
    assert apis.count("kernel()") == 3 + 1 + 2
    assert ge0.kernel == "nessa_greedy" and ge1.kernel == "nessa_fl_rtl"
    assert apis.count("run.wait") >= apis.count("kernel()")  # wait(timeout_ms) slices
    assert all(args == (1000,) for a, args in rec_e.calls if a == "run.wait")
    assert all(len(args) == 3 for a, args in rec_e.calls if a == "bo.sync")  # (direction, size, offset)
    first_run = apis.index("kernel()")
    assert "bo.sync" in apis[:first_run] and apis[first_run + 1] == "run.wait"
    scratch = [s for a, s in rec_e.calls if a == "bo" and "device_only" in s]
    assert len(scratch) == 2  # the similarity matrix of each greedy run never leaves the card
    assert not [s for a, s in rec_e.calls if a == "bo" and "host_only" in s]
    assert np.array_equal(fe.features, fs.features) and np.array_equal(fe.embedding, fs.embedding)
    ref = qforward(qmodel, x, y)
    assert np.array_equal(fe.features, ref.features)
    for a, b in ((ge0, gs0), (ge1, gs1)):
        assert np.array_equal(a.result.ids, b.result.ids) and np.array_equal(a.result.weights, b.result.weights)
        assert a.result.objective == b.result.objective and a.maxd_q == b.maxd_q


@pytest.mark.parametrize("n,d,k,maxd_q,mode,seed,ss", [
    (37, 5, 6, 0, 2, 0, 1),          # n not a multiple of 32: padded with copies of member 0; naive
    (64, 3, 10, 0, 2, 0, 1),         # naive == exact
    (45, 8, 7, 20000, 1, -3, 9),     # stochastic, a given bound, a negative seed (uint32 pattern)
    (1, 2, 1, 0, 1, 0, 1),
    (40, 4, 5, 0, 1, 7, 40),         # stochastic with the whole class as the sample
])
def test_greedy_through_the_rtl_engine_equals_the_hls_kernel(n, d, k, maxd_q, mode, seed, ss):
    """DeviceFlow routes greedy through nessa_fl_rtl (the xclbin holds it): same picks, weights,
    gains and bound as nessa_greedy alone -- and as the golden model."""
    from host.golden.nessa_greedy import nessa_greedy_ref

    rng = np.random.default_rng(n * 7 + d)
    q = rng.integers(-3000, 3000, (n, d)).astype(np.int16)
    rtl = DeviceFlow(emu, emu.default_xclbin())
    hls = DeviceFlow(emu, emu.default_xclbin(), use_rtl=False)
    assert "nessa_fl_rtl" in rtl.kernels and rtl.rtl_greedy_available(n, mode) and not hls.rtl_greedy_available(n, mode)
    a = rtl.greedy(q, k, maxd_q=maxd_q, mode=mode, seed=seed, sample_size=ss)
    b = hls.greedy(q, k, maxd_q=maxd_q, mode=mode, seed=seed, sample_size=ss)
    assert a.kernel == "nessa_fl_rtl" and b.kernel == "nessa_greedy" and a.cycles > 0
    gold, m = nessa_greedy_ref(q, k, maxd_q, mode, seed & 0xFFFFFFFF, ss)
    for r in (a, b):
        assert np.array_equal(r.result.ids, gold.ids) and np.array_equal(r.result.weights, gold.weights)
        assert np.array_equal(r.result.gains, gold.gains) and r.result.objective == gold.objective
        assert r.maxd_q == m
    if mode != 1:
        assert a.evaluations == k * n - k * (k - 1) // 2


def test_classes_beyond_the_rtl_tables_run_on_the_hls_kernel():
    from host.device.flow import RTL_N_MAX

    flow = DeviceFlow(emu, emu.default_xclbin())
    assert flow.rtl_greedy_available(RTL_N_MAX, 1) and not flow.rtl_greedy_available(RTL_N_MAX + 1, 1)
    # lazy greedy has no RTL mode: it stays on nessa_greedy whatever the size
    assert not flow.rtl_greedy_available(100, 0) and flow.rtl_greedy_available(100, 2)
    q = np.random.default_rng(3).integers(-900, 900, (50, 3)).astype(np.int16)
    assert flow.greedy(q, 5, mode=0).kernel == "nessa_greedy"


def test_kernel_status_is_checked(qmodel):
    flow = DeviceFlow(emu, emu.default_xclbin())
    q = np.zeros((4, 2), np.int16)
    with pytest.raises(DeviceError, match="maxd_q"):
        flow.greedy(q, 2, maxd_q=70000)
    with pytest.raises(DeviceError, match="k out of range"):
        flow.greedy(q, 5)
    bad = qmodel.program.copy()
    bad[9] = 7  # more slots than the kernel has: the host format check is bypassed on purpose
    qm = type(qmodel).__new__(type(qmodel))
    qm.program, qm.weights, qm.info = bad, qmodel.weights, {}
    with pytest.raises(DeviceError, match="status 4"):
        flow.features(qm, np.zeros((2, 8, 8), np.uint8), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="bytes each"):
        flow.features(qmodel, np.zeros((2, 9, 9), np.uint8), np.zeros(2, np.int32))


def test_p2p_read_path_over_an_arrow_store(qmodel, tmp_path):
    from storage_service.ingest import write_store

    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (3000, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 5, 3000).astype(np.int32)
    st = write_store(tmp_path / "s", x, y, name="t", shard_bytes=64 * 1000, batch_bytes=64 * 256)
    runs = shard_runs(st)
    assert len(runs) >= 2 and sum(len(r.runs) for r in runs) >= 4
    for sr in runs:  # the offsets point at the sample bytes inside the shard files
        raw = sr.path.read_bytes()
        first = 0
        for off, cnt in sr.runs:
            ids = np.arange(sr.first_id + first, sr.first_id + first + cnt)
            assert raw[off:off + cnt * 64] == x[ids].tobytes()
            first += cnt
    rec = Recorder(emu)
    flow = DeviceFlow(rec, emu.default_xclbin())
    out = store_features(flow, qmodel, st, embedding=True)
    ref = qforward(qmodel, x, y)
    assert np.array_equal(out.features, ref.features) and np.array_equal(out.embedding, ref.embedding)
    p2p = [s for a, s in rec.calls if a == "bo" and "p2p" in s]
    assert len(p2p) == sum(len(r.runs) for r in runs)
    assert [a for a, _ in rec.calls].count("bo.map") == len(p2p)
