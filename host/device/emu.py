"""x86 emulator of the pyxrt subset NeSSA uses: the kernels' HLS C++ compiled with g++.

Import this module where you would import ``pyxrt``; the host code cannot tell them apart
(:mod:`host.device.flow` is the one host path). Names and call shapes follow pyxrt's pybind11
bindings as SmartSSD platforms ship them: XRT 2.11 (2021.1, the release of the platform
``xilinx_u2_gen3x4_xdma_gc_2_202110_1``) and 2.12 (2021.2). Only what *both* releases bind is
offered -- read from ``src/python/pybind11/src/pyxrt.cpp`` at tags ``202110.2.11.634`` and
``202120.2.12.427`` of Xilinx/XRT::

    d = emu.device(0)                                  # device(unsigned); index required
    xb = emu.xclbin(path)                              # path: the library from build.library_path()
    xb.get_ips()                                       # [ip.get_name() == "kernel:cu"] (get_kernels is 2.12+)
    uuid = d.load_xclbin(xb)
    k = emu.kernel(d, uuid, "nessa_greedy", emu.kernel.shared)   # 2.11/2.12 bind only the 4-argument form
    b = emu.bo(d, nbytes, emu.bo.normal | p2p | device_only, k.group_id(0))
    b.write(buf, seek); b.read(size, skip) -> int8 ndarray; b.map() -> memoryview
    b.sync(emu.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, size, offset)   # 2.11/2.12: 3 arguments only
    r = k(*args); r.wait(timeout_ms) -> emu.ert_cmd_state.ERT_CMD_STATE_COMPLETED   # 2.11: timeout required

Newer forms raise :class:`TargetXrtError` naming the release that added them, so host code that
drifts fails a test here instead of on the card: ``bo.sync(dir)`` (bound from 2.16),
``run.wait()`` without a timeout (2.12), ``kernel(d, uuid, name)`` without an access mode (2.13),
``device(bdf)`` / ``device.get_info`` (2.12), ``xclbin.get_kernels`` (2.12) and
``enumerate_devices`` (2.17) -- each release checked at its tag (202210.2.13.466 ... 202410.2.17.319). ``host_only`` buffers are refused
as the U.2 shell refuses them (it has no host-memory bank).

Faithful where it matters for catching host bugs: a ``normal`` bo has separate host and device
copies (a missing ``sync`` shows up as stale data); ``p2p`` / ``host_only`` bos are one memory;
``device_only`` bos cannot be mapped; the card has 4 GiB of DDR. Deliberately *stricter* than
pyxrt: kernel scalars must be 32-bit ints (pyxrt silently drops anything else, leaving the
register unset), argument counts and kinds are checked, and a second run of a compute unit
waits for the first (one CU per kernel, like the SmartSSD build).
"""

from __future__ import annotations

import ctypes
import enum
import threading
import uuid as _uuid
from pathlib import Path
from typing import Any

import numpy as np

from host.device.build import library_path

__all__ = ["device", "xclbin", "uuid", "kernel", "bo", "run", "xclBOSyncDirection", "ert_cmd_state",
           "enumerate_devices", "DDR_BYTES", "default_xclbin", "XCL_BO_FLAGS_NONE", "TARGET_XRT", "TargetXrtError"]

#: DDR4 behind the SmartSSD's FPGA.
DDR_BYTES = 4 << 30
XCL_BO_FLAGS_NONE = 0
_INT32 = (-(1 << 31), (1 << 31) - 1)


class xclBOSyncDirection(enum.IntEnum):  # noqa: N801 - pyxrt's name
    XCL_BO_SYNC_BO_TO_DEVICE = 0
    XCL_BO_SYNC_BO_FROM_DEVICE = 1
    XCL_BO_SYNC_BO_GMIO_TO_AIE = 2
    XCL_BO_SYNC_BO_AIE_TO_GMIO = 3


