"""Per-epoch time, bytes per link and energy of three ways to train on SmartSSD-held data.

Systems (:class:`System`):

* ``full``  (a): every epoch streams the whole data set drives -> storage hosts -> network
  -> GPU hosts -> GPUs.
* ``gpu-select`` (b): CRAIG-style selection on the GPU host. Every ``R`` epochs the whole
  data set crosses the network and PCIe so the GPUs can compute features (a forward pass),
  the GPUs run greedy facility location (distance GEMM on tensor cores — stronger than
  CRAIG's CPU greedy); each epoch streams only the subset.
* ``nessa`` (c): every ``R`` epochs each SmartSSD reads its share over P2P into the FPGA,
  computes features and runs greedy per class part; parts are merged per class (GreeDi);
  only the subset leaves the drives. With ``engine="cpu"`` the storage host's CPUs do the
  same work (data crosses the drive link, never the network) — the backend this machine has.

Pipelining and amortisation (stated assumptions):

* a stream is pipelined: its time is the slowest stage (``stages`` names every stage);
* training waits for a reselection (no overlap with a stale model), so an epoch costs
  ``stream(subset) + select / R``; the same number of epochs is assumed for every system
  (accuracy parity of the subset is CRAIG's claim, not modelled here);
* on the drive, reading and feature computation overlap; greedy starts when a part's
  features are complete; the per-class merge runs on the drive that owns the class.

Bytes are per epoch (amortised). ``p2p`` stays inside a SmartSSD; ``drive_out`` is what
leaves the drives; ``network`` what crosses storage -> GPU hosts; ``gpu_pcie`` what enters
the GPUs; ``control`` is model pushes and selection summaries (NeSSA only, ids + weights).
Energy counts GPUs and drives only (busy at active power, otherwise idle), where
:mod:`sim.perf.params` gives a figure; CPU, DRAM and switches are left out.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from .params import Engine, Scenario
from .work import budget, evaluations, gpu_seconds, host_ops, min_parts, plan_class, plan_parts

__all__ = ["System", "Engine", "SystemResult", "Comparison", "simulate", "selection_seconds"]

_SUMMARY_BYTES = 12  # int64 id + float32 weight per selected sample


class System(str, enum.Enum):
    FULL = "full"
    GPU_SELECT = "gpu-select"
    NESSA = "nessa"


@dataclass(frozen=True)
class SystemResult:
    system: System
    epoch_s: float  # amortised seconds per epoch
    stream_s: float  # the per-epoch training stream alone
    select_s: float  # one reselection (0 for full)
    bottleneck: str  # slowest stage of the per-epoch stream
    stages: dict[str, float]  # per-epoch stream stage seconds
    select_stages: dict[str, float]  # one reselection, by part
    bytes: dict[str, float]  # per epoch, by link
    energy_j: float  # per epoch, GPUs + drives

    @property
    def moved_bytes(self) -> float:
        """Bytes that cross a boundary outside the drives (drive_out + network + gpu_pcie + control)."""
        return sum(v for k, v in self.bytes.items() if k != "p2p")


@dataclass(frozen=True)
class Comparison:
    scenario: str
    drives: int
    storage_hosts: int
    results: dict[System, SystemResult] = field(default_factory=dict)

    def speedup(self, over: System) -> float:
        return self.results[over].epoch_s / self.results[System.NESSA].epoch_s


def _stream(sc: Scenario, samples: float, gpu_s_per_sample: float) -> dict[str, float]:
    """Stage seconds to move ``samples`` samples drives -> GPUs and process them there."""
    ds, st, tr = sc.dataset, sc.storage, sc.trainer
    b = samples * ds.sample_bytes
    return {
        "ssd read": b / (st.drives * st.ssd_read_bw),
        "drive link": b / (st.drives * st.drive_link_bw),
        "storage pcie": b / (st.storage_hosts * st.host_pcie_bw),
        "storage nic": b / (st.storage_hosts * st.host_nic_bw),
        "trainer nic": b / (tr.gpu_hosts * tr.host_nic_bw),
        "gpu pcie": b / (tr.gpus * tr.gpu_pcie_bw),
        "gpu compute": samples * gpu_s_per_sample / tr.gpus,
    }


def _slowest(stages: dict[str, float]) -> tuple[str, float]:
    name = max(stages, key=lambda k: stages[k])
    return name, stages[name]


def _class_sizes(sc: Scenario) -> list[tuple[float, int]]:
    """``(class size, how many classes)``: balanced classes (stated in SIMULATION.md)."""
    q, r = divmod(sc.dataset.num_samples, sc.dataset.num_classes)
    return [(float(n), c) for n, c in ((q + 1, r), (q, sc.dataset.num_classes - r)) if c and n]


def _fpga_greedy_seconds(sc: Scenario) -> tuple[float, float]:
    """(part phase, merge phase) seconds of greedy on ``D`` FPGAs.

    Features are computed where the data lies (every drive); they are a few bytes per sample,
    so the scheduler may gather a class's features onto any ``m`` drives. For each ``m`` (from
    the part cap's minimum up to ``max(D, minimum)``), part tasks and merge tasks are spread
    evenly over the drives; a phase lasts at least its longest task. The best ``m`` is taken,
    so adding drives can only shorten selection. The engine runs at most ``max_part``
    members, so a merge whose union exceeds it is impossible on the drive: when no ``m`` allows
    one (class budget > ``max_part``), the parts' picks are kept as they are (GreeDi's first
    round only) — see SIMULATION.md.
    """
    fp, sel, d, drives = sc.fpga, sc.selection, sc.dataset.dim, sc.storage.drives

    def run(p: float, k: int) -> float:
        return fp.part_seconds(p, k, evaluations(p, k, sel.optimizer, sel.epsilon), d, sel.optimizer)

    total_parts = total_merge = longest_part = longest_merge = 0.0
    for n, count in _class_sizes(sc):
        lo = min_parts(n, fp.max_part)
        plans = []
        for m in range(lo, max(lo, min(drives, math.ceil(n))) + 1):
            pl = plan_parts(n, sel.fraction, m)
            feasible = pl.merge_n <= fp.max_part
            part = run(pl.part, pl.part_k)
            merge = run(pl.merge_n, pl.merge_k) if (pl.merge_n and feasible) else 0.0
            key = max(count * part * pl.parts / drives, part) + max(count * merge / drives, merge)
            plans.append((not feasible, key, part * pl.parts, part, merge))
        _, _, part_total, part_one, merge_one = min(plans)  # feasible merges first, then fastest
        total_parts += count * part_total
        total_merge += count * merge_one
        longest_part, longest_merge = max(longest_part, part_one), max(longest_merge, merge_one)
    part_s = max(total_parts / drives, longest_part)
    merge_s = max(total_merge / drives, longest_merge) if total_merge else 0.0
    return part_s, merge_s


def _host_greedy_seconds(sc: Scenario, workers: int, ops_per_s: float, max_part: int) -> float:
    """Greedy on host CPUs (``workers`` hosts of ``ops_per_s`` each), classes spread over them."""
    sel, d = sc.selection, sc.dataset.dim
    total = 0.0
    for n, count in _class_sizes(sc):
        pl = plan_class(n, sel.fraction, 1, max_part)
        total += count * pl.parts * host_ops(pl.part, pl.part_k, d, sel.optimizer, sel.epsilon)
        if pl.merge_n:
            total += count * host_ops(pl.merge_n, pl.merge_k, d, sel.optimizer, sel.epsilon)
    return total / (ops_per_s * workers)


def _gpu_greedy_seconds(sc: Scenario) -> float:
    """Greedy for (b) on the trainer's GPUs, classes spread over them (GreeDi parts as on CPU)."""
    sel, d, tr = sc.selection, sc.dataset.dim, sc.trainer
    kw = dict(gemm_macs=tr.gpu_gemm_macs, select_ops=tr.gpu_select_ops, step_s=tr.gpu_step_s)
    total = 0.0
    for n, count in _class_sizes(sc):
        pl = plan_class(n, sel.fraction, 1, sc.cpu.max_part)
        total += count * pl.parts * gpu_seconds(pl.part, pl.part_k, d, sel.optimizer, sel.epsilon, **kw)
        if pl.merge_n:
            total += count * gpu_seconds(pl.merge_n, pl.merge_k, d, sel.optimizer, sel.epsilon, **kw)
    c = sc.dataset.num_classes
    return total / c * math.ceil(c / tr.gpus)  # the busiest GPU holds ceil(C / G) classes


