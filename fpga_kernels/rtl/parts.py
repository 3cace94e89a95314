"""Partitioned selection with ``nessa_fl_rtl``: a class split into parts of at most ``max_part``
members, the kernel called once per part, back to back (GreeDi's proportional split without a
merge round, as host/greedi.py does on the CPU when no part can shrink).

Why: the engine streams one n-wide row per candidate, so a whole class costs O(n^2 / LANES)
cycles against an O(n) read from the drive; parts of p members cost O(n p / LANES) and, for
p ~ 128 at LANES = 32, hide under the read (BENCHMARKS.md, "RTL facility-location engine").

Split (deterministic in ``seed``): ``parts = ceil(n / max_part)`` parts of a random permutation
(``numpy.random.default_rng(seed)``, ``np.array_split``: sizes differ by at most one, each part's
members sorted ascending), the budget ``k`` split over them in proportion to their sizes
(host/greedi.py ``split_budget``: largest remainder, sums to ``k``). Part ``i`` runs stochastic
greedy with seed ``seed + i`` and ``sample_size = stochastic_sample_size(p_i, k_i, epsilon)``
(exact greedy when ``mode != 1``) on its own ``p_i x p_i`` similarity block. Results map back
through the members: ``ids`` are class-local, ``weights`` count members of the own part (they
sum to ``n``: the parts partition the class).

Host cost on a card: one kernel run per part. The runs are started back to back without
waiting (XRT queues them; ap_ctrl_hs: the next starts after the previous is done), so each part
adds the per-run scheduling overhead ``PART_CALL_US`` -- an assumption, not a measurement here
(no card): ~5 us per queued run is XRT's embedded-scheduler rate (Xilinx/XRT pull request 4071:
~206k runs/s with 32 queued on a U50), while a synchronous start + wait round trip is ~16-100 us
(Xilinx/XRT issues 6601, 8687), which ``SYNC_CALL_US`` stands for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpga_kernels.rtl.regmap import MODE_STOCHASTIC, decode_status, pack_rows
from host.golden.greedy import greedy_fixed
from host.golden.stochastic import greedy_stochastic_fixed, stochastic_sample_size

__all__ = ["PART_CALL_US", "SYNC_CALL_US", "Part", "PartsResult", "split_parts", "parts_golden", "coverage",
           "run_parts"]

#: Assumed host overhead per part when the part runs are queued back to back (see module docstring).
PART_CALL_US = 5.0
#: Assumed overhead per part when each run is started and waited for on its own.
SYNC_CALL_US = 50.0


@dataclass(frozen=True)
class Part:
    """One part: its class-local members (ascending), budget and stochastic arguments."""

    members: np.ndarray  # int64 [p]
    k: int
    seed: int
    sample_size: int  # 0 in exact mode


@dataclass(frozen=True)
class PartsResult:
    ids: np.ndarray  # int64 [k], class-local, part by part in selection order
    weights: np.ndarray  # int64 [k], members of the own part closest to each pick
    part_ids: list[np.ndarray]  # part-local picks of each part (what the kernel returns)
    cycles: list[int] | None = None  # the kernel's cycle count of each part run (run_parts only)


def _split_budget(k: int, sizes: np.ndarray) -> np.ndarray:
    from host.greedi import split_budget  # the CPU path's rule, so both split k the same way

    return split_budget(k, sizes)


def split_parts(n: int, k: int, max_part: int, *, seed: int = 1, mode: int = 1, epsilon: float = 0.01) -> list[Part]:
    """Parts of a class of ``n`` members selecting ``k`` in all (see module docstring)."""
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n} k={k}")
    if max_part < 1:
        raise ValueError(f"max_part must be >= 1, got {max_part}")
    count = math.ceil(n / max_part)
    members = np.array_split(np.random.default_rng(seed).permutation(n), count)
    budget = _split_budget(k, np.array([len(m) for m in members]))
    out = []
    for i, (m, kp) in enumerate(zip(members, budget)):
        kp = int(kp)
        if kp == 0:  # a part too small to get a pick (k < parts) is left out
            continue
        ss = stochastic_sample_size(len(m), kp, epsilon) if mode == 1 else 0
        out.append(Part(members=np.sort(m).astype(np.int64), k=kp, seed=seed + i, sample_size=ss))
    return out


def parts_golden(sim: np.ndarray, parts: list[Part], mode: int = 1) -> PartsResult:
    """What the kernel returns part by part (golden models), mapped back to the class."""
    ids, weights, local = [], [], []
    for p in parts:
        block = sim[np.ix_(p.members, p.members)]
        r = greedy_stochastic_fixed(block, p.k, p.seed, p.sample_size) if mode == 1 else greedy_fixed(block, p.k)
        local.append(r.ids)
        ids.append(p.members[r.ids])
        weights.append(r.weights)
    return PartsResult(ids=np.concatenate(ids), weights=np.concatenate(weights), part_ids=local)


def coverage(sim: np.ndarray, ids) -> int:
    """Facility-location objective of ``ids`` over the whole class: sum_i max_{j in ids} sim[j, i]."""
    return int(np.asarray(sim)[np.asarray(ids, dtype=np.int64)].max(axis=0).astype(np.int64).sum())


def _align(x: int, a: int) -> int:
    return -(-x // a) * a


def run_parts(xrt, dev, kern, sim: np.ndarray, parts: list[Part], mode: int = MODE_STOCHASTIC) -> PartsResult:
    """Host flow of a partitioned class on ``nessa_fl_rtl`` (pyxrt or the emulator ``host.device.emu``):
    buffers (every part's block 4 KiB-aligned in one ``sim`` buffer; outputs in one buffer each, a
    64-byte aligned slice per part) -> sync -> one run per part, all started before the first wait
    (the runs queue on the compute unit) -> wait -> sync back -> check every part's status -> map
    the part-local picks back to the class."""
    blocks = [pack_rows(np.ascontiguousarray(sim[np.ix_(p.members, p.members)]))[0] for p in parts]
    sim_off = np.cumsum([0] + [_align(b.nbytes, 4096) for b in blocks])
    outs = {"ids": 4, "gains": 8, "weights": 4, "stats": 8}     # bytes per element; stats: 2 per part
    counts = {"ids": [p.k for p in parts], "gains": [p.k for p in parts], "weights": [p.k for p in parts],
              "stats": [2] * len(parts)}
    offs = {name: np.cumsum([0] + [_align(c * outs[name], 64) for c in counts[name]]) for name in outs}
    group = {"sim": 0, "ids": 4, "gains": 5, "weights": 6, "stats": 7}
    bos = {"sim": xrt.bo(dev, int(sim_off[-1]) + 4096, xrt.bo.normal, kern.group_id(group["sim"]))}
    # blocks on 4 KiB device pages, as on a card (XRT buffers are page-aligned: base = 0 there; the
    # emulator's host memory may not be): bursts split at the same places, so cycles match the card
    sim_off = sim_off + (-bos["sim"].address()) % 4096
    for name in outs:
        bos[name] = xrt.bo(dev, int(offs[name][-1]), xrt.bo.normal, kern.group_id(group[name]))
    for b, off in zip(blocks, sim_off):
        bos["sim"].write(b.view(np.uint8).ravel(), int(off))
    bos["sim"].sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE)
    runs, keep = [], []
    for i, (p, b) in enumerate(zip(parts, blocks)):
        sub = {"sim": xrt.bo(bos["sim"], b.nbytes, int(sim_off[i]))}
        for name in outs:
            sub[name] = xrt.bo(bos[name], counts[name][i] * outs[name], int(offs[name][i]))
        keep.append(sub)  # sub-buffers must outlive their runs
        seed = p.seed & 0xFFFFFFFF
        runs.append(kern(sub["sim"], len(p.members), p.k, b.shape[1], sub["ids"], sub["gains"], sub["weights"],
                         sub["stats"], int(mode), seed - (1 << 32) if seed >> 31 else seed, int(p.sample_size)))
    for i, r in enumerate(runs):
        state = r.wait()
        if state != xrt.ert_cmd_state.ERT_CMD_STATE_COMPLETED:
            raise RuntimeError(f"nessa_fl_rtl run of part {i} ended in state {state}")
    host = {}
    for name, dt in (("ids", "<u4"), ("gains", "<u8"), ("weights", "<u4"), ("stats", "<u8")):
        bos[name].sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE)
        raw = bos[name].read(bos[name].size(), 0).tobytes()
        host[name] = [np.frombuffer(raw, dtype=dt, count=c, offset=int(o)) for c, o in zip(counts[name], offs[name])]
    for i, st in enumerate(host["stats"]):
        if st[0] != 0:
            raise RuntimeError(f"nessa_fl_rtl refused part {i}: status {int(st[0]):#x} {decode_status(int(st[0]))}")
    local = [ids.astype(np.int64) for ids in host["ids"]]
    return PartsResult(ids=np.concatenate([p.members[ids] for p, ids in zip(parts, local)]),
                       weights=np.concatenate(host["weights"]).astype(np.int64), part_ids=local,
                       cycles=[int(st[1]) for st in host["stats"]])
