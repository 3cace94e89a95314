"""Build and call the C++ model of ``nessa_fl_rtl`` directly (ctypes), outside the emulator.

The emulator (host/device/emu.py) compiles ``cmodel/*.cpp`` into its kernel library and calls
the model like any kernel; this helper is for tests and the benchmark, which also build the
model for other LANES / N_MAX values (``-D NESSA_FL_RTL_LANES=...``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpga_kernels import KERNEL_DIR
from host.device.rtl.regmap import pack_rows

__all__ = ["CModel", "CModelResult"]

SOURCE = KERNEL_DIR / "rtl" / "cmodel" / "nessa_fl_rtl.cpp"


@dataclass(frozen=True)
class CModelResult:
    ids: np.ndarray
    gains: np.ndarray
    weights: np.ndarray
    status: int
    cycles: int


class CModel:
    """The model compiled for one build (LANES, N_MAX, MAX_BURST, RNG_BPC, RNG_UNITS, OUTSTANDING) and
    one memory timing (``read_gap``, ``write_busy``: schedule.MemTiming; default the simulation's RAM)."""

    def __init__(self, lanes: int = 32, n_max: int = 8192, max_burst: int = 64, rng_bpc: int = 2, rng_units: int = 4,
                 outstanding: int = 8, read_gap: int = 2, write_busy: int = 3):
        self.lanes, self.n_max, self.max_burst = lanes, n_max, max_burst
        self.rng_bpc, self.rng_units, self.outstanding = rng_bpc, rng_units, outstanding
        defs = [f"-DNESSA_FL_RTL_LANES={lanes}", f"-DNESSA_FL_RTL_N_MAX={n_max}", f"-DNESSA_FL_RTL_MAX_BURST={max_burst}",
                f"-DNESSA_FL_RTL_RNG_BPC={rng_bpc}", f"-DNESSA_FL_RTL_RNG_UNITS={rng_units}",
                f"-DNESSA_FL_RTL_OUTSTANDING={outstanding}", f"-DNESSA_FL_RTL_READ_GAP={read_gap}",
                f"-DNESSA_FL_RTL_WRITE_BUSY={write_busy}"]
        key = hashlib.sha1(SOURCE.read_bytes() + " ".join(defs).encode()).hexdigest()[:12]
        so = Path(tempfile.gettempdir()) / f"nessa_fl_rtl_cmodel_{key}.so"
        if not so.exists():
            tmp = so.with_suffix(f".{os.getpid()}.tmp")
            subprocess.run(["g++", "-O2", "-std=c++17", "-Wall", "-Werror", "-Wno-unused-label", "-fPIC", "-shared",
                            *defs, "-o", str(tmp), str(SOURCE)], check=True)
            tmp.replace(so)
        self._lib = ctypes.CDLL(str(so))
        fn = self._lib.nessa_fl_rtl
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                       ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]
        self._fn = fn

    def run(self, sim: np.ndarray, k: int, *, n: int | None = None, ld: int | None = None, mode: int = 0,
            seed: int = 0, sample_size: int = 0) -> CModelResult:
        """Run on a square uint16 matrix; rows are packed to ld (multiple of LANES) in a 4 KiB-aligned buffer,
        as XRT allocates on a card (so the cycle count matches the RTL's for the same layout).
        ``mode``, ``seed``, ``sample_size``: the kernel's arguments (values are passed as their 32-bit pattern)."""
        rows, ld0 = pack_rows(sim, self.lanes)
        raw = np.zeros(rows.nbytes + 8192, dtype=np.uint8)
        off = (-raw.ctypes.data) % 4096
        buf = raw[off:off + rows.nbytes]
        buf[:] = rows.view(np.uint8).ravel()
        kk = max(int(k), 1)
        ids = np.full(kk, 0xFFFFFFFF, np.uint32)
        weights = np.full(kk, 0xFFFFFFFF, np.uint32)
        gains = np.zeros(kk, np.uint64)
        stats = np.zeros(2, np.uint64)
        self._fn(buf.ctypes.data, sim.shape[0] if n is None else n, k, ld0 if ld is None else ld,
                 ids.ctypes.data, gains.ctypes.data, weights.ctypes.data, stats.ctypes.data,
                 _i32(mode), _i32(seed), _i32(sample_size), 0, None)
        return CModelResult(ids.astype(np.int64), gains, weights.astype(np.int64), int(stats[0]), int(stats[1]))

    def run_parts(self, blocks: list[np.ndarray], descs: list[tuple[int, int, int, int]], *, mode: int = 1,
                  ld: int | None = None) -> CModelResult:
        """One run with parts (the kernel's parts / parts_ptr arguments): ``blocks`` are the parts'
        square uint16 matrices, laid out one after the other with one ``ld`` (default: the largest
        part padded to LANES) in a 4 KiB-aligned buffer; ``descs`` = [(n, k, seed, sample_size)]
        (the descriptors as given, so bad ones can be tried). Results: every part's k words in turn."""
        ld0 = -(-max(b.shape[0] for b in blocks) // self.lanes) * self.lanes
        ld = ld0 if ld is None else ld
        rows = np.concatenate([np.pad(b.astype(np.uint16), ((0, 0), (0, max(0, ld - b.shape[1])))) for b in blocks])
        raw = np.zeros(rows.nbytes + 8192, dtype=np.uint8)
        off = (-raw.ctypes.data) % 4096
        buf = raw[off:off + rows.nbytes]
        buf[:] = rows.view(np.uint8).ravel()
        table = np.array([[int(v) & 0xFFFFFFFF for v in d] for d in descs], dtype=np.uint32).reshape(-1, 4)
        kk = max(1, sum(int(d[1]) & 0xFFFFFFFF for d in descs))
        ids = np.full(kk, 0xFFFFFFFF, np.uint32)
        weights = np.full(kk, 0xFFFFFFFF, np.uint32)
        gains = np.zeros(kk, np.uint64)
        stats = np.zeros(2, np.uint64)
        self._fn(buf.ctypes.data, 0, 0, ld, ids.ctypes.data, gains.ctypes.data, weights.ctypes.data, stats.ctypes.data,
                 _i32(mode), 0, 0, len(descs), table.ctypes.data)
        return CModelResult(ids.astype(np.int64), gains, weights.astype(np.int64), int(stats[0]), int(stats[1]))


def _i32(v: int) -> int:
    """The signed 32-bit int whose bit pattern is ``v mod 2**32`` (as pyxrt passes a uint32 register)."""
    v = int(v) & 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v