def selection_seconds(sc: Scenario, system: System) -> dict[str, float]:
    """Seconds of one reselection by part (the parts run one after another)."""
    ds, st, tr = sc.dataset, sc.storage, sc.trainer
    n = ds.num_samples
    if system is System.FULL:
        return {}
    if system is System.GPU_SELECT:
        feat = _stream(sc, n, tr.train_s_per_sample * tr.forward_fraction)
        name, t = _slowest(feat)
        return {
            f"features ({name})": t,
            "greedy (GPUs)": _gpu_greedy_seconds(sc),
        }
    # NeSSA
    # The model crosses the network once per storage host ...
    push = ds.model_bytes / st.host_nic_bw
    summary = budget_total(sc) * _SUMMARY_BYTES / (st.storage_hosts * st.host_nic_bw)
    if sc.engine is Engine.FPGA:
        per_drive = n / st.drives
        read = per_drive * ds.sample_bytes / st.p2p_bw
        feats = per_drive * ds.model_macs / sc.fpga.macs_per_s
        # ... then PCIe once per drive; the P2P read does not wait for it, features do.
        load = ds.model_bytes * st.drives_per_host / st.host_pcie_bw
        greedy, merge = _fpga_greedy_seconds(sc)
        return {
            "model push": push,
            "read+features": max(read, load + feats),
            "greedy parts": greedy,
            "greedy merge": merge,
            "summary": summary,
        }
    # CPU engine on the storage hosts: data crosses the drive link into host DRAM.
    b = n * ds.sample_bytes
    read = max(b / (st.drives * st.ssd_read_bw), b / (st.storage_hosts * st.host_pcie_bw))
    feats = n * sc.cpu.feature_s_per_sample / st.storage_hosts
    return {
        "model push": push,
        "read+features": max(read, feats),
        "greedy (storage-host CPUs)": _host_greedy_seconds(sc, st.storage_hosts, sc.cpu.select_ops, sc.cpu.max_part),
        "summary": summary,
    }


