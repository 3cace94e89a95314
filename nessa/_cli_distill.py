"""``nessa distill``: distil a data set next to the data (DM / DC, PDD with --stages > 1).

On the storage host itself (``--store ROOT``, the default being the current folder) the
distillation runs in this process; with ``--server HOST:PORT`` the storage service runs it
(``Distill`` RPC) and this command follows its progress (``GetDistillation``). Either way each
stage is written atomically as the data set ``OUT/stage-<ss>`` and a second run with the same
options continues after the last finished stage.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nessa._cli_jobs import add_where_args, service_client

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("distill", help="distil a data set into a few synthetic images per class (DM, DC, PDD)",
                       description="Distil DATASET (a data set name under the store root) into STAGES x IPC synthetic "
                                   "images per class, each stage written atomically as the data set OUT/stage-NN "
                                   "(the union of stages 1..NN). Resumes after the last finished stage. Train on it "
                                   "with `nessa train --strategy pdd --distilled OUT`.")
    p.add_argument("dataset", help="source data set, e.g. fm/train (its samples must be images)")
    p.add_argument("--method", default="dm", help="base method: dm (distribution matching), dc (gradient matching) "
                                                  "or random (real images drawn at random: the control)")
    p.add_argument("--stages", type=int, default=1, help="PDD stages (1: the base method alone; default 1)")
    p.add_argument("--ipc", type=int, default=10, help="synthetic images per class per stage (default 10)")
    p.add_argument("--out", required=True, help="name of the distillation: stages go to OUT/stage-01, ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=200, help="matching steps per stage (default 200)")
    p.add_argument("--labels", default="hard", help="hard (each image's class), soft (also a teacher's tempered "
                                                    "probabilities, column emb/soft-labels) or views (soft, and the "
                                                    "teacher's label of every augmented view a training run draws; "
                                                    "default hard)")
    p.add_argument("--teacher-epochs", type=int, default=3, help="soft labels: teacher training epochs (default 3)")
    p.add_argument("--label-temperature", type=float, default=2.0, help="soft labels: softmax temperature (default 2)")
    p.add_argument("--view-epochs", type=int, default=0, help="views: training epochs to label (a run may train at most "
                                                              "this many)")
    p.add_argument("--view-seeds", default="", help="views: comma list of the training seeds (`nessa train --seed`) to "
                                                    "label, each its own column emb/view-labels-s<seed>")
    p.add_argument("--view-augment", default="crop,flip", help="views: the `nessa train --augment` names whose views "
                                                               "to label (default crop,flip)")
    add_where_args(p, "distil")
    p.set_defaults(func=_distill)


def _config(args):
    from host.distill import DistillConfig, DistillError
    from nessa._errors import CliError

    try:
        return DistillConfig(method=args.method, stages=args.stages, ipc=args.ipc, seed=args.seed,
                             iterations=args.iterations, labels=args.labels, teacher_epochs=args.teacher_epochs,
                             label_temperature=args.label_temperature, view_epochs=args.view_epochs,
                             view_seeds=args.view_seeds, view_augment=args.view_augment)
    except DistillError as exc:
        raise CliError(str(exc)) from None


def _distill(args: argparse.Namespace) -> int:
    from nessa._errors import CliError

    cfg = _config(args)
    if args.threads < 1:
        raise CliError(f"--threads: must be >= 1, got {args.threads}")
    status = _remote(args, cfg) if args.server else _local(args, cfg)
    print(f"{status.name}: {status.stages_done} stage(s) of {status.ipc} images per class "
          f"({status.method}, {status.labels} labels, seed {status.seed}), {status.cpu_s:.1f} s CPU"
          + (f"; resumed after stage {status.resumed_from}" if status.resumed_from else ""))
    for name in status.stage_datasets:
        print(f"  {name}")
    views = f" --augment {cfg.view_augment} --seed S --epochs E (S in {','.join(map(str, cfg.view_seeds))}, E <= {cfg.view_epochs})" \
        if status.labels == "views" else ""
    print(f"train on it: nessa train --strategy pdd --distilled {status.name}{views} ...")
    return 0


def _bar(args, total: int, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"distill {args.out}", unit="step", disable=args.quiet,
                dynamic_ncols=True)


def _local(args, cfg):
    import torch

    from host.distill import DistillError
    from nessa._errors import CliError
    from storage_service.distill_jobs import check_out_name, finished_stages, run_distillation
    from storage_service.store import Store, StoreError, discover

    root = args.store if args.store is not None else Path(".")
    if not root.is_dir():
        raise CliError(f"--store: {str(root)!r} is not a folder")
    path = discover(root).get(args.dataset.strip("/"))
    if path is None:
        raise CliError(f"{args.dataset}: no such data set under {str(root)!r} (see `nessa info`)")
    try:
        store = Store(path)
        out = check_out_name(args.out)
        done = len(finished_stages(root, out, args.dataset, store.manifest, cfg))
    except (StoreError, DistillError) as exc:
        raise CliError(str(exc)) from None
    torch.set_num_threads(args.threads)
    bar = _bar(args, cfg.stages * cfg.iterations, min(done, cfg.stages) * cfg.iterations)
    try:
        return run_distillation(store, args.dataset.strip("/"), root, out, cfg,
                                progress=lambda s, k: bar.update((s - 1) * cfg.iterations + k - bar.n))
    except DistillError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()


def _remote(args, cfg):
    from nessa._errors import CliError
    from storage_service.client import StorageError
    from storage_service.distill_jobs import DistillStatus

    try:
        with service_client(args) as client:
            info = client.distill(args.dataset, args.out, method=cfg.method.value, stages=cfg.stages, ipc=cfg.ipc,
                                  seed=cfg.seed, iterations=cfg.iterations, labels=cfg.labels.value,
                                  teacher_epochs=cfg.teacher_epochs, label_temperature=cfg.label_temperature,
                                  view_epochs=cfg.view_epochs, view_seeds=cfg.view_seeds, view_augment=cfg.view_augment)
            bar = _bar(args, int(info.steps_total), int(info.step))
            try:
                while info.state == 1:  # DISTILL_STATE_RUNNING
                    time.sleep(0.5)
                    info = client.get_distillation(info.name)
                    bar.update(int(info.step) - bar.n)
            finally:
                bar.close()
    except StorageError as exc:
        raise CliError(f"{args.server}: {exc.details or exc}") from None
    except KeyboardInterrupt:
        raise CliError(f"stopped following {args.out}; the storage service keeps distilling it "
                       "(run the same command again to follow it)") from None
    if info.state != 2:  # DISTILL_STATE_DONE
        raise CliError(f"{args.out}: distillation failed on {args.server}: {info.error or 'unknown error'}")
    return DistillStatus(info.name, info.source, args.method, info.stages, info.ipc, info.seed, info.iterations, "done",
                         info.stages_done, info.step, info.steps_total, list(info.stage_datasets), info.cpu_seconds,
                         resumed_from=info.resumed_from, view_epochs=info.view_epochs,
                         labels="views" if info.view_epochs else "soft" if info.soft_labels else "hard")
