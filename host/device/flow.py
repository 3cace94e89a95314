"""The one host code path that drives the NeSSA kernels, identical for pyxrt and the emulator.

Every kernel call goes device -> xclbin -> kernel -> buffers -> sync -> run -> wait -> check,
written once here against the pyxrt API (``rt`` is the real ``pyxrt`` module, the emulator
:mod:`host.device.emu`, the PYNQ adapter or the recording stand-in -- this code cannot tell).

Buffers: inputs are ``normal`` bos written then synced to the device; the similarity scratch is
``device_only`` (it never leaves the card); samples read from the drive go into a ``p2p`` bo
(see :meth:`DeviceFlow.features_from_file`). Kernel scalars are always Python ints in 32-bit
range (pyxrt silently drops anything else).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from host.golden.greedy import GreedyResult
from host.quantize.format import QModel

__all__ = ["DeviceError", "DeviceFlow", "GreedyRun", "FeaturesRun", "i32"]

_GREEDY_STATUS = {1: "n out of range", 2: "d out of range", 3: "k out of range",
                  4: "maxd_q out of range (or the largest distance exceeds 65535)", 5: "unknown mode",
                  6: "sample_size < 1"}
_FEATURES_STATUS = {1: "bad program magic / version", 2: "program too large", 3: "weights too large or out of range",
                    4: "slot / class / embedding limits exceeded", 5: "unknown or misplaced opcode",
                    6: "negative sample count", 7: "a layer does not fit the activation slots"}
#: Bytes of one O_DIRECT transfer unit (NVMe logical block / page).
DIRECT_ALIGN = 4096


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


@dataclass
class FeaturesRun:
    features: np.ndarray  # int16 [n, C], Q1.14
    embedding: np.ndarray | None  # int8 [n, E]


class DeviceFlow:
    """An opened device with the NeSSA xclbin loaded; one method per kernel."""

    def __init__(self, rt: Any, xclbin_path: str, device_index: int = 0):
        self.rt = rt
        self.device = rt.device(device_index)
        self.xclbin = rt.xclbin(str(xclbin_path))
        self.uuid = self.device.load_xclbin(self.xclbin)
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
        state = r.wait()
        if state != self.rt.ert_cmd_state.ERT_CMD_STATE_COMPLETED:
            raise DeviceError(f"kernel {name} ended in state {state}")

    # ---- nessa_greedy --------------------------------------------------------------------
    def greedy(self, q: np.ndarray, k: int, *, maxd_q: int = 0, mode: int = 0, seed: int = 0,
               sample_size: int = 1) -> GreedyRun:
        """Run ``nessa_greedy`` over int16 features ``q`` ``[n, d]`` (one class)."""
        q = np.ascontiguousarray(q, dtype=np.int16)
        n, d = q.shape
        kern = self.kernel("nessa_greedy")
        b_feat = self._input(kern, 0, q)
        b_sim = self._bo(kern, 1, 2 * n * n, self.rt.bo.device_only)
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
        ``sample`` column of an Arrow shard). Each run is read with ``os.preadv`` into the
        ``map()`` of a ``p2p`` bo -- on a SmartSSD with ``direct=True`` the file is opened
        ``O_DIRECT`` and the NVMe controller DMAs into FPGA DDR; in emulation the same calls read
        the file into the emulated DDR. The read is widened to 4 KiB alignment and the kernel
        gets the remaining byte offset.
        """
        kern = self.kernel("nessa_features")
        b_prog, b_w = self._model_buffers(kern, qm)
        sb = qm.sample_bytes
        flags = os.O_RDONLY | (getattr(os, "O_DIRECT", 0) if direct else 0)
        fd = os.open(path, flags)
        outs, done = [], 0
        try:
            for off, cnt in ranges:
                lo = off - off % DIRECT_ALIGN
                hi = -(-(off + cnt * sb) // DIRECT_ALIGN) * DIRECT_ALIGN
                b_s = self._bo(kern, 0, hi - lo, self.rt.bo.p2p)
                view = b_s.map()
                got = os.preadv(fd, [view], lo)
                if got < off + cnt * sb - lo:
                    raise DeviceError(f"short P2P read from {path}: {got} bytes at {lo}")
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
