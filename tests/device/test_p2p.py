"""The P2P read path as a SmartSSD host runs it: the FPGA paired with the store's drive by PCIe
topology (a sysfs tree laid out as the kernel's, written here), P2P on/off and the BAR read from
the xocl driver's files, reads that loop over short reads and fit the BAR, and O_DIRECT reads
of a real store file in emulation."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from host.device import emu
from host.device.flow import DeviceFlow
from host.device.loader import p2p_for_device
from host.device.direct_io import DIRECT_ALIGN, open_direct, read_full, split_runs
from host.device.p2p import store_features
from host.device.pcie import nvme_function_of, p2p_state, paired_device, pci_chain, xrt_user_devices
from host.golden.qforward import qforward
from host.models import build_model
from host.quantize.export import export_model
from tests.device.recorder import Recorder

# ---- a fake /sys: two SmartSSDs, each a switch with an NVMe drive and an FPGA behind it ----------
CARD_A = {"root": "0000:00:01.0", "up": "0000:01:00.0", "down_nvme": "0000:02:00.0", "down_fpga": "0000:02:01.0",
          "nvme": "0000:03:00.0", "fpga": "0000:04:00.1", "mgmt": "0000:04:00.0", "ns": "nvme0n1", "ctrl": "nvme0"}
CARD_B = {"root": "0000:00:02.0", "up": "0000:05:00.0", "down_nvme": "0000:06:00.0", "down_fpga": "0000:06:01.0",
          "nvme": "0000:07:00.0", "fpga": "0000:08:00.1", "mgmt": "0000:08:00.0", "ns": "nvme1n1", "ctrl": "nvme1"}


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def _card(sys: Path, c: dict, *, p2p_enable: str | None, bar: int | None, ready: str = "0x1") -> None:
    base = sys / "devices" / "pci0000:00" / c["root"] / c["up"]
    nvme = base / c["down_nvme"] / c["nvme"]
    (nvme / "nvme" / c["ctrl"] / c["ns"] / f"{c['ns']}p1").mkdir(parents=True)
    fpga = base / c["down_fpga"] / c["fpga"]
    fpga.mkdir(parents=True)
    (base / c["down_fpga"] / c["mgmt"]).mkdir()
    (fpga / "vendor").write_text("0x10ee\n")
    (fpga / "ready").write_text(ready + "\n")
    if p2p_enable is not None:
        sub = fpga / "p2p.1048576"
        sub.mkdir()
        (sub / "p2p_enable").write_text(p2p_enable + "\n")
        cfg = (f"bar:{bar}\n" if bar else "") + "max_bar:8589934592\nexp_bar:8589934592\n"
        (sub / "config").write_text(cfg)
    for fn in (c["nvme"], c["fpga"], c["mgmt"]):
        target = (base / c["down_nvme"] / fn) if fn == c["nvme"] else (base / c["down_fpga"] / fn)
        _link(sys / "bus" / "pci" / "devices" / fn, target)
    _link(sys / "bus" / "pci" / "drivers" / "xocl" / c["fpga"], fpga)
    _link(sys / "bus" / "pci" / "drivers" / "xclmgmt" / c["mgmt"], base / c["down_fpga"] / c["mgmt"])


@pytest.fixture
def fake_sys(tmp_path):
    """A fake /sys with the two cards; the test's files live on card B's drive (partition 1)."""
    sys = tmp_path / "sys"
    _card(sys, CARD_A, p2p_enable="1", bar=8 << 30)
    _card(sys, CARD_B, p2p_enable="0", bar=None)
    data = tmp_path / "store.bin"
    data.write_bytes(b"x" * 4096)
    st = os.stat(data)
    ns = (sys / "devices" / "pci0000:00" / CARD_B["root"] / CARD_B["up"] / CARD_B["down_nvme"] / CARD_B["nvme"]
          / "nvme" / CARD_B["ctrl"] / CARD_B["ns"] / f"{CARD_B['ns']}p1")
    _link(sys / "dev" / "block" / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", ns)
    return sys, data


def test_xrt_device_order_replays_the_2_11_scan(fake_sys):
    sys, _ = fake_sys
    # both ready: each is inserted at the front of XRT's list, so the later BDF gets index 0
    assert xrt_user_devices(sys) == [CARD_B["fpga"], CARD_A["fpga"]]
    (sys / "bus" / "pci" / "devices" / CARD_B["fpga"] / "ready").write_text("0\n")
    assert xrt_user_devices(sys) == [CARD_A["fpga"], CARD_B["fpga"]]  # not ready: appended
    (sys / "bus" / "pci" / "devices" / CARD_A["fpga"] / "vendor").write_text("0x144d\n")
    assert xrt_user_devices(sys) == [CARD_B["fpga"]]  # a vendor XRT does not drive is skipped


def test_store_is_paired_with_the_fpga_behind_its_drives_switch(fake_sys):
    sys, data = fake_sys
    assert nvme_function_of(data, sys) == CARD_B["nvme"]
    assert pci_chain(CARD_B["fpga"], sys) == [CARD_B["root"], CARD_B["up"], CARD_B["down_fpga"], CARD_B["fpga"]]
    assert paired_device(data, sys) == (0, CARD_B["fpga"])
    # move the file's drive to card A: the pairing follows the topology, not device 0
    link = next((sys / "dev" / "block").iterdir())
    link.unlink()
    ns = (sys / "devices" / "pci0000:00" / CARD_A["root"] / CARD_A["up"] / CARD_A["down_nvme"] / CARD_A["nvme"]
          / "nvme" / CARD_A["ctrl"] / CARD_A["ns"])
    _link(link, ns)
    assert paired_device(data, sys) == (1, CARD_A["fpga"])
    # a drive behind no card's switch (only the root complex shared): no pairing
    link.unlink()
    lone = sys / "devices" / "pci0000:00" / "0000:00:03.0" / "0000:09:00.0" / "nvme" / "nvme2" / "nvme2n1"
    lone.mkdir(parents=True)
    _link(sys / "bus" / "pci" / "devices" / "0000:09:00.0", lone.parents[2])
    _link(link, lone)
    assert nvme_function_of(data, sys) == "0000:09:00.0" and paired_device(data, sys) is None


def test_p2p_state_and_bar_come_from_the_xocl_subdevice(fake_sys, caplog):
    sys, _ = fake_sys
    a, b = p2p_state(CARD_A["fpga"], sys), p2p_state(CARD_B["fpga"], sys)
    assert a.enabled and a.bar_bytes == 8 << 30
    assert not b.enabled and b.bar_bytes is None
    assert p2p_state("0000:0a:00.1", sys) is None
    assert p2p_for_device(1, str(sys)) == (True, 8 << 30)
    with caplog.at_level(logging.WARNING, logger="host.device.loader"):
        assert p2p_for_device(0, str(sys)) == (False, None)
        assert p2p_for_device(5, str(sys)) == (False, None)
    assert any("P2P is disabled on " + CARD_B["fpga"] in r.getMessage() for r in caplog.records)


def test_read_full_loops_until_the_request_is_filled(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 5 * DIRECT_ALIGN + 123, dtype=np.uint8)
    path = tmp_path / "f.bin"
    path.write_bytes(data.tobytes())
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = bytearray(3 * DIRECT_ALIGN)
        assert read_full(fd, memoryview(buf), DIRECT_ALIGN, max_io=1000) == len(buf)  # 13 calls of <= 1000 bytes
        assert bytes(buf) == data[DIRECT_ALIGN:4 * DIRECT_ALIGN].tobytes()
        tail = bytearray(2 * DIRECT_ALIGN)
        assert read_full(fd, memoryview(tail), 4 * DIRECT_ALIGN, max_io=DIRECT_ALIGN) == DIRECT_ALIGN + 123  # EOF
        with pytest.raises(ValueError, match="max_io"):
            read_full(fd, memoryview(tail), 0, max_io=0)
    finally:
        os.close(fd)


def test_split_runs_fit_the_device_buffer():
    runs = split_runs([(100, 1000), (70000, 3)], 64, 4 * DIRECT_ALIGN)
    rows = (4 * DIRECT_ALIGN - 2 * DIRECT_ALIGN) // 64
    assert all(cnt <= rows for _, cnt in runs) and sum(c for _, c in runs) == 1003
    off = 100
    for o, c in runs[:-1]:
        assert o == off
        off += c * 64
    assert runs[-1] == (70000, 3)
    with pytest.raises(ValueError, match="cannot hold one"):
        split_runs([(0, 1)], 10000, 3 * DIRECT_ALIGN)


@pytest.fixture(scope="module")
def qmodel():
    torch.manual_seed(0)
    x = np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8)
    return export_model(build_model("small_cnn", (8, 8), 5).eval(), x, (8, 8))


@pytest.fixture
def store(tmp_path):
    from storage_service.ingest import write_store

    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (2500, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 5, 2500).astype(np.int32)
    return write_store(tmp_path / "s", x, y, name="t", shard_bytes=64 * 1000, batch_bytes=64 * 700), x, y


@pytest.mark.parametrize("p2p", [True, False], ids=["p2p", "p2p-off"])
def test_o_direct_reads_of_a_real_store_in_emulation(qmodel, store, monkeypatch, p2p):
    """The hardware path on a real file: O_DIRECT, 4 KiB-aligned device buffers cut to the BAR
    window; with P2P off the same reads go into normal buffers that are synced to the device."""
    st, x, y = store
    opened = []
    real_open = os.open

    def spy_open(path, flags, *a):
        opened.append(flags)
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", spy_open)
    rec = Recorder(emu)
    flow = DeviceFlow(rec, emu.default_xclbin(), p2p=p2p, p2p_bar_bytes=6 * DIRECT_ALIGN)  # <= 256 samples a buffer
    out = store_features(flow, qmodel, st, embedding=True, direct=True)
    ref = qforward(qmodel, x, y)
    assert np.array_equal(out.features, ref.features) and np.array_equal(out.embedding, ref.embedding)
    assert opened and all(f & os.O_DIRECT for f in opened)
    kind = "p2p" if p2p else "normal"
    sample_bos = [s for a, s in rec.calls if a == "bo" and s[2] == kind and s[1] % DIRECT_ALIGN == 0]
    assert len(sample_bos) >= -(-2500 // 256) and max(s[1] for s in sample_bos) <= 6 * DIRECT_ALIGN
    syncs = [s for a, s in rec.calls if a == "bo.sync"]
    to_device_of_samples = [s for s in syncs if s[0] == "XCL_BO_SYNC_BO_TO_DEVICE" and s[1] % DIRECT_ALIGN == 0
                            and s[1] > 4 * DIRECT_ALIGN]
    assert bool(to_device_of_samples) is (not p2p)  # p2p bos are the device memory: no sync


def test_open_direct_falls_back_where_the_file_system_refuses(tmp_path, caplog):
    path = tmp_path / "f.bin"
    path.write_bytes(b"\0" * DIRECT_ALIGN)
    fd, used = open_direct(str(path), True)
    os.close(fd)
    assert used  # ext4 / xfs (a drive's file system) take O_DIRECT
    # procfs refuses O_DIRECT (EINVAL) as tmpfs did before Linux 6.6: the read goes buffered
    with caplog.at_level(logging.WARNING, logger="host.device.direct_io"):
        fd, used = open_direct("/proc/version", True)
    try:
        assert not used and os.read(fd, 5) == b"Linux"
    finally:
        os.close(fd)
    assert any("refuses O_DIRECT" in r.getMessage() for r in caplog.records)


def test_backend_opens_the_card_paired_with_the_store_and_reads_its_p2p_state(fake_sys, tmp_path, monkeypatch,
                                                                               caplog):
    """The XRT backend on a host with two cards (pyxrt: the 2.11-faithful stand-in; /sys: the fake
    tree): a store on card B's drive is read by XRT device 0 (card B), whose P2P is off -> normal
    buffers; moved to card A's drive, by device 1 with P2P on and buffers cut to its BAR."""
    import sys as _sys
    import types

    from host.device.backend import DeviceBackend
    from host.device.direct_io import MAX_TRANSFER
    from tests.device import standin

    sys_root, data = fake_sys
    mod = types.ModuleType("pyxrt")
    for name in standin.__all__:
        setattr(mod, name, getattr(standin, name))
    monkeypatch.setitem(_sys.modules, "pyxrt", mod)
    monkeypatch.setattr(standin, "DEVICES", 2)
    xclbin = tmp_path / "nessa.xclbin"
    xclbin.write_bytes(b"xclbin2\0")
    monkeypatch.setenv("NESSA_XCLBIN", str(xclbin))
    backend = DeviceBackend("xrt")
    with caplog.at_level(logging.INFO):
        flow_b = backend.flow_for_path(str(data), sysfs=str(sys_root))
    assert flow_b.device_index == 0 and not flow_b.p2p  # card B: P2P disabled -> pread + sync
    assert any("P2P is disabled on " + CARD_B["fpga"] in r.getMessage() for r in caplog.records)
    assert backend.flow_for_path(str(data), sysfs=str(sys_root)) is flow_b  # one flow per card
    link = next((sys_root / "dev" / "block").iterdir())
    link.unlink()
    _link(link, sys_root / "devices" / "pci0000:00" / CARD_A["root"] / CARD_A["up"] / CARD_A["down_nvme"]
          / CARD_A["nvme"] / "nvme" / CARD_A["ctrl"] / CARD_A["ns"])
    flow_a = backend.flow_for_path(str(data), sysfs=str(sys_root))
    assert flow_a.device_index == 1 and flow_a.p2p and flow_a.max_transfer == min(MAX_TRANSFER, 8 << 30)