class ert_cmd_state(enum.IntEnum):  # noqa: N801 - pyxrt's name
    ERT_CMD_STATE_NEW = 1
    ERT_CMD_STATE_QUEUED = 2
    ERT_CMD_STATE_COMPLETED = 4
    ERT_CMD_STATE_ERROR = 5
    ERT_CMD_STATE_ABORT = 6
    ERT_CMD_STATE_SUBMITTED = 7
    ERT_CMD_STATE_TIMEOUT = 8
    ERT_CMD_STATE_NORESPONSE = 9
    ERT_CMD_STATE_SKERROR = 10
    ERT_CMD_STATE_SKCRASHED = 11


#: The XRT releases whose pyxrt this emulator offers (their common subset).
TARGET_XRT = ("2.11", "2.12")


class TargetXrtError(TypeError):
    """A pyxrt call that XRT 2.11 / 2.12 (what SmartSSD platforms ship) does not bind."""


def _too_new(call: str, since: str, instead: str) -> TargetXrtError:
    return TargetXrtError(f"{call} is not in the pyxrt of XRT {' / '.join(TARGET_XRT)} (SmartSSD platforms) -- "
                          f"it arrived in XRT {since}; use {instead}")


def enumerate_devices() -> int:
    """Refused: ``pyxrt.enumerate_devices`` arrived in XRT 2.17 (host/device/loader.py probes instead)."""
    raise _too_new("enumerate_devices()", "2.17", "device(i) for i = 0, 1, ... until it raises")


def default_xclbin() -> str:
    """The emulation 'xclbin': the kernels' shared library (built on first use)."""
    return str(library_path())


class uuid:  # noqa: N801 - pyxrt's name
    def __init__(self, text: str):
        self._text = str(text)

    def to_string(self) -> str:
        return self._text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, uuid) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


class _XclbinIp:
    """An IP_LAYOUT entry: a compute unit, named ``kernel:cu`` as in a hardware xclbin."""

    def __init__(self, name: str):
        self._name = name

    def get_name(self) -> str:
        return self._name


class xclbin:  # noqa: N801 - pyxrt's name
    """An emulation 'xclbin': a shared library whose kernels export ``<name>__signature``."""

    def __init__(self, path: str):
        if not isinstance(path, str):
            raise TypeError(f"xclbin(path): path must be a str, got {type(path).__name__}")
        p = Path(path)
        if not p.is_file():
            raise RuntimeError(f"xclbin file not found: {path}")
        self._path = p
        self._lib = ctypes.CDLL(str(p), mode=ctypes.RTLD_LOCAL)
        self._kernels: dict[str, list[tuple[str, str]]] = {}
        for name in _exported_kernels(p):
            sig = getattr(self._lib, f"{name}__signature")
            sig.restype = ctypes.c_char_p
            args = [tuple(a.split(":")) for a in sig().decode().split(",")]
            if any(kind not in ("ptr", "i32") for _, kind in args):
                raise RuntimeError(f"kernel {name}: bad signature {sig().decode()!r}")
            self._kernels[name] = args  # type: ignore[assignment]
        if not self._kernels:
            raise RuntimeError(f"{path} holds no NeSSA kernels (no *__signature symbols)")
        self._uuid = uuid(str(_uuid.uuid5(_uuid.NAMESPACE_URL, str(p.resolve()))))

    def get_uuid(self) -> uuid:
        return self._uuid

    def get_ips(self) -> list[_XclbinIp]:
        """One compute unit per kernel (``<kernel>:<kernel>_1``), as the SmartSSD link names them."""
        return [_XclbinIp(f"{n}:{n}_1") for n in sorted(self._kernels)]

    def get_kernels(self) -> None:
        raise _too_new("xclbin.get_kernels()", "2.12", "xclbin.get_ips() (names 'kernel:cu')")

    def get_xsa_name(self) -> str:
        return "xilinx_u2_gen3x4_xdma_gc_2_202110_1 (emulated)"


