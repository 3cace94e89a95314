"""Partitioned selection with ``nessa_fl_rtl``: a class split into parts of at most ``max_part``
members, all parts in one kernel run (the ``parts`` / ``parts_ptr`` arguments: the engine runs
them back to back, no host round trip between parts) -- GreeDi's proportional split without a
merge round, as host/greedi.py does on the CPU when no part can shrink.

Why: the engine streams one n-wide row per candidate, so a whole class costs O(n^2 / LANES)
cycles against an O(n) read from the drive; parts of p members cost O(n p / LANES) and, for
p ~ 128 at LANES = 32, hide under the read (BENCHMARKS.md, "RTL facility-location engine").

Split (deterministic in ``seed``): ``parts = ceil(n / max_part)`` parts of a random permutation
(``numpy.random.default_rng(seed)``, ``np.array_split``: sizes differ by at most one, each part's
members sorted ascending), the budget ``k`` split over them in proportion to their sizes
(host/greedi.py ``split_budget``: largest remainder, sums to ``k``). Part ``i`` runs stochastic
greedy with seed ``seed + i`` (as uint32) and ``sample_size = stochastic_sample_size(p_i, k_i,
epsilon)`` (exact greedy when ``mode != 1``) on its own ``p_i x p_i`` similarity block. Results
map back through the members: ``ids`` are class-local, ``weights`` count members of the own part
(they sum to ``n``: the parts partition the class).

Kernel layout (host/device/rtl/regmap.py ``PART_DESC_DTYPE``): the blocks' rows one after the
other in ``sim`` with one ``ld`` (the largest part padded to LANES), one 16-byte descriptor
``{n_i, k_i, seed_i, sample_size_i}`` per part at ``parts_ptr``, every part's ``k_i`` results
after the previous part's.

Host cost on a card: one kernel run per class, as for an unsplit class. ``RUN_CALL_US`` is the
per-run overhead the benchmark charges -- an assumption, not a measurement here (no card): ~5 us
per run when runs are queued is XRT's embedded-scheduler rate (Xilinx/XRT pull request 4071:
~206k runs/s with 32 queued on a U50); a synchronous start + wait round trip is ~16-100 us
(Xilinx/XRT issues 6601, 8687), which ``SYNC_CALL_US`` stands for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from host.device.rtl.regmap import MODE_STOCHASTIC, PART_DESC_DTYPE, ROW_ALIGN, decode_status
from host.golden.greedy import greedy_fixed
from host.golden.stochastic import greedy_stochastic_fixed, stochastic_sample_size
from host.greedi import split_budget  # the CPU path's rule, so both split k the same way

__all__ = ["RUN_CALL_US", "SYNC_CALL_US", "Part", "PartsResult", "split_parts", "parts_golden", "coverage",
           "part_blocks", "part_descs", "run_parts"]

#: Assumed host overhead per kernel run when runs are queued (see module docstring).
RUN_CALL_US = 5.0
#: Assumed overhead per kernel run when each is started and waited for on its own.
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
    cycles: int | None = None  # the kernel's cycle count of the run (run_parts only)


def split_parts(n: int, k: int, max_part: int, *, seed: int = 1, mode: int = 1, epsilon: float = 0.01) -> list[Part]:
    """Parts of a class of ``n`` members selecting ``k`` in all (see module docstring)."""
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n} k={k}")
    if max_part < 1:
        raise ValueError(f"max_part must be >= 1, got {max_part}")
    count = math.ceil(n / max_part)
    members = np.array_split(np.random.default_rng(seed).permutation(n), count)
    budget = split_budget(k, np.array([len(m) for m in members]))
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
    for p, block in zip(parts, part_blocks(sim, parts)):
        r = greedy_stochastic_fixed(block, p.k, p.seed, p.sample_size) if mode == 1 else greedy_fixed(block, p.k)
        local.append(r.ids)
        ids.append(p.members[r.ids])
        weights.append(r.weights)
    return PartsResult(ids=np.concatenate(ids), weights=np.concatenate(weights), part_ids=local)


def coverage(sim: np.ndarray, ids) -> int:
    """Facility-location objective of ``ids`` over the whole class: sum_i max_{j in ids} sim[j, i]."""
    return int(np.asarray(sim)[np.asarray(ids, dtype=np.int64)].max(axis=0).astype(np.int64).sum())


def part_blocks(sim: np.ndarray, parts: list[Part]) -> list[np.ndarray]:
    """Every part's square similarity block (rows and columns of its members)."""
    return [np.ascontiguousarray(sim[np.ix_(p.members, p.members)]) for p in parts]


