"""The emulator offers pyxrt's API (the parts NeSSA uses) with the call shapes of XRT 2.11 / 2.12
(what SmartSSD platforms ship), refuses every newer form, and is loud where pyxrt is silent.
Signatures transcribed from XRT src/python/pybind11/src/pyxrt.cpp at tags 202110.2.11.634 and
202120.2.12.427."""

from __future__ import annotations

import numpy as np
import pytest

from host.device import emu
from tests.device import standin
from host.device.flow import DeviceError, DeviceFlow
from host.device.loader import count_devices, load_runtime

TO, FROM = emu.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, emu.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE

#: (object, member) pairs the host uses, with pyxrt's enum members.
ENUMS = {
    "xclBOSyncDirection": ["XCL_BO_SYNC_BO_TO_DEVICE", "XCL_BO_SYNC_BO_FROM_DEVICE"],
    "ert_cmd_state": ["ERT_CMD_STATE_COMPLETED", "ERT_CMD_STATE_ERROR"],
}
BO_FLAGS = ["normal", "cacheable", "device_only", "host_only", "p2p", "svm"]


@pytest.fixture(scope="module")
def dev():
    d = emu.device(0)
    return d, d.load_xclbin(emu.xclbin(emu.default_xclbin()))


@pytest.mark.parametrize("rt", [emu, standin], ids=["emu", "standin"])
def test_module_surface_matches_pyxrt(rt):
    for cls in ("device", "xclbin", "kernel", "bo", "run", "uuid"):
        assert isinstance(getattr(rt, cls), type), cls
    for enum_name, members in ENUMS.items():
        for m in members:
            assert hasattr(getattr(rt, enum_name), m)
    for f in BO_FLAGS:
        assert hasattr(rt.bo, f), f  # pyxrt exports bo.flags values onto bo (export_values)
    assert hasattr(rt.kernel, "shared") and hasattr(rt.kernel, "exclusive")
    for meth in ("write", "read", "sync", "map", "size"):
        assert callable(getattr(rt.bo, meth))
    assert callable(rt.device.load_xclbin) and callable(rt.kernel.group_id) and callable(rt.run.wait)


def test_call_shapes_follow_pyxrt_overloads(dev):
    d, uuid = dev
    assert isinstance(uuid, emu.uuid) and isinstance(uuid.to_string(), str)
    assert d.load_xclbin(emu.default_xclbin()).to_string() == uuid.to_string()  # load_xclbin(str) overload
    k = emu.kernel(d, uuid, "nessa_greedy", emu.kernel.shared)
    assert k.group_id(0) == 0 and k.group_id(5) == 0
    b = emu.bo(d, 64, emu.bo.normal, k.group_id(0))
    b.write(np.arange(16, dtype=np.int32), 0)
    with pytest.raises(TypeError):
        b.write(np.arange(4, dtype=np.int32))  # seek is required in pyxrt
    with pytest.raises(TypeError):
        b.read(8)  # skip is required
    with pytest.raises(TypeError):
        b.sync(TO, 64)  # (dir) or (dir, size, offset), nothing in between
    with pytest.raises(TypeError):
        b.sync(0, 64, 0)  # an int is not an xclBOSyncDirection
    b.sync(TO, 64, 0)
    r = b.read(64, 0)
    assert r.dtype == np.int8 and r.view(np.int32).tolist() == list(range(16))
    m = b.map()
    assert isinstance(m, memoryview) and m.nbytes == 64 and b.size() == 64
    sub = emu.bo(b, 16, 16)  # sub-buffer overload: (parent, size, offset)
    assert sub.read(16, 0).view(np.int32).tolist() == [4, 5, 6, 7] and sub.address() == b.address() + 16


def test_scalars_must_be_32_bit_ints(dev):
    d, uuid = dev
    k = emu.kernel(d, uuid, "nessa_greedy", emu.kernel.shared)
    bos = [emu.bo(d, 4096, emu.bo.normal, 0) for _ in range(6)]
    good = [4, 2, 1, 100, 0, 1, 1]
    for i, bad in enumerate([2.0, True, np.float32(3), "7", None, 2**31, -(2**31) - 1]):
        args = list(good)
        args[i % 7] = bad
        with pytest.raises((TypeError, OverflowError), match=r"argument \d+ \(\w+\)"):
            k(*bos, *args)
    with pytest.raises(TypeError, match="must be a bo"):
        k(*bos[:5], 7, *good)
    with pytest.raises(TypeError, match="must be a 32-bit int"):
        k(*bos, *good[:-1], bos[0])
    with pytest.raises(TypeError, match="takes 13 arguments"):
        k(*bos, *good[:-1])
    run = k(*bos, *[np.int32(v) for v in good])  # numpy ints are fine (pybind casts them too)
    assert run.wait(10_000) == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED
    assert run.state() == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED


