"""Inputs of the SmartSSD-cluster performance model, each with its unit and its source.

Every default is declared with :func:`param`, which stores ``unit`` and ``source`` in the
dataclass field's metadata; ``source`` starts with ``"assumption"`` when no published or
measured figure backs it. :func:`sources` turns any of these dataclasses into rows for the
assumption table (SIMULATION.md, ``nessa simulate --sources``).

Units: bytes, bytes/s, seconds, Hz, watts. ``GB`` means 1e9 bytes throughout.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Optimizer",
    "Engine",
    "Cpu",
    "Dataset",
    "Storage",
    "Fpga",
    "Trainer",
    "Selection",
    "Scenario",
    "param",
    "sources",
    "is_assumption",
]

GB = 1e9

# Source strings used more than once (kept short; SIMULATION.md expands them).
SRC_P2P = "Xilinx/AMD SmartSSD documentation: measured SSD->FPGA P2P read rate (as cited in the project brief)"
SRC_PCIE3 = "PCI-SIG PCIe 3.0: 8 GT/s per lane, 128b/130b encoding -> 0.985 GB/s per lane"
SRC_PCIE4 = "PCI-SIG PCIe 4.0: 16 GT/s per lane, 128b/130b encoding -> 1.97 GB/s per lane"
SRC_KU15P = "Xilinx DS890 (UltraScale+ product tables): XCKU15P has 1,968 DSP slices"
SRC_INT8 = "Xilinx WP486 (INT8 on DSP48E2): two int8 multiply-accumulates per DSP slice per cycle"
SRC_A100 = "NVIDIA A100 datasheet: 400 W max TDP (SXM4)"
SRC_CAPACITY = "Samsung/Xilinx SmartSSD CSD launch material: 3.84 TB capacity"


def param(default: Any, unit: str, source: str, **kw: Any) -> Any:
    """A dataclass field with ``unit`` and ``source`` recorded in its metadata."""
    return field(default=default, metadata={"unit": unit, "source": source}, **kw)


def is_assumption(source: str) -> bool:
    return source.lower().startswith("assumption")


class Optimizer(str, enum.Enum):
    """How many candidate evaluations greedy facility location performs per class part."""

    NAIVE = "naive"  # every unselected candidate re-evaluated at every step (exact)
    LAZY = "lazy"  # exact result; one full pass, then a few stale bounds re-evaluated per step (Minoux 1978)
    STOCHASTIC = "stochastic"  # (n/k) ln(1/eps) random candidates per step (Mirzasoleiman et al. 2015)


class Engine(str, enum.Enum):
    """Where NeSSA's selection runs on the storage side."""

    FPGA = "fpga"  # the SmartSSD's FPGA, data read over P2P
    CPU = "cpu"  # the storage host's CPUs (the CPU backend; what this machine has)


@dataclass(frozen=True)
class Dataset:
    """What is stored: ``num_samples`` fixed-size samples (the Store's fixed_size_binary rows)."""

    name: str = param("dataset", "-", "label only")
    num_samples: int = param(60_000, "samples", "Fashion-MNIST train size (Xiao et al. 2017)")
    sample_bytes: int = param(784, "bytes", "Fashion-MNIST: 28x28 uint8")
    num_classes: int = param(10, "classes", "Fashion-MNIST")
    feature_dim: int = param(0, "values", "0 = num_classes (softmax - onehot gradient proxy, DESIGN.md)")
    # MACs of one forward pass of the model whose features the selector computes.
    # The training model itself unless a smaller proxy selects (Coleman et al. 2020, "Selection via Proxy").
    model_macs: float = param(1_117_056.0, "MAC/sample", "small_cnn of host.models at 28x28, counted by sim.perf.macs")
    model_bytes: int = param(424_056, "bytes", "small_cnn float32 state, counted by sim.perf.macs (pushed to every drive)")

    @property
    def dim(self) -> int:
        return self.feature_dim or self.num_classes

    @property
    def total_bytes(self) -> float:
        return float(self.num_samples) * self.sample_bytes


