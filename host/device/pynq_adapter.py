"""Optional PYNQ (<= 3.0.1) runtime behind the same pyxrt subset (import-guarded).

PYNQ 3.1+ dropped Alveo-class cards and pins old numpy / grpcio, so it is never a default
dependency: ``pip install "pynq<=3.0.1"`` on a host that uses it. PYNQ has no P2P buffers; the
host flow's P2P read path needs pyxrt.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

__all__ = ["require", "device", "xclbin", "uuid", "kernel", "bo", "run", "xclBOSyncDirection", "ert_cmd_state"]


def require() -> Any:
    try:
        import pynq  # noqa: PLC0415
    except ImportError as e:
        raise RuntimeError("the pynq backend needs PYNQ <= 3.0.1 (pip install 'pynq<=3.0.1'); it is not installed") from e
    version = tuple(int(p) for p in pynq.__version__.split(".")[:3] if p.isdigit())
    if version > (3, 0, 1):
        raise RuntimeError(f"PYNQ {pynq.__version__} does not support Alveo / SmartSSD cards; use pynq<=3.0.1")
    return pynq


class xclBOSyncDirection(enum.IntEnum):  # noqa: N801
    XCL_BO_SYNC_BO_TO_DEVICE = 0
    XCL_BO_SYNC_BO_FROM_DEVICE = 1


class ert_cmd_state(enum.IntEnum):  # noqa: N801
    ERT_CMD_STATE_COMPLETED = 4
    ERT_CMD_STATE_ERROR = 5


class uuid:  # noqa: N801
    def __init__(self, text: str):
        self.text = text

    def to_string(self) -> str:
        return self.text


class xclbin:  # noqa: N801
    def __init__(self, path: str):
        self.path = str(path)


class device:  # noqa: N801
    def __init__(self, index: int = 0):
        self._dev = require().Device.devices[index]
        self.overlay: Any = None

    def load_xclbin(self, xb: xclbin) -> uuid:
        self.overlay = require().Overlay(xb.path, device=self._dev)
        return uuid(xb.path)


class bo:  # noqa: N801
    class flags(enum.IntFlag):
        normal = 0
        device_only = 1 << 28
        host_only = 1 << 29
        p2p = 1 << 30

    normal, device_only, host_only, p2p = flags.normal, flags.device_only, flags.host_only, flags.p2p

    def __init__(self, dev: device, size: int, flags: Any, group: int):
        if int(flags) & bo.flags.p2p:
            raise RuntimeError("PYNQ cannot allocate P2P buffers; use the xrt backend for the P2P read path")
        target = getattr(dev.overlay, "DDR0", None) or getattr(dev.overlay, "bank0", None)  # the one DDR bank
        self.buf = require().allocate((int(size),), dtype=np.uint8, target=target)

    def write(self, data: Any, seek: int) -> None:
        src = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
        self.buf[seek:seek + src.size] = src

    def read(self, size: int, skip: int) -> np.ndarray:
        return np.asarray(self.buf[skip:skip + size]).view(np.int8).copy()

    def map(self) -> memoryview:
        return memoryview(self.buf)

    def sync(self, direction: xclBOSyncDirection, size: int | None = None, offset: int = 0) -> None:
        if direction == xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE:
            self.buf.sync_to_device()
        else:
            self.buf.sync_from_device()


class run:  # noqa: N801
    def __init__(self, handle: Any):
        self._handle = handle

    def wait(self, timeout_ms: int = 0) -> ert_cmd_state:
        self._handle.wait()
        return ert_cmd_state.ERT_CMD_STATE_COMPLETED


class kernel:  # noqa: N801
    shared = 1

    def __init__(self, dev: device, xuuid: uuid, name: str, mode: Any = 1):
        self._ip = getattr(dev.overlay, f"{name}_1")

    def group_id(self, argno: int) -> int:
        return 0

    def __call__(self, *args: Any) -> run:
        return run(self._ip.start(*[a.buf if isinstance(a, bo) else a for a in args]))
