"""Pick the runtime: real ``pyxrt`` when it imports and sees a device, else the x86 emulator.

``load_runtime(kind)`` returns ``(module, xclbin_path)``; ``open_flow(kind)`` returns a ready
:class:`host.device.flow.DeviceFlow`. Kinds: ``"xrt"`` (pyxrt, required), ``"emu"`` (emulator),
``"pynq"`` (PYNQ <= 3.0.1 adapter), ``"auto"`` (xrt when there is a card and an xclbin, else the
emulator -- the reason is logged).

pyxrt ships with XRT (``/opt/xilinx/xrt/python``), not on PyPI. The hardware xclbin is
``$NESSA_XCLBIN`` or ``fpga_kernels/build/hw/nessa.xclbin`` (``make -C fpga_kernels hw``).

Devices are counted by opening ``pyxrt.device(i)`` for i = 0, 1, ... until it raises:
``pyxrt.enumerate_devices`` only arrived in XRT 2.17, and SmartSSD platforms run 2.11 / 2.12
(their pybind11 bindings, ``src/python/pybind11/src/pyxrt.cpp`` at tags 202110.2.11.634 and
202120.2.12.427, bind ``device(unsigned)`` and no enumeration).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from fpga_kernels import KERNEL_DIR

__all__ = ["RUNTIME_KINDS", "load_runtime", "open_flow", "hw_xclbin_path", "import_pyxrt", "count_devices",
           "p2p_for_device"]

RUNTIME_KINDS = ("auto", "xrt", "emu", "pynq")
_XRT_PYTHON = "/opt/xilinx/xrt/python"
#: More cards than any storage host holds: the probe stops here even if device(i) never raises.
_MAX_DEVICES = 64
_log = logging.getLogger(__name__)


def count_devices(rt: Any) -> int:
    """Devices ``rt`` can open: probe ``rt.device(i)`` until it raises (XRT 2.11 has no enumeration)."""
    for i in range(_MAX_DEVICES):
        try:
            rt.device(i)
        except Exception:  # noqa: BLE001 - pyxrt raises RuntimeError (C++ exceptions) for a missing index
            return i
    return _MAX_DEVICES


def hw_xclbin_path() -> Path:
    return Path(os.environ.get("NESSA_XCLBIN") or KERNEL_DIR / "build" / "hw" / "nessa.xclbin")


def import_pyxrt() -> ModuleType:
    """Import pyxrt (adding XRT's python folder to the path) and check that a device exists."""
    if Path(_XRT_PYTHON).is_dir() and _XRT_PYTHON not in sys.path:
        sys.path.append(_XRT_PYTHON)
    try:
        pyxrt = importlib.import_module("pyxrt")
    except ImportError as e:
        raise RuntimeError(f"pyxrt is not importable (install XRT; it lives in {_XRT_PYTHON}): {e}") from e
    if count_devices(pyxrt) < 1:
        raise RuntimeError("pyxrt imports but XRT opens no device (is the card's xocl driver loaded?)")
    return pyxrt


def load_runtime(kind: str = "auto") -> tuple[Any, str]:
    if kind not in RUNTIME_KINDS:
        raise ValueError(f"unknown device runtime {kind!r}; known: {', '.join(RUNTIME_KINDS)}")
    if kind in ("xrt", "auto"):
        try:
            rt = import_pyxrt()
            path = hw_xclbin_path()
            if not path.is_file():
                raise RuntimeError(f"xclbin not found at {path}: build it with `make -C {KERNEL_DIR} hw` "
                                   "(needs Vitis) or set NESSA_XCLBIN")
        except RuntimeError as e:
            if kind == "xrt":
                raise
            # no XRT at all is the usual CPU host (info); XRT without a card or xclbin is a setup gap
            level = logging.INFO if "not importable" in str(e) else logging.WARNING
            _log.log(level, "device runtime 'auto': using the x86 emulator, not a card: %s", e)
        else:
            return rt, str(path)
    if kind == "pynq":
        from host.device import pynq_adapter

        pynq_adapter.require()
        path = hw_xclbin_path()
        if not path.is_file():
            raise RuntimeError(f"xclbin not found at {path}: build it with `make -C {KERNEL_DIR} hw` or set NESSA_XCLBIN")
        return pynq_adapter, str(path)
    from host.device import emu

    return emu, emu.default_xclbin()


def p2p_for_device(device_index: int, sysfs: str = "/sys") -> tuple[bool, int | None]:
    """(P2P usable, BAR bytes) of XRT device ``device_index`` from sysfs (host/device/pcie.py).

    P2P off, or no P2P subdevice, gives ``(False, None)`` with a logged reason: the flow then reads
    files into normal buffers and syncs them (the data crosses host memory, but selection runs)."""
    from host.device.pcie import p2p_state, xrt_user_devices

    devices = xrt_user_devices(sysfs)
    if device_index >= len(devices):
        _log.warning("XRT device %d has no user function under %s; P2P state unknown, reading through host "
                     "memory", device_index, sysfs)
        return False, None
    state = p2p_state(devices[device_index], sysfs)
    if state is None or not state.enabled:
        _log.warning("P2P is %s on %s (enable it with XRT 2.11's `xbutil p2p --enable`, then a warm reboot); reading files through "
                     "host memory", "not available" if state is None else "disabled", devices[device_index])
        return False, None
    return True, state.bar_bytes


def open_flow(kind: str = "auto", device_index: int = 0, *, sysfs: str = "/sys") -> Any:
    """A :class:`~host.device.flow.DeviceFlow` on ``device_index``; on a card its P2P state
    (read under ``sysfs``) decides how files reach the device."""
    from host.device.flow import DeviceFlow

    rt, path = load_runtime(kind)
    if getattr(rt, "__name__", "") == "pyxrt":
        p2p, bar = p2p_for_device(device_index, sysfs)
        return DeviceFlow(rt, path, device_index, p2p=p2p, p2p_bar_bytes=bar)
    return DeviceFlow(rt, path, device_index)
