"""The one host code path that drives the NeSSA kernels, identical for pyxrt and the emulator.

Every kernel call goes device -> xclbin -> kernel -> buffers -> sync -> run -> wait -> check,
written once here against the pyxrt API (``rt`` is the real ``pyxrt`` module, the emulator
:mod:`host.device.emu`, the PYNQ adapter or the recording stand-in -- this code cannot tell).

Buffers: inputs are ``normal`` bos written then synced to the device; the similarity scratch is
``device_only`` (it never leaves the card); samples read from the drive go into a ``p2p`` bo
(see :meth:`DeviceFlow.features_from_file`). Kernel scalars are always Python ints in 32-bit
range (pyxrt silently drops anything else).

Only calls the pyxrt of XRT 2.11 and 2.12 binds (SmartSSD platforms ship those; see
host/device/emu.py for the tags read): ``bo.sync(direction, size, offset)`` always with size and
offset, ``run.wait(timeout_ms)`` always with a timeout (polled until ``timeout_s``), kernels
opened with an explicit access mode, no ``host_only`` buffers, and the kernels an xclbin holds
read from ``xclbin.get_ips()`` (``get_kernels`` is 2.12+).

Greedy runs where the system model (sim/perf) costs it: when the xclbin holds the RTL engine
``nessa_fl_rtl``, the class fits its on-chip tables (``RTL_N_MAX``) and the mode is one the
engine runs -- stochastic (1) or naive exact (2) -- ``nessa_greedy`` only writes the similarity
rows (a one-pick stochastic run: its phase 1 plus one row) and ``nessa_fl_rtl`` runs greedy over
those rows in device memory. Lazy greedy (0) stays on ``nessa_greedy``: the engine has no lazy
mode, and exact greedy evaluates every candidate at every step (for n = 3000, k = 300 the
emulator takes 13 s on the engine's model against 1 s lazily). Both paths give the golden
model's picks bit for bit.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from host.device.direct_io import DIRECT_ALIGN, MAX_TRANSFER, open_direct, read_full, split_runs
from host.golden.greedy import GreedyResult
from host.quantize.format import QModel

__all__ = ["DeviceError", "DeviceFlow", "GreedyRun", "FeaturesRun", "i32", "RTL_KERNEL", "RTL_N_MAX", "WAIT_SLICE_MS",
           "xclbin_kernels"]

_GREEDY_STATUS = {1: "n out of range", 2: "d out of range", 3: "k out of range",
                  4: "maxd_q out of range (or the largest distance exceeds 65535)", 5: "unknown mode",
                  6: "sample_size < 1"}
_FEATURES_STATUS = {1: "bad program magic / version", 2: "program too large", 3: "weights too large or out of range",
                    4: "slot / class / embedding limits exceeded", 5: "unknown or misplaced opcode",
                    6: "negative sample count", 7: "a layer does not fit the activation slots"}
#: The RTL greedy engine's kernel name and the largest class its shipped build holds
#: (nessa_fl_rtl.v N_MAX as fpga_kernels/Makefile packages it; the C++ model's default).
RTL_KERNEL = "nessa_fl_rtl"
RTL_N_MAX = 8192
#: One ``run.wait`` slice; the flow polls until its ``timeout_s`` (XRT 2.11's wait needs a timeout).
WAIT_SLICE_MS = 1000
#: States a run passes through before it ends. A wait slice returns TIMEOUT in XRT 2.12 when the
#: slice ends first; 2.11's wait(timeout) blocks until the run ends (xrt_kernel.cpp at the tags).
_PENDING = ("ERT_CMD_STATE_NEW", "ERT_CMD_STATE_QUEUED", "ERT_CMD_STATE_SUBMITTED", "ERT_CMD_STATE_RUNNING",
            "ERT_CMD_STATE_TIMEOUT")


def xclbin_kernels(xb: Any) -> frozenset[str]:
    """Kernel names an xclbin holds. pyxrt binds ``xclbin.get_ips()`` (compute units named
    ``kernel:cu``) in XRT 2.11 to 2.15 and ``get_kernels()`` from 2.12 on, dropping ``get_ips`` in
    2.16 (read at the tags): the SmartSSD releases have ``get_ips``, later ones ``get_kernels``."""
    get_ips = getattr(xb, "get_ips", None)
    if get_ips is not None:
        return frozenset(str(ip.get_name()).split(":")[0] for ip in get_ips() if ":" in str(ip.get_name()))
    get_kernels = getattr(xb, "get_kernels", None)
    if get_kernels is not None:  # XRT >= 2.16
        return frozenset(str(k.get_name()) for k in get_kernels())
    return frozenset()


class DeviceError(RuntimeError):
    """A kernel run did not complete, or reported a bad status."""


def i32(v: int) -> int:
    """Python int -> the signed 32-bit value with the same low 32 bits (for seeds, etc.)."""
    v = int(v) & 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


@dataclass
class GreedyRun:
    result: GreedyResult
    maxd_q: int  # the similarity bound actually used
    evaluations: int  # exact gain evaluations (each reads one similarity row)
    rows_read: int
    kernel: str = "nessa_greedy"  # the kernel that ran greedy
    cycles: int | None = None  # nessa_fl_rtl's cycle register (RTL runs only)


@dataclass
class FeaturesRun:
    features: np.ndarray  # int16 [n, C], Q1.14
    embedding: np.ndarray | None  # int8 [n, E]


class DeviceFlow:
    """An opened device with the NeSSA xclbin loaded; one method per kernel."""

    def __init__(self, rt: Any, xclbin_path: str, device_index: int = 0, *, timeout_s: float = 600.0,
                 use_rtl: bool = True, p2p: bool = True, p2p_bar_bytes: int | None = None):
        if isinstance(device_index, bool) or not isinstance(device_index, int) or device_index < 0:
            raise ValueError(f"device_index must be a non-negative int, got {device_index!r}")
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        if p2p_bar_bytes is not None and (isinstance(p2p_bar_bytes, bool) or not isinstance(p2p_bar_bytes, int)
                                          or p2p_bar_bytes < 2 * DIRECT_ALIGN):
            raise ValueError(f"p2p_bar_bytes must be None or an int >= {2 * DIRECT_ALIGN}, got {p2p_bar_bytes!r}")
        self.rt = rt
        self.device_index = device_index
        self.timeout_s = float(timeout_s)
        #: whether samples from a file go into p2p bos (False: normal bos filled by pread + sync)
        self.p2p = bool(p2p)
        #: bytes of one device buffer on the file path (the P2P BAR window, when known)
        self.max_transfer = min(MAX_TRANSFER, p2p_bar_bytes) if p2p_bar_bytes else MAX_TRANSFER
        self.device = rt.device(device_index)
        self.xclbin = rt.xclbin(str(xclbin_path))
        self.uuid = self.device.load_xclbin(self.xclbin)
        #: kernels the loaded xclbin holds (its compute units)
        self.kernels = xclbin_kernels(self.xclbin)
        self.use_rtl = bool(use_rtl)
        self._kernels: dict[str, Any] = {}

    # ---- plumbing ------------------------------------------------------------------------
    def kernel(self, name: str) -> Any:
        if name not in self._kernels:
            self._kernels[name] = self.rt.kernel(self.device, self.uuid, name, self.rt.kernel.shared)
        return self._kernels[name]

    def _bo(self, k: Any, argno: int, nbytes: int, flags: Any = None) -> Any:
        flags = self.rt.bo.normal if flags is None else flags
        return self.rt.bo(self.device, max(int(nbytes), 1), flags, k.group_id(argno))

    def _input(self, k: Any, argno: int, arr: np.ndarray) -> Any:
        arr = np.ascontiguousarray(arr)
        b = self._bo(k, argno, arr.nbytes)
        if arr.nbytes:
            b.write(arr, 0)
            b.sync(self.rt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, arr.nbytes, 0)
        return b

    def _output(self, b: Any, nbytes: int, dtype: Any) -> np.ndarray:
        b.sync(self.rt.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE, nbytes, 0)
        return np.asarray(b.read(nbytes, 0)).view(dtype).copy()

    def _run(self, k: Any, name: str, *args: Any) -> None:
        r = k(*args)
        states = self.rt.ert_cmd_state
        pending = {getattr(states, p) for p in _PENDING if hasattr(states, p)}
        deadline = time.monotonic() + self.timeout_s
        while True:
            state = r.wait(WAIT_SLICE_MS)
            if state == states.ERT_CMD_STATE_COMPLETED:
                return
            if state not in pending:
                raise DeviceError(f"kernel {name} ended in state {state}")
            if time.monotonic() >= deadline:
                raise DeviceError(f"kernel {name} did not finish within {self.timeout_s:g} s (last state {state})")

    # ---- greedy: nessa_greedy alone, or its similarity rows + nessa_fl_rtl -------------------
    def rtl_greedy_available(self, n: int, mode: int = 1) -> bool:
        """True when greedy in ``mode`` over a class of ``n`` runs on the RTL engine (module docstring)."""
        return self.use_rtl and RTL_KERNEL in self.kernels and 1 <= int(n) <= RTL_N_MAX and mode in (1, 2)

    def greedy(self, q: np.ndarray, k: int, *, maxd_q: int = 0, mode: int = 0, seed: int = 0,
               sample_size: int = 1) -> GreedyRun:
        """Greedy facility location over int16 features ``q`` ``[n, d]`` (one class)."""
        q = np.ascontiguousarray(q, dtype=np.int16)
        if q.ndim != 2:
            raise ValueError(f"features must be [n, d], got shape {q.shape}")
        if self.rtl_greedy_available(q.shape[0], mode) and 1 <= int(k) <= q.shape[0]:
            return self._greedy_rtl(q, int(k), maxd_q=maxd_q, mode=mode, seed=seed, sample_size=sample_size)
        return self._greedy_hls(q, k, maxd_q=maxd_q, mode=mode, seed=seed, sample_size=sample_size)

    def _greedy_hls(self, q: np.ndarray, k: int, *, maxd_q: int, mode: int, seed: int, sample_size: int) -> GreedyRun:
        n, d = q.shape
        kern = self.kernel("nessa_greedy")
        b_feat = self._input(kern, 0, q)
        b_sim = self._bo(kern, 1, 2 * n * (-(-n // 32) * 32), self.rt.bo.device_only)  # rows of ld = ceil(n/32)*32
        b_ids, b_w = self._bo(kern, 2, 4 * k), self._bo(kern, 3, 4 * k)
        b_g, b_st = self._bo(kern, 4, 8 * k), self._bo(kern, 5, 8 * 5)
        self._run(kern, "nessa_greedy", b_feat, b_sim, b_ids, b_w, b_g, b_st,
                  int(n), int(d), int(k), int(maxd_q), int(mode), i32(seed), int(sample_size))
        stats = self._output(b_st, 40, np.uint64)
        if int(stats[3]) != 0:
            raise DeviceError(f"nessa_greedy status {int(stats[3])}: {_GREEDY_STATUS.get(int(stats[3]), 'unknown')}")
        ids = self._output(b_ids, 4 * k, np.uint32).astype(np.int64)
        weights = self._output(b_w, 4 * k, np.uint32).astype(np.int64)
        gains = self._output(b_g, 8 * k, np.uint64)
        res = GreedyResult(ids=ids, gains=gains, weights=weights, objective=int(stats[0]))
        if int(gains.sum(dtype=np.uint64)) != res.objective or int(weights.sum()) != n:
            raise DeviceError("nessa_greedy returned inconsistent results (gains / weights do not add up)")
        return GreedyRun(res, int(stats[4]), int(stats[1]), int(stats[2]))

    def _greedy_rtl(self, q: np.ndarray, k: int, *, maxd_q: int, mode: int, seed: int, sample_size: int) -> GreedyRun:
        """Similarity rows by ``nessa_greedy`` into a device-only buffer, greedy by ``nessa_fl_rtl``.

        ``nessa_greedy`` writes the rows ``[n][ld]`` with ``ld = ceil(n / 32) * 32`` (each row on a
        512-bit word, padding columns 0) -- the layout the engine reads with the same ``ld``.
        """
        from host.device.rtl.regmap import ROW_ALIGN, decode_status

        n, d = q.shape
        ld = -(-n // ROW_ALIGN) * ROW_ALIGN
        hls = self.kernel("nessa_greedy")
        b_feat = self._input(hls, 0, q)
        b_sim = self._bo(hls, 1, 2 * n * ld, self.rt.bo.device_only)
        scratch = [self._bo(hls, i, 8 * 1) for i in (2, 3, 4)]
        b_st = self._bo(hls, 5, 8 * 5)
        # one pick of a one-candidate stochastic step: phase 1 (the rows) plus two row reads
        self._run(hls, "nessa_greedy", b_feat, b_sim, *scratch, b_st, int(n), int(d), 1, int(maxd_q), 1, 0, 1)
        st = self._output(b_st, 40, np.uint64)
        if int(st[3]) != 0:
            raise DeviceError(f"nessa_greedy status {int(st[3])}: {_GREEDY_STATUS.get(int(st[3]), 'unknown')}")
        rtl = self.kernel(RTL_KERNEL)
        b_ids, b_g, b_w = self._bo(rtl, 4, 4 * k), self._bo(rtl, 5, 8 * k), self._bo(rtl, 6, 4 * k)
        b_rs, b_parts = self._bo(rtl, 7, 16), self._bo(rtl, 12, 16)  # parts = 0: parts_ptr is not read
        stochastic = mode == 1
        self._run(rtl, RTL_KERNEL, b_sim, int(n), int(k), int(ld), b_ids, b_g, b_w, b_rs,
                  int(mode), i32(seed) if stochastic else 0, int(sample_size) if stochastic else 0, 0, b_parts)
        rs = self._output(b_rs, 16, np.uint64)
        if int(rs[0]) != 0:
            raise DeviceError(f"{RTL_KERNEL} status {int(rs[0]):#x}: {'; '.join(decode_status(int(rs[0])))}")
        ids = self._output(b_ids, 4 * k, np.uint32).astype(np.int64)
        weights = self._output(b_w, 4 * k, np.uint32).astype(np.int64)
        gains = self._output(b_g, 8 * k, np.uint64)
        res = GreedyResult(ids=ids, gains=gains, weights=weights, objective=int(gains.sum(dtype=np.uint64)))
        if int(weights.sum()) != n:
            raise DeviceError(f"{RTL_KERNEL} returned inconsistent results (weights sum to {int(weights.sum())}, not {n})")
        # the engine's schedule: every step scans its candidates and reads the pick's row once
        # more; the weight pass reads each pick's row
        evals = sum(min(int(sample_size), n - t) if stochastic else n - t for t in range(k))
        return GreedyRun(res, int(st[4]), evals, evals + 2 * k, kernel=RTL_KERNEL, cycles=int(rs[1]))

    # ---- nessa_features ------------------------------------------------------------------
    def _features_run(self, kern: Any, b_samples: Any, in_offset: int, labels: np.ndarray, qm: QModel,
                      b_prog: Any, b_w: Any, embedding: bool) -> FeaturesRun:
        n, c, e = len(labels), qm.num_classes, qm.embed_dim
        b_lab = self._input(kern, 1, np.asarray(labels, dtype=np.int32))
        b_f, b_e, b_st = self._bo(kern, 4, 2 * n * c), self._bo(kern, 5, n * e if embedding else 1), self._bo(kern, 6, 16)
        self._run(kern, "nessa_features", b_samples, b_lab, b_prog, b_w, b_f, b_e, b_st,
                  int(in_offset), int(qm.program.size), int(n), 1 if embedding else 0)
        st = self._output(b_st, 16, np.int32)
        if int(st[0]) != 0:
            raise DeviceError(f"nessa_features status {int(st[0])}: {_FEATURES_STATUS.get(int(st[0]), 'unknown')}")
        feats = self._output(b_f, 2 * n * c, np.int16).reshape(n, c)
        emb = self._output(b_e, n * e, np.int8).reshape(n, e) if embedding else None
        return FeaturesRun(feats, emb)

    def _model_buffers(self, kern: Any, qm: QModel) -> tuple[Any, Any]:
        return self._input(kern, 2, qm.program), self._input(kern, 3, qm.weights)

    def features(self, qm: QModel, samples: np.ndarray, labels: np.ndarray, *, embedding: bool = False,
                 batch_size: int = 4096) -> FeaturesRun:
        """Run ``nessa_features`` over uint8 samples held in host memory (batch by batch)."""
        x = np.ascontiguousarray(samples, dtype=np.uint8).reshape(len(samples), -1)
        if x.shape[1] != qm.sample_bytes:
            raise ValueError(f"samples have {x.shape[1]} bytes each, the model expects {qm.sample_bytes}")
        kern = self.kernel("nessa_features")
        b_prog, b_w = self._model_buffers(kern, qm)
        outs = []
        for lo in range(0, len(x), batch_size):
            b_s = self._input(kern, 0, x[lo:lo + batch_size])
            outs.append(self._features_run(kern, b_s, 0, labels[lo:lo + batch_size], qm, b_prog, b_w, embedding))
        return _concat(outs, qm, embedding)

    def features_from_file(self, qm: QModel, path: str, ranges: Sequence[tuple[int, int]], labels: np.ndarray, *,
                           embedding: bool = False, direct: bool = False) -> FeaturesRun:
        """``nessa_features`` over samples read from a file straight into device memory (P2P).

        ``ranges`` are ``(file_offset, n_samples)`` runs of contiguous sample bytes (the
        ``sample`` column of an Arrow shard), cut into device buffers of at most
        ``max_transfer`` bytes. Each piece is read with ``os.preadv`` (looping over short reads)
        into the ``map()`` of a ``p2p`` bo -- on a SmartSSD with ``direct=True`` the file is opened
        ``O_DIRECT`` and the NVMe controller DMAs into FPGA DDR; in emulation the same calls read
        the file into the emulated DDR. Where P2P is off (``self.p2p`` False) the piece is read
        into a ``normal`` bo's host memory and synced to the device. The read is widened to 4 KiB
        alignment and the kernel gets the remaining byte offset.
        """
        kern = self.kernel("nessa_features")
        b_prog, b_w = self._model_buffers(kern, qm)
        sb = qm.sample_bytes
        flags = self.rt.bo.p2p if self.p2p else self.rt.bo.normal
        fd, _ = open_direct(path, direct)
        outs, done = [], 0
        try:
            for off, cnt in split_runs(ranges, sb, self.max_transfer):
                lo = off - off % DIRECT_ALIGN
                hi = -(-(off + cnt * sb) // DIRECT_ALIGN) * DIRECT_ALIGN
                b_s = self._bo(kern, 0, hi - lo, flags)
                got = read_full(fd, b_s.map(), lo)
                if got < off + cnt * sb - lo:
                    raise DeviceError(f"short read from {path}: {got} of {off + cnt * sb - lo} bytes at {lo} "
                                      "(the file ends early)")
                if not self.p2p:
                    b_s.sync(self.rt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, hi - lo, 0)
                outs.append(self._features_run(kern, b_s, off - lo, labels[done:done + cnt], qm, b_prog, b_w, embedding))
                done += cnt
        finally:
            os.close(fd)
        return _concat(outs, qm, embedding)


def _concat(outs: list[FeaturesRun], qm: QModel, embedding: bool) -> FeaturesRun:
    if not outs:
        return FeaturesRun(np.zeros((0, qm.num_classes), np.int16),
                           np.zeros((0, qm.embed_dim), np.int8) if embedding else None)
    f = np.concatenate([o.features for o in outs])
    e = np.concatenate([o.embedding for o in outs]) if embedding else None
    return FeaturesRun(f, e)