@dataclass(frozen=True)
class Storage:
    """The storage side: SmartSSDs spread evenly over storage hosts."""

    drives: int = param(1, "drives", "scenario input")
    storage_hosts: int = param(1, "hosts", "scenario input")
    p2p_bw: float = param(2.36 * GB, "B/s per drive", SRC_P2P)
    # Conventional read SSD -> host DRAM for (a) and (b); the SSD, not the path, is the limit.
    ssd_read_bw: float = param(2.36 * GB, "B/s per drive", "assumption: equal to the P2P figure (the NAND side limits both paths)")
    drive_link_bw: float = param(4 * 0.985 * GB, "B/s per drive", SRC_PCIE3 + " (SmartSSD is Gen3 x4)")
    host_pcie_bw: float = param(16 * 0.985 * GB, "B/s per host", "assumption: drives behind one Gen3 x16 switch uplink; " + SRC_PCIE3)
    host_nic_bw: float = param(12.5 * GB, "B/s per host", "assumption: one 100 Gb/s NIC per storage host")
    drive_capacity: float = param(3.84e12, "bytes", SRC_CAPACITY)
    drive_active_w: float = param(25.0, "W", "assumption: U.2 slot power envelope while the FPGA works")
    drive_idle_w: float = param(8.0, "W", "assumption: SSD + idle FPGA")

    @property
    def drives_per_host(self) -> int:
        return math.ceil(self.drives / self.storage_hosts)


