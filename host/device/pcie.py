"""SmartSSD PCIe topology from sysfs: which FPGA sits with which NVMe drive, and whether its P2P
BAR is on -- the facts the P2P read path needs and pyxrt 2.11 does not expose.

A SmartSSD is one U.2 device with a PCIe switch inside: the Samsung NVMe controller and the
Kintex FPGA (management function ``.0``, user function ``.1``) hang off the switch's downstream
ports. A host with several SmartSSDs sees several such switches, and the FPGA that can DMA a
drive's blocks cheaply is the one behind the *same* switch. So a store is paired with its FPGA by
PCIe topology: the user function whose chain of bridges shares the most with the chain of the NVMe
controller holding the store's file (at least root port and switch, i.e. the same card).

Everything here reads files under ``sysfs`` (default ``/sys``), so a test can hand it a tree of
plain files and symlinks laid out as the kernel does:

* ``/sys/dev/block/<major>:<minor>`` -> ``.../<pci chain>/nvme/nvme0/nvme0n1[/nvme0n1p1]``: the
  block device holding a file (``os.stat(path).st_dev``);
* ``/sys/bus/pci/devices/<bdf>`` -> ``../../../devices/pci0000:00/<root port>/.../<bdf>``: a
  function's chain of bridges;
* ``/sys/bus/pci/drivers/{xocl,xrt-user}/<bdf>``: XRT user functions; ``<bdf>/vendor``, ``<bdf>/ready``;
* ``<bdf>/p2p.<n>/p2p_enable`` (``1`` / ``0``) and ``<bdf>/p2p.<n>/config`` (``bar:<bytes>`` when
  the P2P BAR is mapped): the xocl driver's P2P subdevice (XRT 2.11
  ``src/runtime_src/core/pcie/driver/linux/xocl/subdev/p2p.c``); with P2P off the BAR is the
  256 MiB default, too small for useful buffers.

Device indices: ``pyxrt.device(i)`` in XRT 2.11 / 2.12 opens the i-th *ready* user function of
XRT's scan (``src/runtime_src/core/pcie/linux/scan.cpp``, tag 202110.2.11.634): driver folders
``xocl`` then ``xrt-user``, entries sorted by name, supported vendors only, each ready function
inserted at the *front* of the list (so ready functions come in reverse order), not-ready ones
appended. :func:`xrt_user_devices` replays that order.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["P2PState", "XRT_VENDORS", "USER_DRIVERS", "xrt_user_devices", "p2p_state", "pci_chain",
           "nvme_function_of", "paired_device"]

#: Vendors XRT's scan accepts (scan.h: Xilinx, Advantech, AWS, Arista).
XRT_VENDORS = frozenset({0x10EE, 0x13FE, 0x1D0F, 0x3475})
#: User-function drivers in XRT's scan order (scan.cpp rescan()).
USER_DRIVERS = ("xocl", "xrt-user")
#: Bridges two functions must share to count as one card: root port + the card's switch.
MIN_SHARED_BRIDGES = 2
_BDF = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")


@dataclass(frozen=True)
class P2PState:
    """The xocl P2P subdevice of one user function."""

    enabled: bool
    bar_bytes: int | None  # the P2P BAR's size when mapped (config "bar:"), else None
    path: str              # the subdevice folder read


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text, 0) if text is not None else default
    except ValueError:
        return default


def _devices(sysfs: str | os.PathLike) -> Path:
    return Path(sysfs) / "bus" / "pci" / "devices"


def xrt_user_devices(sysfs: str | os.PathLike = "/sys") -> list[str]:
    """BDFs of XRT's user functions in ``pyxrt.device(i)`` order (ready ones first, see module docstring)."""
    ready: list[str] = []
    not_ready: list[str] = []
    for drv in USER_DRIVERS:
        folder = Path(sysfs) / "bus" / "pci" / "drivers" / drv
        if not folder.is_dir():
            continue
        for entry in sorted(p.name for p in folder.iterdir() if _BDF.match(p.name)):
            dev = _devices(sysfs) / entry
            if _int(_read(dev / "vendor"), -1) not in XRT_VENDORS:
                continue
            if _int(_read(dev / "ready")):
                ready.insert(0, entry)
            else:
                not_ready.append(entry)
    return ready + not_ready


def p2p_state(bdf: str, sysfs: str | os.PathLike = "/sys") -> P2PState | None:
    """The P2P subdevice of user function ``bdf`` (None: the driver exposes none -- no P2P)."""
    dev = _devices(sysfs) / bdf
    if not dev.is_dir():
        return None
    for sub in sorted(dev.iterdir()):
        if not (sub.name.startswith("p2p.") or _read(sub / "name") == "p2p") or not (sub / "p2p_enable").exists():
            continue
        enabled = _int(_read(sub / "p2p_enable")) == 1
        bar = None
        for line in (_read(sub / "config") or "").splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "bar":
                bar = _int(val.strip(), 0) or None
        return P2PState(enabled, bar, str(sub))
    return None


def pci_chain(bdf: str, sysfs: str | os.PathLike = "/sys") -> list[str]:
    """The function's bridges from the root port down, then the function itself (BDFs)."""
    real = os.path.realpath(_devices(sysfs) / bdf)
    return [part for part in Path(real).parts if _BDF.match(part)]


def nvme_function_of(path: str | os.PathLike, sysfs: str | os.PathLike = "/sys") -> str | None:
    """BDF of the PCI function (the NVMe controller) of the block device holding ``path``;
    None when the file is not on a PCI block device (tmpfs, a network file system, ...)."""
    st = os.stat(path)
    link = Path(sysfs) / "dev" / "block" / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    if not os.path.lexists(link):
        return None
    chain = [part for part in Path(os.path.realpath(link)).parts if _BDF.match(part)]
    return chain[-1] if chain else None


def paired_device(path: str | os.PathLike, sysfs: str | os.PathLike = "/sys") -> tuple[int, str] | None:
    """``(pyxrt device index, user-function BDF)`` of the FPGA on the same card as the drive that
    holds ``path``; None when no XRT device shares the drive's switch (or the file is on no NVMe)."""
    nvme = nvme_function_of(path, sysfs)
    if nvme is None:
        return None
    drive = pci_chain(nvme, sysfs)[:-1]  # the drive's bridges
    best, best_len, tie = None, 0, False
    for index, bdf in enumerate(xrt_user_devices(sysfs)):
        bridges = pci_chain(bdf, sysfs)[:-1]
        shared = 0
        for a, b in zip(drive, bridges):
            if a != b:
                break
            shared += 1
        if shared > best_len:
            best, best_len, tie = (index, bdf), shared, False
        elif shared == best_len and shared:
            tie = True
    if best is None or best_len < MIN_SHARED_BRIDGES or tie:
        return None
    return best
