"""The emulator offers pyxrt's API (the parts NeSSA uses) with pyxrt's call shapes, and is loud
where pyxrt is silent. Signatures transcribed from XRT src/python/pybind11/src/pyxrt.cpp."""

from __future__ import annotations

import numpy as np
import pytest

from host.device import emu
from tests.device import standin
from host.device.loader import load_runtime

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
    k3 = emu.kernel(d, uuid, "nessa_greedy")  # 3-argument overload
    k = emu.kernel(d, uuid, "nessa_greedy", emu.kernel.shared)
    assert k.group_id(0) == 0 and k3.group_id(5) == 0
    b = emu.bo(d, 64, emu.bo.normal, k.group_id(0))
    b.write(np.arange(16, dtype=np.int32), 0)
    with pytest.raises(TypeError):
        b.write(np.arange(4, dtype=np.int32))  # seek is required in pyxrt
    with pytest.raises(TypeError):
        b.read(8)  # skip is required
    with pytest.raises(TypeError):
        b.sync(TO, 64)  # (dir) or (dir, size, offset), nothing in between
    with pytest.raises(TypeError):
        b.sync(0)  # an int is not an xclBOSyncDirection
    b.sync(TO)
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
    assert run.wait() == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED and run.state() == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED


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
    ok = k(*bos, 3, 2, 1, 1000, 0, 0, 1).wait()
    assert ok == standin.ert_cmd_state.ERT_CMD_STATE_COMPLETED
    # k = 1.0 is dropped: the register stays 0 and the "card" fails, with no word from the call itself
    assert k(*bos, 3, 2, 1.0, 1000, 0, 0, 1).wait() == standin.ert_cmd_state.ERT_CMD_STATE_ERROR


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
        others = [emu.bo(d, 64, emu.bo.device_only if i == 0 else emu.bo.normal, 0) for i in range(5)]
        assert k(feat, *others, 4, 2, 2, 5000, 0, 0, 1).wait() == emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED
        others[4].sync(FROM)
        outs.append(others[4].read(8, 0).view(np.uint64)[0])  # objective
    assert outs[0] == 4 * 5000 and outs[1] != outs[0]  # stale all-zero features: one pick covers all at 5000
    # p2p buffers are one memory: map() writes are what the kernel reads, no sync needed
    p = emu.bo(d, 16, emu.bo.p2p, 0)
    np.frombuffer(p.map(), np.uint8)[:] = 7
    assert p.read(16, 0).tolist() == [7] * 16


def test_loader_falls_back_to_the_emulator_and_names_missing_runtimes(monkeypatch):
    rt, path = load_runtime("auto")
    assert rt is emu and path.endswith(".so")
    with pytest.raises(RuntimeError, match="pyxrt"):
        load_runtime("xrt")
    with pytest.raises(RuntimeError, match="pynq"):
        load_runtime("pynq")
    with pytest.raises(ValueError, match="unknown device runtime"):
        load_runtime("fpga")