def test_standin_silently_drops_what_pyxrt_drops(tmp_path):
    """pyxrt's kernel call ignores a float scalar; the emulator refuses it (above)."""
    path = tmp_path / "nessa.xclbin"
    path.write_bytes(b"\0")
    d = standin.device(0)
    u = d.load_xclbin(standin.xclbin(str(path)))
    k = standin.kernel(d, u, "nessa_greedy", standin.kernel.shared)
    q = np.array([[0, 0], [100, 0], [0, 300]], np.int16)
    bos = [standin.bo(d, 4096, standin.bo.normal, 0) for _ in range(6)]
    bos[0].write(q, 0)
    ok = k(*bos, 3, 2, 1, 1000, 0, 0, 1).wait(0)
    assert ok == standin.ert_cmd_state.ERT_CMD_STATE_COMPLETED
    # k = 1.0 is dropped: the register stays 0 and the "card" fails, with no word from the call itself
    assert k(*bos, 3, 2, 1.0, 1000, 0, 0, 1).wait(0) == standin.ert_cmd_state.ERT_CMD_STATE_ERROR


def test_device_memory_semantics(dev):
    d, uuid = dev
    with pytest.raises(RuntimeError, match="No such device"):
        emu.device(1)
    with pytest.raises(RuntimeError, match="one DDR bank"):
        emu.bo(d, 64, emu.bo.normal, 1)
    with pytest.raises(RuntimeError, match="4 GiB"):
        emu.bo(d, 5 << 30, emu.bo.normal, 0)
    with pytest.raises(RuntimeError, match="cannot be mapped"):
        emu.bo(d, 64, emu.bo.device_only, 0).map()
    k = emu.kernel(d, uuid, "nessa_greedy", emu.kernel.shared)
    with pytest.raises(RuntimeError, match="scalar"):
        k.group_id(6)
    with pytest.raises(RuntimeError, match="No kernel 'nope'"):
        emu.kernel(d, uuid, "nope", emu.kernel.shared)
    # a normal bo keeps host and device copies apart: without sync the kernel sees stale zeros
    q = np.array([[0, 0], [1000, 0], [0, 3000], [5, 5]], np.int16)
    outs = []
    for do_sync in (False, True):
        feat = emu.bo(d, q.nbytes, emu.bo.normal, 0)
        feat.write(q, 0)
        if do_sync:
            feat.sync(TO, q.nbytes, 0)
        # sim is [n][ld], ld = ceil(n / 32) * 32: 2 * 4 * 32 bytes
        others = [emu.bo(d, 256 if i == 0 else 64, emu.bo.device_only if i == 0 else emu.bo.normal, 0) for i in range(5)]
        assert k(feat, *others, 4, 2, 2, 5000, 0, 0, 1).wait(0) == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED
        others[4].sync(FROM, 64, 0)
        outs.append(others[4].read(8, 0).view(np.uint64)[0])  # objective
    assert outs[0] == 4 * 5000 and outs[1] != outs[0]  # stale all-zero features: one pick covers all at 5000
    # p2p buffers are one memory: map() writes are what the kernel reads, no sync needed
    p = emu.bo(d, 16, emu.bo.p2p, 0)
    np.frombuffer(p.map(), np.uint8)[:] = 7
    assert p.read(16, 0).tolist() == [7] * 16


def test_newer_pyxrt_forms_are_refused_naming_the_release(dev):
    """Host code that drifts to a call XRT 2.11 / 2.12 lacks fails here, not on the card."""
    d, uuid = dev
    k = emu.kernel(d, uuid, "nessa_greedy", emu.kernel.shared)
    b = emu.bo(d, 64, emu.bo.normal, 0)
    bos = [emu.bo(d, 4096, emu.bo.normal, 0) for _ in range(6)]
    run = k(*bos, 4, 2, 1, 100, 0, 1, 1)
    xb = emu.xclbin(emu.default_xclbin())
    refused = [
        (lambda: b.sync(TO), "bo.sync\\(direction\\).*2.16"),
        (lambda: run.wait(), "run.wait\\(\\).*2.12"),
        (lambda: emu.kernel(d, uuid, "nessa_greedy"), "kernel\\(device, uuid, name\\).*2.13"),
        (lambda: emu.enumerate_devices(), "enumerate_devices.*2.17"),
        (lambda: xb.get_kernels(), "get_kernels.*2.12"),
        (lambda: d.get_info(0), "get_info.*2.12"),
        (lambda: emu.device("0000:04:00.1"), "device\\(bdf\\).*2.12"),
    ]
    for call, what in refused:
        with pytest.raises(emu.TargetXrtError, match=what):
            call()
    assert issubclass(emu.TargetXrtError, TypeError)  # what pybind11 raises for an unknown overload
    with pytest.raises(RuntimeError, match="host_only buffers are not supported by the SmartSSD's U.2 shell"):
        emu.bo(d, 64, emu.bo.host_only, 0)
    with pytest.raises(TypeError, match="one bo.flags member"):
        emu.bo(d, 64, 0, 0)  # pyxrt binds an enum: a plain int does not convert
    with pytest.raises(TypeError, match="unsigned 32-bit"):
        run.wait(-1)
    assert run.wait(10_000) == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED
    # what the host reads instead of get_kernels: compute units named kernel:cu
    assert {ip.get_name() for ip in xb.get_ips()} >= {"nessa_greedy:nessa_greedy_1", "nessa_features:nessa_features_1"}


