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
    assert apis[:4] == ["device", "xclbin", "device.load_xclbin", "kernel"]
    assert apis.count("kernel()") == apis.count("run.wait") == 3 + 2  # 3 feature batches, 2 greedy runs
    first_run = apis.index("kernel()")
    assert "bo.sync" in apis[:first_run] and apis[first_run + 1] == "run.wait"
    scratch = [s for a, s in rec_e.calls if a == "bo" and "device_only" in s]
    assert len(scratch) == 2  # the similarity matrix of each greedy run never leaves the card
    assert np.array_equal(fe.features, fs.features) and np.array_equal(fe.embedding, fs.embedding)
    ref = qforward(qmodel, x, y)
    assert np.array_equal(fe.features, ref.features)
    for a, b in ((ge0, gs0), (ge1, gs1)):
        assert np.array_equal(a.result.ids, b.result.ids) and np.array_equal(a.result.weights, b.result.weights)
        assert a.result.objective == b.result.objective and a.maxd_q == b.maxd_q


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