@dataclass(frozen=True)
class Fpga:
    """Throughput of the on-drive kernels (KU15P). Swap in measured figures with ``replace``.

    Work comes from the kernels' own operation counts (``host.device.opcounts``, one count per
    labelled loop of ``fpga_kernels/hls``): features are ``macs_per_sample`` of the quantized
    model; a greedy part is phase 1 (``distance_macs = p^2 d``, the similarity rows) and then
    one similarity row per gain evaluation, cover update and weight assignment, streamed
    through the RTL engine's ``lanes`` (fpga_kernels/rtl/nessa_fl_rtl.v): ``ceil(p / lanes)``
    beats plus a read gap per burst (:meth:`greedy_cycles` follows the engine's schedule).
    A part holds at most ``max_part`` members.

    Two speeds for the multiply-accumulate loops: the *design target* (default; every DSP
    slice busy at ``dsp_efficiency``) and the kernels *as written* (:meth:`as_written`, the
    cycle estimates of ``host.device.opcounts``: ``nessa_features``' 32 x 16 conv PE array runs
    ResNet-20 at an effective 227.5 MAC/cycle; ``nessa_greedy``'s distance lanes are 64 rows x
    8 columns = 512 MAC/cycle).
    """

    clock_hz: float = param(200e6, "Hz", "assumption: kernel clock stated by the RTL issue (200 MHz)")
    dsp_slices: int = param(1968, "DSP", SRC_KU15P)
    macs_per_dsp: float = param(2.0, "MAC/DSP/cycle", SRC_INT8)
    dsp_efficiency: float = param(0.5, "fraction", "assumption: design target keeps half the DSPs busy (tiling, dataflow losses)")
    feature_macs_per_cycle: float = param(0.0, "MAC/cycle", "0 = the DSP-bound design target; as written: 227.5 (host.device.opcounts: ResNet-20 on nessa_features.cpp's 32x16 PE array; SmallCNN 107.5)")
    distance_macs_per_cycle: float = param(0.0, "MAC/cycle", "0 = the DSP-bound design target; as written: 512 (nessa_greedy.cpp 64 rows x 8 columns; d < 16 pads to 16 columns)")
    lanes: int = param(32, "elements/cycle", "fpga_kernels/rtl/nessa_fl_rtl.v: LANES = 32 (512-bit DDR bus)")
    max_burst: int = param(64, "beats", "fpga_kernels/rtl/nessa_fl_rtl.v: MAX_BURST = 64")
    read_gap_cycles: float = param(24.0, "cycles/burst", "assumption: DDR4 read latency ~120 ns at 200 MHz (the cocotb AXI RAM of the RTL benches: 2)")
    write_busy_cycles: float = param(3.0, "cycles/word", "host/device/rtl/schedule.py: COCOTB_AXI_RAM.write_busy (simulated memory)")
    max_part: int = param(8192, "members", "fpga_kernels/rtl/nessa_fl_rtl.v: N_MAX = 8192 (on-chip cover depth)")

    @classmethod
    def as_written(cls, **kw: Any) -> "Fpga":
        """The repository's kernels as their loop pragmas stand (see class docstring)."""
        from host.device.opcounts import AS_WRITTEN_FEATURE_MACS_PER_CYCLE, DISTANCE_MACS_PER_CYCLE

        return cls(**{"feature_macs_per_cycle": AS_WRITTEN_FEATURE_MACS_PER_CYCLE,
                      "distance_macs_per_cycle": float(DISTANCE_MACS_PER_CYCLE), **kw})

    @property
    def dsp_macs_per_cycle(self) -> float:
        return self.dsp_slices * self.macs_per_dsp * self.dsp_efficiency

    @property
    def macs_per_s(self) -> float:
        """Feature (quantized forward) multiply-accumulates per second."""
        return (self.feature_macs_per_cycle or self.dsp_macs_per_cycle) * self.clock_hz

    @property
    def distance_macs_per_s(self) -> float:
        return (self.distance_macs_per_cycle or self.dsp_macs_per_cycle) * self.clock_hz

    def row_cycles(self, p: float) -> float:
        """Read-master cycles of one similarity row: its beats plus one read gap per burst."""
        beats = math.ceil(p / self.lanes)
        return beats + self.read_gap_cycles * math.ceil(beats / self.max_burst)

    def greedy_cycles(self, p: float, k: int, evals: float) -> float:
        """The RTL engine's cycles register for one part, following fl_engine.v's schedule
        (host/device/rtl/schedule.py replays it exactly; tests/sim/test_perf_model.py compares):
        clear ``p``; per evaluation one row's beats (the read master keeps several bursts in
        flight, so a step's rows stream and a scan needs >= 3 cycles per candidate); per step
        the read latency once, the adder-tree latency twice, two result words and the
        cover-update row; then the weights pass (a row per pick, 2 cycles per other member)."""
        n = max(1.0, math.ceil(p))
        k = max(1, min(int(k), int(n)))
        row = self.row_cycles(n)
        beats = math.ceil(n / self.lanes)
        lat = (self.lanes - 1).bit_length() + 1
        words = 2 * (1 + self.write_busy_cycles)
        steps = k * (row + self.read_gap_cycles + 2 * lat + words + 6)
        weights = k * (row + lat + 4 + self.write_busy_cycles) + 2 * (n - k)
        skips = k * (k - 1)  # a scan spends 2 cycles on each already-selected candidate
        return 2 + n + evals * max(beats, 3) + skips + steps + weights

    def hls_lazy_cycles(self, p: float, k: int, evals: float) -> float:
        """``nessa_greedy``'s lazy mode (0) over one part, which is where DeviceFlow runs lazy
        greedy (the RTL engine has no lazy mode, host/device/flow.py). Per its loops in
        fpga_kernels/hls/nessa_greedy.cpp: the ``p`` first gains come exact from the similarity
        pass (its row sums, counted in ``evals`` as the kernel counts them); then every pass of
        ``LAZY`` scans the ``p`` upper bounds at II 1 (``LAZY_SCAN``) and either re-evaluates the
        top one (``GAIN_ROW``: one row's ``ceil(p / lanes)`` beats plus a burst's read gap) or
        finds it fresh and picks it, so a step costs one scan per re-evaluation plus one; each
        pick updates the cover from its row (``COVER_UPDATE``) and reads it once more to assign
        weights (``ASSIGN_ROWS``), beside two passes over the members (``ASSIGN_INIT``,
        ``COUNT``)."""
        n = max(1.0, math.ceil(p))
        k = max(1, min(int(k), int(n)))
        scans = max(0.0, evals - n) + k
        return scans * n + self.hls_lazy_rows(n, evals, k) * self.row_cycles(n) + 2 * n

    @staticmethod
    def hls_lazy_rows(p: float, evals: float, k: int) -> float:
        """Similarity rows ``nessa_greedy``'s lazy mode reads (its ``rows_read`` stat): one per
        re-evaluation (``evals`` less the ``p`` exact first gains), two per pick."""
        return max(0.0, evals - math.ceil(p)) + 2 * k

    def part_seconds(self, p: float, k: int, evals: float, d: int, optimizer: "Optimizer | None" = None) -> float:
        """One greedy run over a part: the HLS similarity pass (its operation count,
        ``host.device.opcounts``) then greedy over the rows where the xclbin runs it: lazy on
        ``nessa_greedy`` (:meth:`hls_lazy_cycles`), stochastic and exact on the RTL engine."""
        from host.device.opcounts import greedy_op_counts

        n = max(1, math.ceil(p))
        c = greedy_op_counts(n, d, max(1, min(int(k), n)))
        cycles = self.hls_lazy_cycles(n, k, evals) if optimizer is Optimizer.LAZY else self.greedy_cycles(n, k, evals)
        return c["distance_macs"] / self.distance_macs_per_s + cycles / self.clock_hz