def budget_total(sc: Scenario) -> int:
    return sum(count * budget(n, sc.selection.fraction) for n, count in _class_sizes(sc))


def _energy(sc: Scenario, epoch_s: float, gpu_busy: float, drive_busy: float) -> float:
    st, tr = sc.storage, sc.trainer
    gpu = tr.gpus * (gpu_busy * tr.gpu_active_w + max(0.0, epoch_s - gpu_busy) * tr.gpu_idle_w)
    drv = st.drives * (drive_busy * st.drive_active_w + max(0.0, epoch_s - drive_busy) * st.drive_idle_w)
    return gpu + drv


def _result(sc: Scenario, system: System) -> SystemResult:
    ds, tr, sel = sc.dataset, sc.trainer, sc.selection
    n, b, r = ds.num_samples, ds.total_bytes, sel.reselect_every
    subset = budget_total(sc) if system is not System.FULL else n
    stages = _stream(sc, subset, tr.train_s_per_sample)
    bottleneck, stream_s = _slowest(stages)
    sel_stages = selection_seconds(sc, system)
    select_s = sum(sel_stages.values())
    epoch_s = stream_s + select_s / r
    sub_b = subset * ds.sample_bytes
    gpu_busy = subset * tr.train_s_per_sample / tr.gpus
    drive_busy = sub_b / (sc.storage.drives * sc.storage.ssd_read_bw)
    if system is System.FULL:
        by = {"p2p": 0.0, "drive_out": b, "network": b, "gpu_pcie": b, "control": 0.0}
    elif system is System.GPU_SELECT:
        moved = sub_b + b / r
        by = {"p2p": 0.0, "drive_out": moved, "network": moved, "gpu_pcie": moved, "control": 0.0}
        gpu_busy += n * tr.train_s_per_sample * tr.forward_fraction / tr.gpus / r
        drive_busy += b / (sc.storage.drives * sc.storage.ssd_read_bw) / r
    else:
        ctrl = (ds.model_bytes * sc.storage.storage_hosts + subset * _SUMMARY_BYTES) / r
        if sc.engine is Engine.FPGA:
            by = {"p2p": b / r, "drive_out": sub_b, "network": sub_b, "gpu_pcie": sub_b, "control": ctrl}
            drive_busy += (select_s - sel_stages["model push"] - sel_stages["summary"]) / r
        else:
            by = {"p2p": 0.0, "drive_out": sub_b + b / r, "network": sub_b, "gpu_pcie": sub_b, "control": ctrl}
            drive_busy += b / (sc.storage.drives * sc.storage.ssd_read_bw) / r
    return SystemResult(
        system=system,
        epoch_s=epoch_s,
        stream_s=stream_s,
        select_s=select_s,
        bottleneck=bottleneck,
        stages=stages,
        select_stages=sel_stages,
        bytes=by,
        energy_j=_energy(sc, epoch_s, gpu_busy, min(drive_busy, epoch_s)),
    )


def simulate(sc: Scenario, drives: int | None = None) -> Comparison:
    """All three systems for ``sc`` (at ``drives`` drives, hosts scaled, when given).

    At the scenario's own drive count its ``storage_hosts`` is used as given; other drive
    counts get ``ceil(drives / drives_per_host)`` hosts.
    """
    if drives is not None and drives != sc.storage.drives:
        sc = sc.with_drives(drives)
    sc.validate()
    res = {s: _result(sc, s) for s in System}
    return Comparison(sc.name, sc.storage.drives, sc.storage.storage_hosts, res)
