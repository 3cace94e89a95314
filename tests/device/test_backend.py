"""The EMU backend behind host.select / gradient_features, input checks, op counts, build cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import host
from host.backends import Backend, load
from host.device.backend import bind, choose_frac
from host.device.build import kernel_sources, library_path
from host.device.opcounts import features_op_counts, greedy_op_counts
from host.models import build_model


def _softmax_feats(rng, n, c=10):
    p = rng.dirichlet(np.ones(c) * 0.3, n).astype(np.float32)
    y = rng.integers(0, c, n)
    p[np.arange(n), y] -= 1
    return p, y


def test_select_routes_through_the_kernels_and_matches_cpu():
    rng = np.random.default_rng(0)
    f, y = _softmax_feats(rng, 1500, 3)
    y = rng.integers(0, 3, 1500)
    s_emu = host.select(f, y, 0.1, backend="emu")
    s_cpu = host.select(f, y, 0.1, backend="cpu")
    assert len(s_emu.ids) == len(s_cpu.ids)
    assert abs(s_emu.objective / s_cpu.objective - 1) < 1e-3
    overlap = len(set(s_emu.ids.tolist()) & set(s_cpu.ids.tolist())) / len(s_cpu.ids)
    assert overlap > 0.9
    assert abs(float(s_emu.weights.sum()) - len(s_emu.ids)) < 1e-2  # normalised to |S| (one global factor)
    for c in range(3):  # each class's weights stand for its members, as on the CPU
        m_e, m_c = y[s_emu.ids] == c, y[s_cpu.ids] == c
        assert abs(float(s_emu.weights[m_e].sum()) - float(s_cpu.weights[m_c].sum())) < 1e-3
    s_st = host.select(f, y, 0.1, backend="emu", optimizer="stochastic", seed=3)
    assert s_st.objective <= s_emu.objective * (1 + 1e-9) and s_st.objective > 0.95 * s_emu.objective
    assert np.array_equal(s_st.ids, host.select(f, y, 0.1, backend="emu", optimizer="stochastic", seed=3).ids)


def test_backend_registry_binds_device_backends():
    emu_be = load(Backend.EMU)
    assert emu_be is bind(Backend.EMU) and emu_be.runtime == "emu"
    assert load("xrt").runtime == "xrt"
    with pytest.raises(RuntimeError, match="pyxrt"):
        load("xrt").greedy(np.zeros((3, 2), np.float32), 1)


def test_greedy_input_errors():
    be = bind(Backend.EMU)
    x = np.random.default_rng(1).random((20, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="k must be"):
        be.greedy(x, 0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        be.greedy(x, 2, optimizer="fast")
    with pytest.raises(ValueError, match="max_dist"):
        be.greedy(x, 2, max_dist=-1.0)
    with pytest.raises(ValueError, match="exceeds the greedy kernel"):
        be.greedy(np.zeros((40000, 2), np.float32), 2)
    with pytest.raises(ValueError, match="NaN"):
        be.greedy(np.full((4, 2), np.nan, np.float32), 2)


def test_wide_features_are_centred_and_scaled():
    rng = np.random.default_rng(2)
    x = (rng.normal(0, 50, (200, 8)) + 1000).astype(np.float32)  # far from the Q1.14 range
    frac, xc = choose_frac(x, None)
    assert frac < 14 and np.abs(xc.mean(0)).max() < 1e-6
    ids, w, obj = bind(Backend.EMU).greedy(x, 20, optimizer="lazy", seed=0, epsilon=0.01, max_dist=None)
    from host import _cpu_backend as cpu

    ids_c, _, obj_c = cpu.greedy(x, 20, optimizer="lazy", seed=0, epsilon=0.01, max_dist=None)
    assert abs(obj / obj_c - 1) < 0.01 and w.sum() == 200


def test_features_backend_checks_and_embedding_outer_product():
    torch.manual_seed(0)
    model = build_model("small_cnn", (8, 8), 4).eval()
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (50, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 4, 50)
    be = bind(Backend.EMU)
    g = be.features(model, x, y, sample_shape=(8, 8), batch_size=16, embedding=False)
    ge = be.features(model, x, y, sample_shape=(8, 8), batch_size=16, embedding=True)
    assert g.shape == (50, 4) and ge.shape == (50, 4 * 64)
    ref = host.gradient_features(model, x, y, sample_shape=(8, 8), embedding=True)
    assert np.abs(ge - ref).max() < 0.05 * max(1.0, np.abs(ref).max())
    with pytest.raises(ValueError, match="uint8"):
        be.features(model, x.astype(np.float32), y, sample_shape=(8, 8), batch_size=16, embedding=False)
    with pytest.raises(ValueError, match="labels must be in"):
        be.features(model, x, y + 4, sample_shape=(8, 8), batch_size=16, embedding=False)
    with pytest.raises(ValueError, match="labels must be"):
        be.features(model, x, y[:3], sample_shape=(8, 8), batch_size=16, embedding=False)


def test_emu_features_leave_the_model_in_training_mode():
    # gradient_features restores the model's mode on the CPU backend; the emu export must too
    torch.manual_seed(1)
    model = build_model("small_cnn", (8, 8), 4).train()
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 4, 20)
    host.gradient_features(model, x, y, sample_shape=(8, 8), backend="emu")
    assert model.training


def test_op_counts_follow_the_kernel():
    from host.device.flow import DeviceFlow
    from host.device import emu

    rng = np.random.default_rng(4)
    p, _ = _softmax_feats(rng, 300)
    q = np.rint(p * 16384).astype(np.int16)
    # nessa_greedy's own (lazy) counts: greedy_op_counts models the HLS kernel
    run = DeviceFlow(emu, emu.default_xclbin(), use_rtl=False).greedy(q, 30, maxd_q=0, mode=0)
    c = greedy_op_counts(300, 10, 30, evaluations=run.evaluations - 300, maxd_from_data=True)
    assert c["distance_macs"] == 2 * 300 * 300 * 10 and c["gain_evals"] < 29 * 299
    assert c["gain_ops"] == c["gain_evals"] * 300
    assert c["bytes_read"] >= (run.rows_read) * 600  # every similarity row read is 2n bytes
    naive = greedy_op_counts(300, 10, 30)
    assert naive["gain_evals"] == 29 * 299 > c["gain_evals"]
    with pytest.raises(ValueError):
        greedy_op_counts(10, 2, 11)
    torch.manual_seed(0)
    from host.quantize.export import export_model

    qm = export_model(build_model("small_cnn", (28, 28), 10).eval(), rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), (28, 28))
    f = features_op_counts(qm, 1000)
    # conv1 28*28*16*9 + conv2 14*14*32*16*9 + fc 1568*64 + head 64*10
    assert f["macs_per_sample"] == 28 * 28 * 16 * 9 + 14 * 14 * 32 * 16 * 9 + 1568 * 64 + 64 * 10
    assert f["macs"] == 1000 * f["macs_per_sample"] and f["bytes_read"] > 1000 * 784


def test_library_is_cached_by_source_digest(tmp_path, monkeypatch):
    lib = library_path()
    assert lib.is_file() and lib.parent.name and any(s.name == "nessa_greedy.cpp" for s in kernel_sources())
    assert library_path() == lib  # second call: no rebuild
    monkeypatch.setenv("NESSA_KERNEL_CACHE", str(tmp_path))
    fresh = library_path()  # a new cache root builds again (what a changed source digest does too)
    assert fresh.parent.parent == tmp_path and fresh.parent.name == lib.parent.name and fresh.is_file()


def test_store_features_read_p2p_equal_array_features(tmp_path):
    from storage_service.ingest import write_store

    torch.manual_seed(0)
    model = build_model("small_cnn", (8, 8), 3).eval()
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (700, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 700)
    st = write_store(tmp_path / "s", x, y, name="t", shard_bytes=64 * 300, batch_bytes=64 * 100)
    be = bind(Backend.EMU)
    from_store = be.store_features(model, st, embedding=True)
    from_arrays = be.features(model, x, y, sample_shape=(8, 8), batch_size=256, embedding=True)
    assert np.array_equal(from_store, from_arrays) and from_store.shape == (700, 3 * 64)