def _exported_kernels(path: Path) -> list[str]:
    """Kernel names from the library's dynamic symbol table (``<name>__signature``).

    Uses ``nm`` (binutils, present wherever g++ is); without it, the names declared in the kernel
    sources are probed in the library instead.
    """
    import re
    import shutil
    import subprocess

    if shutil.which("nm"):
        out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True, check=True).stdout
        return sorted(line.split()[-1][: -len("__signature")] for line in out.splitlines()
                      if line.split() and line.split()[-1].endswith("__signature"))
    from host.device.build import kernel_sources

    names = {m for f in kernel_sources() if f.suffix == ".cpp"
             for m in re.findall(r"(\w+)__signature\s*\(", f.read_text(errors="replace"))}
    lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
    return sorted(n for n in names if hasattr(lib, f"{n}__signature"))


class device:  # noqa: N801 - pyxrt's name
    """The emulated SmartSSD (index 0 only)."""

    def __init__(self, *args: Any):
        if len(args) != 1:
            raise TypeError("device(index): pass the device index (pyxrt's device() opens no device)")
        index = args[0]
        if isinstance(index, str):
            raise _too_new("device(bdf)", "2.12", "device(index)")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise TypeError(f"device(index): index must be a non-negative int, got {index!r}")
        if index != 0:
            raise RuntimeError(f"No such device with index '{index}' (the emulator has one device, index 0)")
        self._xclbins: dict[uuid, xclbin] = {}
        self._allocated = 0
        self._lock = threading.Lock()

    def load_xclbin(self, xb: "xclbin | str") -> uuid:
        if isinstance(xb, str):
            xb = xclbin(xb)
        if not isinstance(xb, xclbin):
            raise TypeError(f"load_xclbin expects an xclbin or a path, got {type(xb).__name__}")
        self._xclbins[xb.get_uuid()] = xb
        return xb.get_uuid()

    def get_xclbin_uuid(self) -> uuid:
        if not self._xclbins:
            raise RuntimeError("no xclbin loaded")
        return next(reversed(self._xclbins))

    def get_info(self, key: Any) -> str:
        raise _too_new("device.get_info()", "2.12", "sysfs (host/device/p2p.py reads the BDF and P2P state there)")

    def _reserve(self, nbytes: int) -> None:
        with self._lock:
            if self._allocated + nbytes > DDR_BYTES:
                raise RuntimeError(f"bo allocation of {nbytes} bytes exceeds the device's {DDR_BYTES >> 30} GiB DDR "
                                   f"({self._allocated} bytes in use)")
            self._allocated += nbytes

    def _release(self, nbytes: int) -> None:
        with self._lock:
            self._allocated -= nbytes


