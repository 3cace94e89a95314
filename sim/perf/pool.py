"""What one ``nessa-pa`` pool costs on a SmartSSD, stage by stage, against reading it.

``nessa-pa`` (host/minibatch.py, storage_service/selections.py ``resolve_options``) selects each
mini-batch of ``b`` from its own fresh random pool of ``P = round(b / fraction)`` samples: the
features of the pool only, then facility location per class with one budget ``b`` split over the
classes in proportion to their pool members (host.greedi ``split_budget``). On the drive that is

    read the pool's P samples (P2P, ``Storage.p2p_bw``)
    -> nessa_features over the P samples            (feature stage)
    -> nessa_greedy phase 0 + 1 per class           (similarity rows; phase 0 = the class's largest
                                                     distance, the host's default ``max_dist=None``;
                                                     then the one-pick tail of its run)
    -> nessa_fl_rtl, one run, parts = the classes   (greedy, stochastic mode)

Each stage in cycles at ``Fpga.clock_hz``, at two speeds (SIMULATION.md, "Three speeds"):

* ``Speed.AS_BUILT`` -- the kernels as the code stands: ``host.device.opcounts``' loop-by-loop
  cycle model (trip counts x II, II = 1 targets) plus what the code does not reach at II 1:
  [REQUANT_TILE] is a read-modify-write of two slot words at II 2 where the cycle model charges
  one cycle per output channel (fpga_kernels/README.md), i.e. ``segments x cout`` more cycles per
  conv layer (:func:`requant_extra_cycles`). The similarity rows are ``opcounts``' phase-0 and
  phase-1 cycles (64 x 8 distance lanes; d < 16 padded to 16 columns).
* ``Speed.DESIGN_TARGET`` -- the multiply-accumulate loops at the DSP-bound rate of
  ``Fpga.dsp_macs_per_cycle`` (1,968 MAC/cycle), as the system model's default does.

Greedy is the RTL engine in both (the design target does not change it): pass the cycles the
engine measured (RTL simulation or the exact schedule replay, bench/pa_pool_cycles.py), else
:func:`greedy_cycles_model` gives ``Fpga.greedy_cycles`` per class plus the descriptor fetch per
part (a closed form the bench checks against the measured runs).

Host overheads (a kernel run's start, ~5 us queued, host/device/rtl/parts.py) are not cycles of
the card and are left out here; the bench states them separately.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from .params import Fpga, Storage

__all__ = ["Speed", "FeatureModel", "PoolPlan", "PoolCost", "COUNT_II", "feature_model", "requant_extra_cycles",
           "plan_pool", "one_pick_tail_cycles", "similarity_cycles", "greedy_cycles_model", "read_us", "pool_cost"]


class Speed(str, enum.Enum):
    """Which FPGA speed a figure is at (SIMULATION.md, "Three speeds")."""

    AS_BUILT = "as built"
    DESIGN_TARGET = "design target"


@dataclass(frozen=True)
class FeatureModel:
    """Per-sample figures of one quantized model on ``nessa_features``."""

    name: str
    sample_bytes: int
    num_classes: int
    macs_per_sample: int
    cycles_as_written: int  # opcounts.features_op_counts(...)["cycles_per_sample"] (II = 1 targets)
    requant_extra: int  # [REQUANT_TILE] at II 2: segments x cout per conv layer

    def cycles_per_sample(self, speed: Speed, fpga: Fpga) -> float:
        if speed is Speed.AS_BUILT:
            return float(self.cycles_as_written + self.requant_extra)
        return self.macs_per_sample / fpga.dsp_macs_per_cycle


def _is_linear(hin: int, win: int, hout: int, wout: int, k: int) -> bool:
    return hout * wout == 1 and k == 1 and hin == 1 and win == 1  # opcounts.layer_cycles' linear_op


def requant_extra_cycles(qm) -> int:
    """Cycles [REQUANT_TILE]'s II 2 adds per sample over the cycle model's one per output channel:
    every conv row segment (``hout x ceil(wout / TILE_PX)``) requantises ``cout`` channels."""
    from host.device.opcounts import TILE_PX
    from host.quantize.format import Op

    extra = 0
    for op in qm.ops():
        code = int(op[0])
        cin, hin, win, cout, hout, wout, k, _st = (int(v) for v in op[4:12])
        if code in (Op.CONV, Op.LINEAR, Op.HEAD) and not _is_linear(hin, win, hout, wout, k):
            extra += hout * -(-wout // TILE_PX) * cout
    return extra


def feature_model(qm, name: str = "") -> FeatureModel:
    """The per-sample figures of an exported model (``host.quantize.export.export_model``)."""
    from host.device.opcounts import features_op_counts

    c = features_op_counts(qm, 1)
    return FeatureModel(name or str(getattr(qm, "arch", "")), int(qm.sample_bytes), int(qm.num_classes),
                        int(c["macs_per_sample"]), int(c["cycles_per_sample"]), requant_extra_cycles(qm))


@dataclass(frozen=True)
class PoolPlan:
    """One pool: its members per class and the class budgets (sum = the mini-batch)."""

    pool: int
    batch: int
    counts: tuple[int, ...]  # members per class (classes with none left out)
    ks: tuple[int, ...]  # picks per class

    @property
    def k(self) -> int:
        return sum(self.ks)


def plan_pool(pool: int, batch: int, num_classes: int) -> PoolPlan:
    """A pool of ``pool`` samples with balanced classes (sizes differ by at most one), the budget
    ``min(batch, pool)`` split over them as host.selection's ``Budget.GLOBAL`` does."""
    from host.greedi import split_budget

    if pool < 1 or batch < 1 or num_classes < 1:
        raise ValueError(f"need pool, batch, num_classes >= 1; got {pool}, {batch}, {num_classes}")
    counts = np.array([len(a) for a in np.array_split(np.arange(pool), min(num_classes, pool))], np.int64)
    ks = split_budget(min(batch, pool), counts)
    keep = ks > 0  # a class with no pick runs no greedy (host/device/rtl/parts.py leaves it out)
    return PoolPlan(pool, min(batch, pool), tuple(int(c) for c in counts[keep]), tuple(int(k) for k in ks[keep]))