@dataclass(frozen=True)
class Trainer:
    """The GPU side."""

    gpus: int = param(8, "GPUs", "scenario input")
    gpu_hosts: int = param(1, "hosts", "scenario input")
    train_s_per_sample: float = param(1 / 2700, "s/sample per GPU", "assumption: ResNet-50 AMP on an A100, order of NVIDIA's published training throughput")
    # Forward only (features for (b)): forward is about 1/3 of a training step (fwd 2N, bwd 4N FLOPs).
    forward_fraction: float = param(1 / 3, "fraction", "Kaplan et al. 2020: training ~6N FLOPs, forward ~2N -> 1/3")
    gpu_pcie_bw: float = param(16 * 1.97 * GB, "B/s per GPU", SRC_PCIE4 + " (x16)")
    host_nic_bw: float = param(12.5 * GB, "B/s per GPU host", "assumption: one 100 Gb/s NIC per GPU host")
    # Greedy for (b) runs on the GPUs (a stronger baseline than CRAIG's CPU greedy):
    # the distance GEMM at tensor-core speed, gain evaluations memory-bound, one launch per step.
    gpu_gemm_macs: float = param(156e12 * 0.5, "MAC/s per GPU", "NVIDIA A100 datasheet: 312 TFLOPS FP16 tensor (=156e12 MAC/s); x0.5 efficiency is an assumption")
    gpu_select_ops: float = param(2e11, "ops/s per GPU", "assumption: gain evaluation is memory-bound (2 TB/s HBM, several bytes per term)")
    gpu_step_s: float = param(2e-5, "s per greedy step", "assumption: kernel launch + argmax synchronisation per greedy step")
    gpu_active_w: float = param(400.0, "W", SRC_A100)
    gpu_idle_w: float = param(60.0, "W", "assumption: idle A100 waiting for data")


@dataclass(frozen=True)
class Cpu:
    """Storage-host CPU selection speed (``engine="cpu"``, the CPU backend)."""

    feature_s_per_sample: float = param(2e-5, "s/sample per host", "assumption: until calibrated (sim/calibrate.py)")
    select_ops: float = param(2.0e9, "ops/s per host", "assumption: until calibrated (sim/calibrate.py)")
    max_part: int = param(16384, "members", "assumption: GreeDi part cap so a part's p x p float32 matrix stays near 1 GiB")


