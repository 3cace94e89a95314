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

A distillation made with ``--labels views`` also carries, per training seed, the teacher's label
of every augmented view that seed draws (``host.distill.views``). A run with that seed and the
same ``--augment`` names trains each view against its own label (``DistilledPlan.views``; the
trainer holds the column in memory, ``trainer.view_labels``). Anything that would pair a view
with another view's label is refused, naming the option: another seed, other augmentations,
more epochs than were labelled, ``--augment-subset``, or no ``--augment`` at all (``--hard-labels``
still trains on the class labels).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.distill.teacher import SOFT_LABEL_COLUMN
from host.distill.views import ViewSpec, seed_of_column, view_label_column

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
    views: tuple[str, ViewSpec] | None = None  # the view-label column of this run's seed and what it labels

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


def _view_columns(stage_infos) -> dict[int, tuple[str, str]]:
    """{training seed: (column, source)} of the view-label columns every server's stage carries."""
    per = [{seed_of_column(c.name): (c.name, c.source) for c in getattr(i, "columns", ()) if seed_of_column(c.name) is not None}
           for i in stage_infos]
    return {k: v for k, v in per[0].items() if all(p.get(k) == v for p in per[1:])}


def _views(name: str, infos, epochs: int, seed: int, augment: tuple[str, ...] | None, augment_subset: bool,
           servers: int) -> tuple[str, ViewSpec] | None:
    """The view labels this run trains on, None when the stages carry none; ValueError naming
    the option when the run would pair views with labels of other views."""
    columns = [_view_columns(stage) for stage in infos]
    if not any(columns):
        return None
    labelled = sorted(set.intersection(*(set(c) for c in columns)))
    specs = {ViewSpec.parse(c[s][1]) for c in columns for s in c}
    if len(specs) != 1 or not labelled:
        raise ValueError(f"--distilled: {name}'s stages carry view labels of different kinds; distil it again")
    spec = specs.pop()
    want = ",".join(spec.augment)
    if augment_subset:
        raise ValueError(f"--augment-subset: {name} carries per-view labels, which label every streamed view; "
                         f"use --augment {want} alone")
    if augment is None:
        raise ValueError(f"--augment: {name} carries the teacher's label of each view of --augment {want}; "
                         f"pass --augment {want} (or --hard-labels for the class labels)")
    if tuple(sorted(augment)) != spec.augment:
        raise ValueError(f"--augment: {name} labels the views of --augment {want}, not {','.join(augment)}")
    if seed not in labelled:
        raise ValueError(f"--seed: {name} has view labels for seeds {', '.join(map(str, labelled))}, not {seed} "
                         "(distil with --view-seeds including it)")
    if epochs > spec.epochs:
        raise ValueError(f"--epochs: {name} labels the views of {spec.epochs} epochs; {epochs} asked")
    if servers != 1:
        raise ValueError(f"--servers: per-view labels are looked up by sample id on one server; {servers} given")
    return view_label_column(seed), spec


def open_plan(cluster, name: str, epochs: int, *, soft: bool = True, seed: int = 0,
              augment: tuple[str, ...] | None = None, augment_subset: bool = False) -> DistilledPlan:
    """Find the stages of ``name`` on every server of ``cluster`` (``NAME/stage-01`` on, until
    the first missing one) and lay the epochs over them. ``soft``: train on the stages' soft
    labels when every stage carries them, per view when they carry view labels of ``seed`` for
    ``augment`` (the run's ``--augment`` names, None without)."""
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
    views = _views(name, infos, epochs, seed, augment, augment_subset, len(infos[0])) if soft else None
    return DistilledPlan(name, tuple(stage_dataset(name, s + 1) for s in range(len(infos))),
                         tuple(tuple(int(i.num_samples) for i in stage) for stage in infos), order,
                         SOFT_LABEL_COLUMN if use_soft and views is None else None, views)