def test_flow_waits_in_slices_until_its_timeout(tmp_path):
    path = tmp_path / "nessa.xclbin"
    path.write_bytes(b"xclbin2\0")
    with pytest.raises(ValueError, match="timeout_s"):
        DeviceFlow(standin, str(path), timeout_s=0)
    with pytest.raises(ValueError, match="device_index"):
        DeviceFlow(standin, str(path), -1)
    flow = DeviceFlow(standin, str(path), timeout_s=0.05)
    assert flow.kernels == {"nessa_greedy", "nessa_features", "nessa_fl_rtl"}  # from xclbin.get_ips()
    never_done = lambda *a: standin.run(standin.ert_cmd_state.ERT_CMD_STATE_NEW)  # noqa: E731
    with pytest.raises(DeviceError, match="did not finish within 0.05 s"):
        flow._run(never_done, "stuck")
    failed = lambda *a: standin.run(standin.ert_cmd_state.ERT_CMD_STATE_ERROR)  # noqa: E731
    with pytest.raises(DeviceError, match="ended in state"):
        flow._run(failed, "broken")


def _fake_pyxrt(tmp_path, monkeypatch, devices: int):
    """Install a ``pyxrt`` module (the 2.11-faithful stand-in with ``devices`` cards) for one test."""
    import sys
    import types

    mod = types.ModuleType("pyxrt")
    for name in standin.__all__:
        setattr(mod, name, getattr(standin, name))
    monkeypatch.setitem(sys.modules, "pyxrt", mod)
    monkeypatch.setattr(standin, "DEVICES", devices)


def test_devices_are_counted_by_probing(tmp_path, monkeypatch):
    _fake_pyxrt(tmp_path, monkeypatch, 3)
    import pyxrt

    assert not hasattr(pyxrt, "enumerate_devices") and count_devices(pyxrt) == 3
    monkeypatch.setattr(standin, "DEVICES", 0)
    assert count_devices(pyxrt) == 0
    assert count_devices(emu) == 1


@pytest.mark.parametrize("devices,xclbin,reason", [(1, False, "xclbin not found"), (0, True, "opens no device")])
def test_auto_falls_back_to_the_emulator_with_a_logged_reason(tmp_path, monkeypatch, caplog, devices, xclbin, reason):
    _fake_pyxrt(tmp_path, monkeypatch, devices)
    hw = tmp_path / "nessa.xclbin"
    if xclbin:
        hw.write_bytes(b"xclbin2\0")
    monkeypatch.setenv("NESSA_XCLBIN", str(hw))
    with caplog.at_level("INFO", logger="host.device.loader"):
        rt, path = load_runtime("auto")
    assert rt is emu and path.endswith(".so")
    assert any(reason in r.getMessage() and "emulator" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match=reason):
        load_runtime("xrt")


def test_auto_uses_the_card_when_there_is_one(tmp_path, monkeypatch):
    _fake_pyxrt(tmp_path, monkeypatch, 2)
    hw = tmp_path / "nessa.xclbin"
    hw.write_bytes(b"xclbin2\0")
    monkeypatch.setenv("NESSA_XCLBIN", str(hw))
    rt, path = load_runtime("auto")
    assert rt.__name__ == "pyxrt" and path == str(hw)


def test_loader_falls_back_to_the_emulator_and_names_missing_runtimes(monkeypatch):
    rt, path = load_runtime("auto")
    assert rt is emu and path.endswith(".so")
    with pytest.raises(RuntimeError, match="pyxrt"):
        load_runtime("xrt")
    with pytest.raises(RuntimeError, match="pynq"):
        load_runtime("pynq")
    with pytest.raises(ValueError, match="unknown device runtime"):
        load_runtime("fpga")


def test_kernel_listing_follows_the_binding_the_release_has():
    """XRT 2.11-2.15 bind xclbin.get_ips() ("kernel:cu"), 2.16+ only get_kernels() (names)."""
    from host.device.flow import xclbin_kernels

    class _Named:
        def __init__(self, name):
            self._n = name

        def get_name(self):
            return self._n

    class Xclbin216:  # the shape of a 2.16+ pyxrt xclbin: no get_ips
        def get_kernels(self):
            return [_Named("nessa_greedy"), _Named("nessa_fl_rtl")]

    assert xclbin_kernels(Xclbin216()) == {"nessa_greedy", "nessa_fl_rtl"}
    assert xclbin_kernels(emu.xclbin(emu.default_xclbin())) >= {"nessa_greedy", "nessa_features", "nessa_fl_rtl"}
    assert xclbin_kernels(object()) == frozenset()