#: [COUNT] in nessa_greedy: a read-modify-write of ``count`` per member (bench/hls_estimates.py: II 3).
COUNT_II = 3


def one_pick_tail_cycles(n: int, fpga: Fpga) -> float:
    """What ``nessa_greedy`` does after phase 1 when it only writes the rows for the RTL engine (a
    one-pick stochastic run, host/device/flow.py ``_greedy_rtl``): [INIT_STATE] and [ASSIGN_INIT]
    over the padded row (``ld`` each), [ASSIGN_ROWS]' skip of every unselected member, three row
    reads (the pick's gain, [COVER_UPDATE], [ASSIGN_COLS]; ``ld / 32`` beats and a DDR read gap
    each) and [COUNT] at II 3."""
    from host.device.opcounts import GREEDY_WBEAT

    ldw = -(-n // GREEDY_WBEAT)
    return 2 * ldw * GREEDY_WBEAT + n + 3 * (ldw + fpga.read_gap_cycles) + COUNT_II * n


def similarity_cycles(plan: PoolPlan, d: int, speed: Speed, fpga: Fpga, *, maxd_from_data: bool = True) -> float:
    """``nessa_greedy`` per class of the pool: its distance passes (phase 0 when ``maxd_from_data``,
    then phase 1 writing the similarity rows) and the one-pick tail (:func:`one_pick_tail_cycles`,
    control loops: the same at both speeds)."""
    from host.device.opcounts import greedy_op_counts

    total = 0.0
    for n, k in zip(plan.counts, plan.ks):
        c = greedy_op_counts(n, d, k, maxd_from_data=maxd_from_data)
        total += c["distance_cycles"] if speed is Speed.AS_BUILT else c["distance_macs"] / fpga.dsp_macs_per_cycle
        total += one_pick_tail_cycles(n, fpga)
    return total


def greedy_cycles_model(plan: PoolPlan, fpga: Fpga, epsilon: float) -> float:
    """Closed form of one ``nessa_fl_rtl`` run over the pool's classes as parts, stochastic mode:
    ``Fpga.greedy_cycles`` per class (evaluations = the engine's ``sum_t min(s, n - t)``) plus the
    descriptor fetch and part switch (a read gap, the adder-tree latency and 5 control cycles)."""
    from host.golden.stochastic import stochastic_sample_size

    lat = (fpga.lanes - 1).bit_length() + 1
    total = 0.0
    for n, k in zip(plan.counts, plan.ks):
        s = stochastic_sample_size(n, k, epsilon)
        evals = sum(min(s, n - t) for t in range(k))
        total += fpga.greedy_cycles(n, k, evals) + fpga.read_gap_cycles + lat + 5
    return total


def read_us(pool: int, sample_bytes: int, storage: Storage) -> float:
    """Microseconds to read the pool's samples from flash over P2P."""
    return pool * sample_bytes / storage.p2p_bw * 1e6


@dataclass(frozen=True)
class PoolCost:
    feature_cycles: float
    similarity_cycles: float
    greedy_cycles: float
    clock_hz: float
    read_us: float

    @property
    def total_cycles(self) -> float:
        return self.feature_cycles + self.similarity_cycles + self.greedy_cycles

    @property
    def total_us(self) -> float:
        return self.total_cycles / self.clock_hz * 1e6

    @property
    def ratio(self) -> float:
        """Stages one after the other against the read (<= 1: hidden under it)."""
        return self.total_us / self.read_us

    @property
    def slowest_stage_ratio(self) -> float:
        """Pools pipelined (read pool i+1 while pool i computes, features and greedy kernels
        concurrent): the slowest of features and similarity + greedy against the read."""
        return max(self.feature_cycles, self.similarity_cycles + self.greedy_cycles) / self.clock_hz * 1e6 / self.read_us


def pool_cost(model: FeatureModel, plan: PoolPlan, speed: Speed, *, fpga: Fpga | None = None,
              storage: Storage | None = None, greedy_cycles: float | None = None, epsilon: float = 0.01,
              d: int | None = None) -> PoolCost:
    """Every stage of one pool (see the module docstring); ``greedy_cycles`` = the engine's
    measured cycles for this pool (None: :func:`greedy_cycles_model`)."""
    fpga = fpga or Fpga()
    storage = storage or Storage()
    dim = d or model.num_classes  # softmax - onehot: one value per class
    g = greedy_cycles_model(plan, fpga, epsilon) if greedy_cycles is None else float(greedy_cycles)
    if not (math.isfinite(g) and g >= 0):
        raise ValueError(f"greedy_cycles must be a finite number >= 0, got {greedy_cycles!r}")
    return PoolCost(feature_cycles=plan.pool * model.cycles_per_sample(speed, fpga),
                    similarity_cycles=similarity_cycles(plan, dim, speed, fpga), greedy_cycles=g,
                    clock_hz=fpga.clock_hz, read_us=read_us(plan.pool, model.sample_bytes, storage))