class bo:  # noqa: N801 - pyxrt's name
    """A buffer object in the emulated DDR (see the module docstring for the flag semantics)."""

    class flags(enum.IntFlag):
        normal = 0
        cacheable = 1 << 24
        svm = 1 << 27
        device_only = 1 << 28
        host_only = 1 << 29
        p2p = 1 << 30

    normal, cacheable, svm = flags.normal, flags.cacheable, flags.svm
    device_only, host_only, p2p = flags.device_only, flags.host_only, flags.p2p

    def __init__(self, *args: Any):
        if len(args) == 3 and isinstance(args[0], bo):  # sub-buffer: bo(parent, size, offset)
            parent, size, offset = args
            _check_size(size, "size"), _check_size(offset, "offset")
            if offset + size > parent._size:
                raise RuntimeError(f"sub-buffer [{offset}, {offset + size}) exceeds parent size {parent._size}")
            self._dev, self._host, self._flags = parent._dev, parent._host, parent._flags
            self._off, self._size, self._device, self._owner = parent._off + offset, size, parent._device, False
            return
        if len(args) != 4:
            raise TypeError("bo(device, size, flags, group) or bo(parent_bo, size, offset)")
        dev, size, flags, group = args
        if not isinstance(dev, device):
            raise TypeError(f"bo(): first argument must be a device, got {type(dev).__name__}")
        _check_size(size, "size")
        if size == 0:
            raise RuntimeError("bo(): size must be > 0")
        if not isinstance(flags, bo.flags) or int(flags) not in {int(m) for m in bo.flags.__members__.values()}:
            raise TypeError(f"bo(): flags must be one bo.flags member (pyxrt binds an enum), got {flags!r}")
        if flags & bo.flags.host_only:
            raise RuntimeError("bo(): host_only buffers are not supported by the SmartSSD's U.2 shell "
                               "(xilinx_u2_gen3x4_xdma_gc_2_202110_1 has no host-memory bank); use normal")
        if isinstance(group, bool) or not isinstance(group, int) or group != 0:
            raise RuntimeError(f"bo(): memory group {group!r} does not exist (the SmartSSD has one DDR bank, group 0)")
        dev._reserve(size)
        self._device, self._flags, self._size, self._off, self._owner = dev, flags, size, 0, True
        self._dev = _aligned_zeros(size)  # XRT places bos on 4 KiB boundaries (kernels may rely on it)
        single = flags & (bo.flags.p2p | bo.flags.host_only | bo.flags.device_only)
        self._host = self._dev if single else _aligned_zeros(size)  # page-aligned host memory, as XRT's

    def __del__(self) -> None:
        if getattr(self, "_owner", False):
            self._device._release(self._size)

    def size(self) -> int:
        return self._size

    def address(self) -> int:
        return int(self._dev.ctypes.data) + self._off

    def _view(self, arr: np.ndarray) -> np.ndarray:
        return arr[self._off:self._off + self._size]

    def write(self, buf: Any, seek: int) -> None:
        data = np.frombuffer(memoryview(buf).cast("B"), dtype=np.uint8)
        _check_size(seek, "seek")
        if seek + data.size > self._size:
            raise RuntimeError(f"bo.write of {data.size} bytes at {seek} exceeds the buffer size {self._size}")
        self._view(self._host)[seek:seek + data.size] = data

    def read(self, size: int, skip: int) -> np.ndarray:
        _check_size(size, "size"), _check_size(skip, "skip")
        if skip + size > self._size:
            raise RuntimeError(f"bo.read of {size} bytes at {skip} exceeds the buffer size {self._size}")
        return self._view(self._host)[skip:skip + size].view(np.int8).copy()

    def map(self) -> memoryview:
        if self._flags & bo.flags.device_only:
            raise RuntimeError("a device_only bo cannot be mapped")
        return memoryview(self._view(self._host))

    def sync(self, direction: xclBOSyncDirection, *size_offset: int) -> None:
        """``sync(dir, size, offset)`` -- the only overload XRT 2.11 / 2.12 bind."""
        if not isinstance(direction, xclBOSyncDirection):
            raise TypeError(f"bo.sync: direction must be an xclBOSyncDirection, got {type(direction).__name__}")
        if not size_offset:
            raise _too_new("bo.sync(direction)", "2.16", "bo.sync(direction, size, offset)")
        if len(size_offset) != 2:
            raise TypeError("bo.sync takes (direction, size, offset)")
        size, offset = size_offset
        _check_size(size, "size"), _check_size(offset, "offset")
        if offset + size > self._size:
            raise RuntimeError(f"bo.sync of [{offset}, {offset + size}) exceeds the buffer size {self._size}")
        if self._host is self._dev:
            return  # one memory: nothing to copy
        src, dst = ((self._host, self._dev) if direction == xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE
                    else (self._dev, self._host))
        lo = self._off + offset
        dst[lo:lo + size] = src[lo:lo + size]


def _aligned_zeros(size: int, align: int = 4096) -> np.ndarray:
    raw = np.zeros(size + align, dtype=np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + size]