def part_descs(parts: list[Part]) -> np.ndarray:
    """The kernel's descriptor table (``PART_DESC_DTYPE``, seeds as their uint32 pattern)."""
    return np.array([(len(p.members), p.k, p.seed & 0xFFFFFFFF, p.sample_size) for p in parts], dtype=PART_DESC_DTYPE)


def run_parts(xrt, dev, kern, sim: np.ndarray, parts: list[Part], mode: int = MODE_STOCHASTIC) -> PartsResult:
    """Host flow of a partitioned class on ``nessa_fl_rtl`` (pyxrt, or the emulator ``host.device.emu``):
    buffers (the parts' rows one after the other, the descriptors, outputs for sum k) -> sync ->
    one run with ``parts`` = P -> wait -> sync back -> check the status -> map the part-local
    picks back to the class."""
    if not parts:
        raise ValueError("parts must not be empty")
    blocks = part_blocks(sim, parts)
    ld = -(-max(b.shape[0] for b in blocks) // ROW_ALIGN) * ROW_ALIGN
    rows = np.concatenate([np.pad(b, ((0, 0), (0, ld - b.shape[1]))) for b in blocks]).astype(np.uint16)
    table = part_descs(parts)
    k = sum(p.k for p in parts)
    group = {"sim": 0, "ids": 4, "gains": 5, "weights": 6, "stats": 7, "parts": 12}
    size = {"sim": rows.nbytes, "ids": 4 * k, "gains": 8 * k, "weights": 4 * k, "stats": 16, "parts": table.nbytes}
    bos = {name: xrt.bo(dev, size[name], xrt.bo.normal, kern.group_id(group[name])) for name in group}
    bos["sim"].write(rows.view(np.uint8).ravel(), 0)
    bos["parts"].write(table.view(np.uint8).ravel(), 0)
    for name in ("sim", "parts"):  # sync(dir, size, offset): the only form XRT 2.11 / 2.12 bind
        bos[name].sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, size[name], 0)
    run = kern(bos["sim"], 0, 0, ld, bos["ids"], bos["gains"], bos["weights"], bos["stats"], int(mode), 0, 0,
               len(parts), bos["parts"])
    state = run.wait(0)  # 0: no time limit (XRT 2.11 binds only wait(timeout_ms))
    if state != xrt.ert_cmd_state.ERT_CMD_STATE_COMPLETED:
        raise RuntimeError(f"nessa_fl_rtl run ended in state {state}")
    out = {}
    for name, dt in (("ids", "<u4"), ("weights", "<u4"), ("stats", "<u8")):
        bos[name].sync(xrt.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE, size[name], 0)
        out[name] = np.frombuffer(bos[name].read(size[name], 0).tobytes(), dtype=dt)
    if out["stats"][0] != 0:
        raise RuntimeError(f"nessa_fl_rtl refused the parts: status {int(out['stats'][0]):#x} "
                           f"{decode_status(int(out['stats'][0]))}")
    local = np.split(out["ids"].astype(np.int64), np.cumsum([p.k for p in parts])[:-1])
    return PartsResult(ids=np.concatenate([p.members[ids] for p, ids in zip(parts, local)]),
                       weights=out["weights"].astype(np.int64), part_ids=local, cycles=int(out["stats"][1]))
