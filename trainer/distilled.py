"""Training on a distilled data set the PDD way: the cumulative union, stage by stage.

``nessa distill`` (``storage_service.distill_jobs``) writes stage s of a distillation NAME as the
data set ``NAME/stage-<ss>``, holding S_1 u ... u S_s. ``--strategy pdd --distilled NAME`` trains
on those data sets in turn: the epochs are split evenly over the stages (the later stages take
the remainder), and every epoch streams its stage's whole data set from the storage service,
like the ``full`` strategy streams a data set; a one-stage distillation is the base method's
set, trained on for every epoch. The model carries over from stage to stage.

A distillation made with soft labels (``nessa distill --labels soft``) carries a teacher's
probabilities in every stage's column ``emb/soft-labels``; the plan then streams that column
beside the samples and the loop trains on cross-entropy against it (``--hard-labels``: the class
labels instead, the ablation).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.distill.teacher import SOFT_LABEL_COLUMN

__all__ = ["DistilledPlan", "stage_dataset", "epochs_per_stage", "open_plan"]

_MAX_STAGES = 100


def stage_dataset(name: str, stage: int) -> str:
    """The data set of stage ``stage`` (1-based) of the distillation ``name`` (as the service names it)."""
    return f"{name}/stage-{int(stage):02d}"


def epochs_per_stage(epochs: int, stages: int) -> list[int]:
    """``epochs`` split over ``stages``: equal shares, the remainder to the last stages."""
    if stages < 1 or epochs < stages:
        raise ValueError(f"--epochs: {epochs} epochs cannot cover {stages} distilled stages (need at least one each)")
    base, extra = divmod(epochs, stages)
    return [base + (1 if s >= stages - extra else 0) for s in range(stages)]


@dataclass(frozen=True)
class DistilledPlan:
    """The stage data sets of one distillation and which one each epoch trains on."""

    name: str
    datasets: tuple[str, ...]  # stage 1..P
    sizes: tuple[tuple[int, ...], ...]  # per stage: samples on each server
    stage_of_epoch: tuple[int, ...]  # 0-based stage index per epoch
    soft_column: str | None = None  # the soft-label column to stream and train on (None: hard labels)

    def dataset(self, epoch: int) -> str:
        return self.datasets[self.stage_of_epoch[epoch]]

    def counts(self, epoch: int) -> list[int]:
        return list(self.sizes[self.stage_of_epoch[epoch]])


def _not_found(exc: BaseException) -> bool:
    """A NOT_FOUND from the client (``StorageError.code``) or from raw gRPC (``code()``)."""
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            code = code()
        except Exception:  # noqa: BLE001 - not an RpcError after all
            return False
    return getattr(code, "name", "") == "NOT_FOUND"


def _has_soft(stage_infos) -> bool:
    return all(any(c.name == SOFT_LABEL_COLUMN for c in getattr(i, "columns", ())) for i in stage_infos)


def open_plan(cluster, name: str, epochs: int, *, soft: bool = True) -> DistilledPlan:
    """Find the stages of ``name`` on every server of ``cluster`` (``NAME/stage-01`` on, until
    the first missing one) and lay the epochs over them. ``soft``: train on the stages' soft
    labels when every stage carries them."""
    infos = [cluster.describe(stage_dataset(name, 1))]
    for s in range(2, _MAX_STAGES + 1):
        try:
            infos.append(cluster.describe(stage_dataset(name, s)))
        except Exception as exc:  # noqa: BLE001 - NOT_FOUND ends the list, anything else is raised
            if _not_found(exc):
                break
            raise
    per = epochs_per_stage(epochs, len(infos))
    order = tuple(s for s, n in enumerate(per) for _ in range(n))
    use_soft = soft and all(_has_soft(stage) for stage in infos)
    return DistilledPlan(name, tuple(stage_dataset(name, s + 1) for s in range(len(infos))),
                         tuple(tuple(int(i.num_samples) for i in stage) for stage in infos), order,
                         SOFT_LABEL_COLUMN if use_soft else None)