def _check_size(v: Any, what: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise TypeError(f"{what} must be a non-negative int, got {v!r}")


_CU_LOCKS: dict[str, threading.Lock] = {}


class kernel:  # noqa: N801 - pyxrt's name
    class cu_access_mode(enum.IntEnum):
        exclusive = 0
        shared = 1
        none = 2

    exclusive, shared, none = cu_access_mode.exclusive, cu_access_mode.shared, cu_access_mode.none

    def __init__(self, *args: Any):
        if len(args) == 3:
            raise _too_new("kernel(device, uuid, name)", "2.13", "kernel(device, uuid, name, kernel.shared)")
        if len(args) != 4:
            raise TypeError("kernel(device, uuid, name, cu_access_mode)")
        dev, xuuid, name, mode = args
        if (not isinstance(dev, device) or not isinstance(xuuid, uuid) or not isinstance(name, str)
                or not isinstance(mode, kernel.cu_access_mode)):
            raise TypeError("kernel(device, uuid, name, cu_access_mode)")
        xb = dev._xclbins.get(xuuid)
        if xb is None:
            raise RuntimeError(f"no xclbin with uuid {xuuid.to_string()} is loaded on the device")
        base = name.split(":")[0]
        if base not in xb._kernels:
            raise RuntimeError(f"No kernel '{base}' in the xclbin (it has: {', '.join(sorted(xb._kernels))})")
        self._name, self._args = base, xb._kernels[base]
        fn = getattr(xb._lib, base)
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p if kind == "ptr" else ctypes.c_int32 for _, kind in self._args]
        self._fn = fn
        self._lock = _CU_LOCKS.setdefault(f"{xb._path}:{base}", threading.Lock())

    def group_id(self, argno: int) -> int:
        if isinstance(argno, bool) or not isinstance(argno, int) or not 0 <= argno < len(self._args):
            raise RuntimeError(f"kernel {self._name}: no argument {argno!r}")
        if self._args[argno][1] != "ptr":
            raise RuntimeError(f"kernel {self._name}: argument {argno} ({self._args[argno][0]}) is a scalar, it has no memory group")
        return 0

    def __call__(self, *args: Any) -> "run":
        if len(args) != len(self._args):
            raise TypeError(f"kernel {self._name} takes {len(self._args)} arguments, got {len(args)}")
        cargs = []
        for i, (a, (name, kind)) in enumerate(zip(args, self._args)):
            where = f"kernel {self._name} argument {i} ({name})"
            if kind == "ptr":
                if not isinstance(a, bo):
                    raise TypeError(f"{where} must be a bo, got {type(a).__name__}")
                cargs.append(ctypes.c_void_p(a.address()))
            else:
                if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
                    raise TypeError(f"{where} must be a 32-bit int, got {type(a).__name__} {a!r} "
                                    "(pyxrt would silently drop it and leave the register unset)")
                if not _INT32[0] <= int(a) <= _INT32[1]:
                    raise OverflowError(f"{where} = {int(a)} does not fit a 32-bit int")
                cargs.append(int(a))
        return run(self, cargs)


class run:  # noqa: N801 - pyxrt's name
    """One execution; the kernel runs on a worker thread (ctypes drops the GIL) until ``wait``."""

    def __init__(self, k: kernel, cargs: list[Any]):
        self._state = ert_cmd_state.ERT_CMD_STATE_NEW
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._exec, args=(k, cargs), daemon=True, name=f"cu-{k._name}")
        self._state = ert_cmd_state.ERT_CMD_STATE_SUBMITTED
        self._thread.start()

    def _exec(self, k: kernel, cargs: list[Any]) -> None:
        with k._lock:
            try:
                k._fn(*cargs)
                self._state = ert_cmd_state.ERT_CMD_STATE_COMPLETED
            except BaseException as e:  # noqa: BLE001 - reported by wait()
                self._error = e
                self._state = ert_cmd_state.ERT_CMD_STATE_ERROR

    def wait(self, *timeout: int) -> ert_cmd_state:
        """``wait(timeout_ms)`` (0: no limit) -> the state; TIMEOUT while the run is still going."""
        if not timeout:
            raise _too_new("run.wait()", "2.12", "run.wait(timeout_ms)")
        if len(timeout) != 1:
            raise TypeError("run.wait takes (timeout_ms)")
        (timeout_ms,) = timeout
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, np.integer)) or not 0 <= timeout_ms < 1 << 32:
            raise TypeError(f"run.wait: timeout_ms must be an unsigned 32-bit int, got {timeout_ms!r}")
        self._thread.join(None if not timeout_ms else timeout_ms / 1000.0)
        if self._thread.is_alive():
            return ert_cmd_state.ERT_CMD_STATE_TIMEOUT
        return self._state

    def state(self) -> ert_cmd_state:
        return self._state
