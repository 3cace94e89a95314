"""Register map, status bits and similarity-row layout of the ``nessa_fl_rtl`` kernel.

The single source of these numbers for Python (the cocotb benches, the benchmark and any host
code that drives the kernel); fl_axil_ctrl.v and kernel.xml carry the same offsets.

Layout of ``sim_ptr``: uint16 ``[n][ld]`` row-major, row ``j`` = similarities of candidate ``j``
to every member; ``ld`` (elements) is a multiple of the kernel's LANES -- ``ROW_ALIGN`` (32, one
512-bit beat) suits every build. Padding columns are never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PART_DESC_DTYPE", "MODE_EXACT", "MODE_STOCHASTIC", "MODE_NAIVE", "ARG_ORDER", "ROW_ALIGN", "REG", "STATUS_BITS", "KernelArgs", "cycle_model", "decode_status", "pack_rows"]

#: Kernel arguments in register order (= the C++ model's parameter order).
ARG_ORDER = ("sim_ptr", "n", "k", "ld", "out_ids_ptr", "out_gains_ptr", "out_weights_ptr", "out_stats_ptr",
             "mode", "seed", "sample_size", "parts", "parts_ptr")

#: ``mode`` values (host/golden/nessa_greedy.py numbering): the RTL runs exact (naive) greedy for
#: 0 and 2 -- the same picks as lazy greedy -- and stochastic greedy for 1.
MODE_EXACT, MODE_STOCHASTIC, MODE_NAIVE = 0, 1, 2

#: Row stride multiple (elements) that every LANES <= 32 build accepts.
ROW_ALIGN = 32

#: Byte offsets in s_axi_control (64-bit pointers: low word at the offset, high word at +4).
REG = {
    "control": 0x00,  # bit0 ap_start, bit1 ap_done (COR), bit2 ap_idle, bit3 ap_ready (COR), bit7 auto_restart
    "gie": 0x04,
    "ier": 0x08,
    "isr": 0x0C,
    "sim_ptr": 0x10,
    "n": 0x18,
    "k": 0x1C,
    "ld": 0x20,
    "out_ids_ptr": 0x28,
    "out_gains_ptr": 0x30,
    "out_weights_ptr": 0x38,
    "out_stats_ptr": 0x40,  # uint64 [2] {status, cycles}, written by the kernel at the end
    "status": 0x48,  # read-only
    "cycles": 0x4C,  # read-only, 64 bits
    "mode": 0x54,  # 0 / 2 exact, 1 stochastic
    "seed": 0x58,  # stochastic: xorshift32 seed (uint32)
    "sample_size": 0x5C,  # stochastic: candidates per step (>= 1)
    "parts": 0x60,  # 0: one class (n, k, seed, sample_size); P >= 1: P parts, one descriptor each
    "parts_ptr": 0x68,  # uint32 [P][4] part descriptors {n, k, seed, sample_size} (PART_DESC_DTYPE)
}

#: One part descriptor (little endian, 16 bytes): part i's n_i x n_i block of rows follows part
#: i-1's in ``sim`` (same ``ld``), its k_i results follow part i-1's in every output array.
PART_DESC_DTYPE = np.dtype([("n", "<u4"), ("k", "<u4"), ("seed", "<u4"), ("sample_size", "<u4")])

#: status bits (0 = ok). Bits 0-6: the run was refused, nothing read; only the stats are written (with
#: parts, bits 0, 1 and 6 are not checked: the descriptors carry n, k, sample_size). Bit 7: parts before
#: the bad descriptor ran and wrote their results; the run stopped there.
STATUS_BITS = {
    0: "n not in 1..N_MAX",
    1: "k not in 1..n",
    2: "ld not in n..2**24-1 or not a multiple of LANES",
    3: "sim_ptr not aligned to the bus width (2*LANES bytes), or parts_ptr not 16-byte aligned",
    4: "an output pointer is not 4-byte aligned",
    5: "mode not in 0..2",
    6: "mode 1 (stochastic) with sample_size 0",
    7: "a part descriptor is bad (n not in 1..min(N_MAX, ld), k not in 1..n, or sample_size 0 in mode 1)",
    8: "AXI read error response",
    9: "AXI write error response",
}


def decode_status(status: int) -> list[str]:
    """Human-readable problems named by a status word ([] when 0)."""
    return [msg for bit, msg in STATUS_BITS.items() if status >> bit & 1]


@dataclass(frozen=True)
class KernelArgs:
    """Kernel arguments in register (and C++ model) order."""

    sim_ptr: int
    n: int
    k: int
    ld: int
    out_ids_ptr: int
    out_gains_ptr: int
    out_weights_ptr: int
    out_stats_ptr: int
    mode: int = MODE_EXACT
    seed: int = 0
    sample_size: int = 0
    parts: int = 0
    parts_ptr: int = 0

    def words(self) -> list[tuple[int, int]]:
        """(offset, 32-bit value) writes that program these arguments."""
        out = []
        for name in ARG_ORDER:
            val = getattr(self, name)
            out.append((REG[name], val & 0xFFFFFFFF))
            if name.endswith("_ptr"):
                out.append((REG[name] + 4, val >> 32))
        return out


def pack_rows(sim: np.ndarray, align: int = ROW_ALIGN) -> tuple[np.ndarray, int]:
    """Pad an ``n x n`` uint16 similarity matrix to ``n x ld`` rows (ld a multiple of ``align``)."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square matrix, got shape {sim.shape}")
    if sim.dtype != np.uint16:
        raise ValueError(f"sim must be uint16, got {sim.dtype}")
    if align < 1:
        raise ValueError(f"align must be >= 1, got {align}")
    n = sim.shape[0]
    ld = -(-n // align) * align
    out = np.zeros((n, ld), dtype=np.uint16)
    out[:, :n] = sim
    return out, ld


def cycle_model(n: int, k: int, lanes: int, row_cycles_extra: int, step_extra: int, fixed: int,
                weight_extra: int) -> int:
    """Cycles of one run: the engine's exact schedule with the memory-dependent constants fitted.

    Every greedy step t reads the n - t unselected rows (ceil(n/lanes) beats each, plus
    ``row_cycles_extra`` turnaround cycles), then writes three words and reads row j* once more;
    the weight pass reads the k selected rows one at a time. The constants depend on the AXI
    slave's latency, so bench/rtl_cycles.py fits them on short simulated runs and checks the
    model against full runs before it extrapolates. Unselected-candidate scans hide under row reads.
    """
    beats = -(-n // lanes)
    evals = k * n - k * (k - 1) // 2
    return (fixed + n + evals * (beats + row_cycles_extra) + k * (step_extra + beats)
            + k * (beats + weight_extra) + (n - k) * 2)