@dataclass(frozen=True)
class Selection:
    fraction: float = param(0.1, "fraction", "assumption: 10% per-class budget (nessa demo's default)")
    reselect_every: int = param(20, "epochs", "assumption: reselect every 20 epochs (a user choice; the demo uses 3)")
    optimizer: Optimizer = param(Optimizer.STOCHASTIC, "-", "assumption: stochastic greedy on the drive (nessa_fl_rtl mode 1, where DeviceFlow runs it; lazy runs on nessa_greedy)")
    epsilon: float = param(0.01, "-", "assumption: stochastic greedy epsilon")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    dataset: Dataset
    storage: Storage
    fpga: Fpga
    trainer: Trainer
    selection: Selection
    engine: Engine = Engine.FPGA
    cpu: Cpu = field(default_factory=Cpu)
    drive_counts: tuple[int, ...] = (1,)
    # Drives per storage host when sweeping drive counts (hosts = ceil(drives / this)).
    drives_per_host: int = 8
    # Per-field sources that replace the dataclass defaults' (``"dataset.num_samples": "..."``).
    source_overrides: tuple[tuple[str, str], ...] = ()

    @property
    def over_capacity(self) -> bool:
        """True when the data set does not fit on the drives (results are still computed)."""
        return self.dataset.total_bytes > self.storage.drives * self.storage.drive_capacity

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot be simulated."""
        for name, value, _unit, _src in sources(self):
            if isinstance(value, bool) or isinstance(value, (enum.Enum, str)):
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if value < 0 or (value == 0 and name not in _MAY_BE_ZERO):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in _INTEGRAL:
            obj = self
            for part in name.split("."):
                obj = getattr(obj, part)
            if not isinstance(obj, int) or isinstance(obj, bool):
                raise ValueError(f"{name} must be an integer, got {obj!r}")
        sel = self.selection
        from host.budget import check_fraction

        check_fraction(sel.fraction, option="selection.fraction")
        if not 0 < sel.epsilon < 1:
            raise ValueError(f"selection.epsilon must be in (0, 1), got {sel.epsilon!r}")
        if self.storage.storage_hosts > self.storage.drives:
            raise ValueError(
                f"storage.storage_hosts ({self.storage.storage_hosts}) must not exceed storage.drives ({self.storage.drives})"
            )
        if self.trainer.gpu_hosts > self.trainer.gpus:
            raise ValueError(f"trainer.gpu_hosts ({self.trainer.gpu_hosts}) must not exceed trainer.gpus ({self.trainer.gpus})")
        if not self.drive_counts or any((not isinstance(d, int)) or d < 1 for d in self.drive_counts):
            raise ValueError(f"drive_counts must be a non-empty list of integers >= 1, got {list(self.drive_counts)!r}")
        if self.drives_per_host < 1:
            raise ValueError(f"drives_per_host must be >= 1, got {self.drives_per_host!r}")
        if self.dataset.num_samples < self.dataset.num_classes:
            raise ValueError("dataset.num_samples must be >= dataset.num_classes")

    def with_drives(self, drives: int) -> "Scenario":
        hosts = max(1, math.ceil(drives / self.drives_per_host))
        st = dataclasses.replace(self.storage, drives=drives, storage_hosts=hosts)
        return dataclasses.replace(self, storage=st)


# Fields that may legitimately be 0 (0 = "derive it" or "not pushed").
_MAY_BE_ZERO = {"dataset.feature_dim", "dataset.model_macs", "dataset.model_bytes", "fpga.read_gap_cycles", "trainer.gpu_step_s",
                "fpga.write_busy_cycles",
                "fpga.feature_macs_per_cycle", "fpga.distance_macs_per_cycle"}
_INTEGRAL = (
    "dataset.num_samples", "dataset.sample_bytes", "dataset.num_classes", "dataset.feature_dim",
    "storage.drives", "storage.storage_hosts", "trainer.gpus", "trainer.gpu_hosts",
    "fpga.lanes", "fpga.max_burst", "fpga.max_part", "fpga.dsp_slices", "cpu.max_part",
    "selection.reselect_every",
)


def sources(obj: Any, prefix: str = "") -> list[tuple[str, Any, str, str]]:
    """``(name, value, unit, source)`` for every sourced field of a params dataclass (recursive).

    A :class:`Scenario`'s ``source_overrides`` replace the defaults' sources field by field.
    """
    overrides = dict(getattr(obj, "source_overrides", ()) or ())
    rows: list[tuple[str, Any, str, str]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(sources(value, prefix + f.name + "."))
        elif "source" in f.metadata:
            rows.append((prefix + f.name, value, f.metadata["unit"], f.metadata["source"]))
    return [(n, v, u, overrides.get(n, s)) for n, v, u, s in rows]
