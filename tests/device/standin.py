"""An API-faithful stand-in for ``pyxrt`` that needs no card and no compiled kernels.

It mirrors the pybind11 bindings of XRT 2.11 (``src/python/pybind11/src/pyxrt.cpp`` at tag
202110.2.11.634, what SmartSSD platforms ship) including the parts that bite: overloads with
*required* arguments (``bo.write(buf, seek)``, ``bo.read(size, skip)``, ``bo.sync(dir, size,
offset)`` only, ``run.wait(timeout_ms)`` only, ``kernel(d, uuid, name, mode)`` only), no
``enumerate_devices``, ``device(i)`` raising past the last card (``DEVICES``), enum-typed flags
and directions, and ``kernel.__call__`` *silently dropping* any argument that is neither a bo
nor castable to a C ``int`` (the dropped argument's register keeps its old value -- here 0).
Each call is recorded in :data:`CALLS` (``(api, args summary)``).

The "card" executes the kernels with the numpy golden model (:func:`host.golden.nessa_greedy_ref`,
:func:`host.golden.qforward.qforward`) over its own byte memory, so a host flow run against the
stand-in returns real results that can be checked against the emulator's.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALLS", "DEVICES", "device", "xclbin", "uuid", "kernel", "bo", "run", "xclBOSyncDirection", "ert_cmd_state",
           "SIGNATURES"]

CALLS: list[tuple[str, tuple[Any, ...]]] = []
#: Cards the stand-in "sees": device(i) raises for i >= DEVICES, as XRT's does.
DEVICES = 1

#: What the hardware xclbin's metadata says about each kernel's arguments.
SIGNATURES = {
    "nessa_greedy": ["ptr"] * 6 + ["i32"] * 7,
    "nessa_features": ["ptr"] * 7 + ["i32"] * 4,
    "nessa_fl_rtl": ["ptr", "i32", "i32", "i32", "ptr", "ptr", "ptr", "ptr", "i32", "i32", "i32", "i32", "ptr"],
}


def _rec(api: str, *args: Any) -> None:
    CALLS.append((api, tuple(type(a).__name__ for a in args)))


class xclBOSyncDirection(enum.Enum):  # noqa: N801
    XCL_BO_SYNC_BO_TO_DEVICE = 0
    XCL_BO_SYNC_BO_FROM_DEVICE = 1


class ert_cmd_state(enum.Enum):  # noqa: N801
    ERT_CMD_STATE_NEW = 1
    ERT_CMD_STATE_COMPLETED = 4
    ERT_CMD_STATE_ERROR = 5


def _is_int(v: Any) -> bool:  # pybind11's int caster: no floats, no str; must fit a C int
    return isinstance(v, (int, np.integer)) and not isinstance(v, float) and -(1 << 31) <= int(v) < (1 << 31)


class uuid:  # noqa: N801
    def __init__(self, text: str):
        self._text = text

    def to_string(self) -> str:
        return self._text


class xclbin:  # noqa: N801
    def __init__(self, path: str):
        if not isinstance(path, str):
            raise TypeError("xclbin(): incompatible constructor arguments")
        if not Path(path).is_file():
            raise RuntimeError(f"Failed to open xclbin {path}")
        _rec("xclbin", path)
        self._uuid = uuid("standin-" + Path(path).name)

    def get_uuid(self) -> uuid:
        return self._uuid

    def get_ips(self) -> list["_Ip"]:
        return [_Ip(f"{n}:{n}_1") for n in sorted(SIGNATURES)]


class _Ip:
    def __init__(self, name: str):
        self._name = name

    def get_name(self) -> str:
        return self._name


class device:  # noqa: N801
    def __init__(self, *args: Any):
        if len(args) > 1 or (args and not _is_int(args[0])):
            raise TypeError("device(): incompatible constructor arguments")
        if args and not 0 <= int(args[0]) < DEVICES:
            raise RuntimeError(f"No such device with index '{args[0]}'")
        _rec("device", *args)
        self._loaded: dict[str, xclbin] = {}

    def load_xclbin(self, xb: "xclbin | str") -> uuid:
        if isinstance(xb, str):
            xb = xclbin(xb)
        if not isinstance(xb, xclbin):
            raise TypeError("load_xclbin(): incompatible function arguments")
        _rec("device.load_xclbin", xb)
        self._loaded[xb.get_uuid().to_string()] = xb
        return xb.get_uuid()


class bo:  # noqa: N801
    class flags(enum.Enum):
        normal = 0
        cacheable = 1 << 24
        svm = 1 << 27
        device_only = 1 << 28
        host_only = 1 << 29
        p2p = 1 << 30

    normal, cacheable, svm = flags.normal, flags.cacheable, flags.svm
    device_only, host_only, p2p = flags.device_only, flags.host_only, flags.p2p

    def __init__(self, dev: device, size: int, flags: "bo.flags", group: int):
        if not isinstance(dev, device) or not _is_int(size) or not isinstance(flags, bo.flags) or not _is_int(group):
            raise TypeError("bo(): incompatible constructor arguments")
        _rec("bo", dev, size, flags, group)
        self._mem = np.zeros(int(size), dtype=np.uint8)  # host view and card memory kept coherent

    def write(self, buf: Any, seek: int) -> None:
        _rec("bo.write", buf, seek)
        data = np.frombuffer(memoryview(buf).cast("B"), dtype=np.uint8)
        self._mem[seek:seek + data.size] = data

    def read(self, size: int, skip: int) -> np.ndarray:
        _rec("bo.read", size, skip)
        return self._mem[skip:skip + size].view(np.int8).copy()

    def sync(self, direction: xclBOSyncDirection, *rest: int) -> None:
        if not isinstance(direction, xclBOSyncDirection) or len(rest) != 2:
            raise TypeError("sync(): incompatible function arguments")
        _rec("bo.sync", direction, *rest)

    def map(self) -> memoryview:
        _rec("bo.map")
        return memoryview(self._mem)

    def size(self) -> int:
        return int(self._mem.size)


class run:  # noqa: N801
    def __init__(self, state: ert_cmd_state):
        self._state = state

    def wait(self, *timeout_ms: int) -> ert_cmd_state:
        if len(timeout_ms) != 1 or not _is_int(timeout_ms[0]) or timeout_ms[0] < 0:
            raise TypeError("wait(): incompatible function arguments")
        _rec("run.wait", *timeout_ms)
        return self._state


class kernel:  # noqa: N801
    class cu_access_mode(enum.Enum):
        exclusive = 0
        shared = 1
        none = 2

    exclusive, shared, none = cu_access_mode.exclusive, cu_access_mode.shared, cu_access_mode.none

    def __init__(self, dev: device, xuuid: uuid, name: str, mode: "kernel.cu_access_mode"):
        if (not isinstance(dev, device) or not isinstance(xuuid, uuid) or not isinstance(name, str)
                or not isinstance(mode, kernel.cu_access_mode)):
            raise TypeError("kernel(): incompatible constructor arguments")
        _rec("kernel", dev, xuuid, name, mode)
        if xuuid.to_string() not in dev._loaded or name not in SIGNATURES:
            raise RuntimeError(f"No kernel '{name}' in the loaded xclbin")
        self._name = name

    def group_id(self, argno: int) -> int:
        _rec("kernel.group_id", argno)
        if SIGNATURES[self._name][argno] != "ptr":
            raise RuntimeError("group_id: scalar argument")
        return 0

    def __call__(self, *args: Any) -> run:
        _rec("kernel()", *args)
        regs: list[Any] = [0] * len(SIGNATURES[self._name])
        for i, a in enumerate(args[: len(regs)]):
            if isinstance(a, bo) or _is_int(a):  # anything else is dropped without a word, like pyxrt
                regs[i] = a if isinstance(a, bo) else int(a)
        try:
            _EXEC[self._name](*regs)
            return run(ert_cmd_state.ERT_CMD_STATE_COMPLETED)
        except Exception:  # noqa: BLE001 - a crashed compute unit reports an error state
            return run(ert_cmd_state.ERT_CMD_STATE_ERROR)


def _exec_greedy(feats: bo, sim: bo, ids: bo, weights: bo, gains: bo, stats: bo, n: int, d: int, k: int,
                 maxd_q: int, mode: int, seed: int, sample_size: int) -> None:
    from host.golden.nessa_greedy import nessa_greedy_ref
    from host.golden.similarity import resolve_maxd_q, sim_q

    q = feats._mem[: 2 * n * d].view(np.int16).reshape(n, d)
    res, m = nessa_greedy_ref(q, k, maxd_q, mode, seed & 0xFFFFFFFF, sample_size)
    # the kernel leaves the similarity rows [n][ld] in its sim buffer, ld = ceil(n / 32) * 32 with
    # zero padding columns (nessa_fl_rtl reads them with that ld)
    ld = -(-n // 32) * 32
    rows = np.zeros((n, ld), np.uint16)
    rows[:, :n] = sim_q(q, resolve_maxd_q(q, maxd_q))
    sim._mem[: 2 * n * ld] = rows.view(np.uint8).reshape(-1)
    ids._mem[: 4 * k] = res.ids.astype(np.uint32).view(np.uint8)
    weights._mem[: 4 * k] = res.weights.astype(np.uint32).view(np.uint8)
    gains._mem[: 8 * k] = res.gains.astype(np.uint64).view(np.uint8)
    st = np.array([res.objective, 0, 0, 0, m], dtype=np.uint64)
    stats._mem[:40] = st.view(np.uint8)


def _exec_features(samples: bo, labels: bo, prog: bo, weights: bo, feats: bo, embed: bo, stats: bo,
                   in_offset: int, prog_words: int, n: int, flags: int) -> None:
    from host.golden.qforward import qforward
    from host.quantize.format import QModel

    p = prog._mem[: 4 * prog_words].view(np.int32)
    qm = QModel(program=p, weights=weights._mem[: int(p[15])].view(np.int8))
    sb = qm.sample_bytes
    x = samples._mem[in_offset:in_offset + n * sb].reshape(n, sb)
    r = qforward(qm, x, labels._mem[: 4 * n].view(np.int32))
    feats._mem[: r.features.nbytes] = r.features.view(np.uint8).reshape(-1)
    if flags & 1:
        embed._mem[: r.embedding.nbytes] = r.embedding.view(np.uint8).reshape(-1)
    stats._mem[:16] = np.array([0, n, qm.header["n_ops"], 0], dtype=np.int32).view(np.uint8)


def _exec_fl_rtl(sim: bo, n: int, k: int, ld: int, ids: bo, gains: bo, weights: bo, stats: bo, mode: int, seed: int,
                 sample_size: int, parts: int, parts_ptr: bo) -> None:
    from host.golden.greedy import greedy_fixed
    from host.golden.stochastic import greedy_stochastic_fixed

    if parts:
        raise NotImplementedError("the stand-in runs nessa_fl_rtl on one class (parts = 0)")
    rows = sim._mem[: 2 * n * ld].view(np.uint16).reshape(n, ld)[:, :n]
    res = greedy_stochastic_fixed(rows, k, seed & 0xFFFFFFFF, sample_size) if mode == 1 else greedy_fixed(rows, k)
    ids._mem[: 4 * k] = res.ids.astype(np.uint32).view(np.uint8)
    weights._mem[: 4 * k] = res.weights.astype(np.uint32).view(np.uint8)
    gains._mem[: 8 * k] = res.gains.astype(np.uint64).view(np.uint8)
    stats._mem[:16] = np.array([0, 1], dtype=np.uint64).view(np.uint8)  # status ok, a cycle count


_EXEC = {"nessa_greedy": _exec_greedy, "nessa_features": _exec_features, "nessa_fl_rtl": _exec_fl_rtl}
