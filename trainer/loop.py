"""The training loop: stream the selected, weighted samples; push the model back; reselect.

    connect to the storage services  ->  build model + SGD  ->  (resume)  ->  for each epoch:
        at a reselection point: model -> safetensors -> PushModel -> Select  (every server, in parallel)
        stream the selection (interleaved over servers, this rank's share) -> weighted SGD steps
        stream the test set -> accuracy, loss
        metrics line, checkpoint

Warm-up epochs (CRAIG) train on the full data before the first selection. Under torchrun the
model is wrapped in DistributedDataParallel (gloo on CPU, nccl on GPU); rank 0 talks to the
servers for pushes and selections and broadcasts the selection ids; every rank streams its own
share of every selection; metrics are summed over ranks and written by rank 0.

A storage host's fault (trainer/retry.py): a failed stream or selection is retried with
back-off up to ``storage_retries`` times; past that the run stops with ``StorageGaveUp``, after a
checkpoint of exactly where it was (one process; under torchrun the last periodic one), which
``--resume`` continues from with no sample id repeated or skipped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from host.models import build_model, input_chw, to_input
from host.budget import class_budget
from host.strategies import Strategy, spec
from storage_service.client import FULL_SELECTION
from host.curvature import CurvatureEMA
from host.augment import Augmenter
from trainer.augment_subset import AugmentKind, BatchAugment, SubsetCopies, augment_config, parse_augment, parse_augment_subset
from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.config import ConfigError, Schedule, TrainConfig
from trainer.dataset import SampleStream
from trainer.distilled import open_plan
from trainer.distributed import Dist as _Dist
from trainer.metrics import MetricsWriter
from trainer.model_state import state_to_safetensors
from trainer.multi import Cluster, open_cluster
from trainer.retry import RetryPolicy, StorageGaveUp, retrying
from trainer.rounds import RoundFeeder, RoundStream
from trainer.view_labels import ViewLabelTable

__all__ = ["train", "TrainResult", "default_arch", "lr_at", "state_to_safetensors"]

_EVAL_BATCH = 1024


@dataclass
class TrainResult:
    """What a run produced (rank 0 holds the metrics; other ranks get the same model)."""

    config: TrainConfig
    arch: str
    model: torch.nn.Module
    records: list[dict] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.records[-1] if self.records else {}


def default_arch(sample_shape: Sequence[int]) -> str:
    """small_cnn for MNIST-sized (or smaller) images, resnet20 for CIFAR-sized, resnet18 above
    (TinyImageNet, ImageNet-100; the demo picks the same, ``nessa.demo.demo_arch``)."""
    _, h, w = input_chw(sample_shape)
    side = max(h, w)
    return "small_cnn" if side <= 28 else "resnet20" if side <= 32 else "resnet18"


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Learning rate after ``progress`` epochs (fractional); a pure function, so resume is exact.
    The first ``lr_warmup`` epochs ramp it up linearly (every strategy alike)."""
    ramp = min(1.0, max(progress, 0.02 * cfg.lr_warmup) / cfg.lr_warmup) if cfg.lr_warmup > 0 else 1.0
    if cfg.schedule is Schedule.COSINE:
        return ramp * cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, cfg.epochs) / cfg.epochs))
    if cfg.schedule is Schedule.STEP:
        return ramp * cfg.lr * 0.1 ** sum(progress >= m * cfg.epochs for m in (0.5, 0.75))
    return ramp * cfg.lr


# -- the loop ------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> TrainResult:
    """Run ``cfg`` to the end (or from its checkpoint) and return the model and metrics."""
    dist = _Dist.setup(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    strategy = spec(cfg.strategy)
    lead = dist.rank == 0

    cluster = open_cluster(cfg.servers, cfg.dataset, token=cfg.token, tls_ca=cfg.tls_ca, timeout=cfg.timeout,
                           stream_idle_timeout=cfg.stream_idle_timeout)
    try:
        if cfg.test_dataset:
            cluster.describe(cfg.test_dataset)
        try:  # pdd: the distillation's stage data sets, cumulative, over the epochs
            plan = open_plan(cluster, cfg.distilled, cfg.epochs, soft=not cfg.hard_labels, seed=cfg.seed,
                             augment=parse_augment(cfg.augment) if cfg.augment else None,
                             augment_subset=bool(cfg.augment_subset)) if strategy.distilled else None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        shape = cluster.sample_shape
        arch = cfg.arch or default_arch(shape)
        model = build_model(arch, shape, cluster.num_classes).to(dist.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, nesterov=cfg.nesterov and cfg.momentum > 0)

        # Where we are: fresh, or from the checkpoint.
        # Model versions are global on a server and must not collide with another run's pushes:
        # start this run's numbering at a millisecond timestamp.
        # selection_s: trainer seconds spent waiting for selections; storage_s: seconds the storage
        # hosts spent computing them (features + greedy); forwarded: samples they forwarded.
        counters = dict(wall_s=0.0, cpu_s=0.0, selection_s=0.0, storage_s=0.0, forwarded=0, eval_s=0.0,
                        bytes_received=0, eval_bytes=0, model_bytes=0, samples_seen=0,
                        model_version=time.time_ns() // 1_000_000 * 1000, loss_sum=0.0, loss_n=0.0, steps=0)
        start_epoch, start_step = 0, 0
        offsets = [0] * len(cluster.sources)
        selections: list[str] | None = None
        counts: list[int] = []
        ckpt_path = cfg.out_dir / "checkpoint.pt" if cfg.out_dir else None
        identity = {"dataset": cfg.dataset, "strategy": cfg.strategy.value, "fraction": cfg.fraction,
                    "servers": len(cfg.servers), "world_size": dist.world, "arch": arch}
        resumed = cfg.resume and ckpt_path is not None and ckpt_path.exists()
        if cfg.resume and not resumed and lead:
            print(f"[{cfg.label}] --resume: no checkpoint at {ckpt_path}; starting from scratch", flush=True)
        if resumed:
            ck = load_checkpoint(ckpt_path, identity=identity)
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            start_epoch, start_step = int(ck["epoch"]), int(ck["step"])
            offsets = list(ck["offsets"][dist.rank])
            selections, counts = list(ck["selections"]), list(ck["num_selected"])
            counters.update(ck["counters"])
        # Augmentation: of every batch, or copies of a subset the storage host picks every R epochs.
        augment, aug_kind, aug_fraction = None, None, 0.0
        if cfg.augment:
            augmenter = Augmenter(augment_config(parse_augment(cfg.augment), shape))
            copies, mirror = None, False
            if cfg.augment_subset:
                aug_kind, aug_fraction = parse_augment_subset(cfg.augment_subset)
                mirror = aug_kind is AugmentKind.SELECTED  # copies of the streamed rows: nothing else to pick
                if mirror:
                    aug_kind = None
                else:
                    copies = SubsetCopies(augmenter, seed=cfg.seed, use_weights=cfg.use_weights)
            main = Augmenter(augment_config(parse_augment(cfg.augment_main), shape)) if cfg.augment_main else None
            augment = BatchAugment(augmenter, copies, seed=cfg.seed, mirror=mirror, main=main)
        # pdd --labels views: the teacher's label of every view, held per stage data set.
        views = ViewLabelTable(*plan.views) if plan is not None and plan.views is not None else None
        # AdaCore: the curvature estimate the trainer keeps and pushes with the model.
        curvature = CurvatureEMA(cluster.num_classes, cfg.curvature_beta) if strategy.curvature else None
        net = model
        if dist.on:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
        metrics = MetricsWriter(cfg.out_dir / "metrics.jsonl" if (cfg.out_dir and lead) else None,
                                truncate=not resumed)
        if resumed:
            metrics.truncate_after(start_epoch)

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nessa-select")
        pending: Future | None = None  # rank 0: an overlapped selection in flight
        overlapping = False  # every rank: one is in flight, collect it after this epoch
        rounds: RoundStream | None = None  # mini-batch strategies, once their first selection is due
        # The server keeps a loss history per run (to drop learned examples): one name for all
        # of this run's selections, unique among runs (its first model version is a timestamp).
        run_id = f"{cfg.label}-s{cfg.seed}-{counters['model_version']}"
        first_selection = cfg.warmup_epochs + cfg.warm_start  # the strategy's own first epoch
        for epoch in range(start_epoch, cfg.epochs):
            t_epoch, c_epoch = time.perf_counter(), time.process_time()
            # 1. What to stream this epoch: the full data (warm-up), a fresh random subset of the
            # same budget (warm start), or the strategy's selection.
            in_warmup = epoch < cfg.warmup_epochs
            in_warm_start = not in_warmup and epoch < first_selection
            due = (epoch - first_selection) % cfg.reselect_every == 0
            resuming_mid_epoch = epoch == start_epoch and start_step > 0
            round_stats: dict = {}
            drops = strategy.drops or (strategy.needs_model and cfg.drop_threshold > 0)
            minibatch = strategy.selects and strategy.minibatch
            if minibatch and rounds is None and epoch >= first_selection - 1 and not in_warmup:
                # Opened one epoch early when there is a warm start: the first round is then
                # selected while the last warm-start epoch trains, and need not be waited for.
                if dist.on:
                    raise ConfigError(f"--strategy {cfg.strategy.value}: mini-batch coresets run in one process "
                                      "(torchrun with several ranks is not supported for them yet)")
                feeder = RoundFeeder(cfg, cluster, arch, dist.device, run=run_id, first_version=int(counters["model_version"]))
                feeder.curvature = curvature
                rounds = RoundStream(feeder, cfg, model, shape)
            if minibatch and not (in_warmup or in_warm_start):
                selections, counts = ["rounds"], [_subset_steps(cfg, cluster) * cfg.batch_size]
            elif not strategy.selects or in_warmup:
                selections = [FULL_SELECTION] * len(cluster.sources)
                counts = plan.counts(epoch) if plan else [int(i.num_samples) for i in cluster.infos]
            elif in_warm_start:
                if not resuming_mid_epoch:
                    t_sel = time.perf_counter()
                    call = _request(cfg, dist, cluster, model, arch, epoch, counters, run_id, warm_start=True)
                    selections, counts = _share(dist, call() if call is not None else None, counters)
                    counters["selection_s"] += time.perf_counter() - t_sel
            elif selections is None or FULL_SELECTION in selections or (due and not resuming_mid_epoch) or (
                    epoch == first_selection and not resuming_mid_epoch):
                # Overlapped: select next to the data while this epoch trains on the current subset;
                # the new subset (one epoch staler) takes over from the next epoch.
                overlap = cfg.overlap_selection and selections is not None and FULL_SELECTION not in selections
                if not (overlap and epoch + 1 == cfg.epochs):  # its result would go unused
                    t_sel = time.perf_counter()
                    call = _request(cfg, dist, cluster, model, arch, epoch, counters, run_id, curvature=curvature)
                    if overlap:
                        pending, overlapping = (pool.submit(call) if call is not None else None), True
                    else:
                        selections, counts = _share(dist, call() if call is not None else None, counters)
                    counters["selection_s"] += time.perf_counter() - t_sel
            if aug_kind is not None and (epoch % cfg.augment_every == 0 or not len(augment.copies)):
                t_sel = time.perf_counter()
                call = _request(cfg, dist, cluster, model, arch, epoch, counters, run_id, strategy=aug_kind.strategy,
                                fraction=aug_fraction)
                picked, _ = _share(dist, call() if call is not None else None, counters)
                counters["bytes_received"] += augment.copies.load(
                    b for part, sel in zip(cluster.parts(cfg.dataset, picked), picked)
                    for b in part.source.stream_samples(cfg.dataset, selection=sel, seed=cfg.seed, epoch=epoch, rank=0,
                                                        world_size=1, start_offset=0, batch_bytes=cfg.batch_bytes))
                counters["selection_s"] += time.perf_counter() - t_sel
            if views is not None and views.dataset != plan.dataset(epoch):  # a new stage: its views' labels
                counters["bytes_received"] += views.load(plan.dataset(epoch), (
                    b for part in cluster.parts(plan.dataset(epoch))
                    for b in part.source.stream_samples(plan.dataset(epoch), selection=FULL_SELECTION, seed=cfg.seed,
                                                        epoch=epoch, batch_bytes=cfg.batch_bytes, columns=(views.column,))))
            if not resuming_mid_epoch:
                offsets, start_step = [0] * len(cluster.sources), 0
                counters["loss_sum"], counters["loss_n"] = 0.0, 0.0

            # 2. Train on this rank's share of it.
            per_rank = sum(c // dist.world for c in counts) if dist.on else sum(counts)
            steps = max(1, math.ceil(per_rank / cfg.batch_size))
            if selections == ["rounds"]:
                stream = _RoundEpoch(rounds, steps - start_step)
            else:
                limit = per_rank - start_step * cfg.batch_size if dist.on else None
                stream = SampleStream(cluster.parts(plan.dataset(epoch) if plan else cfg.dataset, selections, offsets),
                                      epoch=epoch, seed=cfg.seed,
                                      batch_size=cfg.batch_size, rank=dist.rank, world_size=dist.world,
                                      batch_bytes=cfg.batch_bytes, prefetch=cfg.prefetch, device=dist.device,
                                      limit=limit, retry=_retry(cfg), soft_column=plan.soft_column if plan else None)
            stopped = _train_epoch(cfg, dist, net, model, optimizer, stream, shape, epoch, start_step, steps,
                                   counters, selections, counts, ckpt_path, identity, augment, per_rank, curvature, views)
            if isinstance(stream, _RoundEpoch):
                round_stats = stream.stats()
                for key in ("selection_s", "storage_s", "forwarded", "model_bytes"):
                    counters[key] += round_stats.get(key, 0)
            start_step = 0
            streamed = plan.dataset(epoch) if plan else ",".join(selections)  # this epoch's data (metrics line)
            streamed_n = int(sum(counts))
            if overlapping and not stopped:  # collect the overlapped selection: only the wait counts
                t_sel = time.perf_counter()
                selections, counts = _share(dist, pending.result() if pending is not None else None, counters)
                counters["selection_s"] += time.perf_counter() - t_sel
                pending, overlapping = None, False
            counters["wall_s"] += time.perf_counter() - t_epoch
            counters["cpu_s"] += dist.sum([time.process_time() - c_epoch])[0]
            if stopped:  # --max-steps reached mid-run; the checkpoint says where to resume
                break

            # 3. Evaluate, record, checkpoint.
            test_acc = test_loss = None
            if cfg.test_dataset and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                t_eval = time.perf_counter()
                test_acc, test_loss, nbytes = _evaluate(model, cluster, cfg.test_dataset, dist, shape, _retry(cfg))
                counters["eval_s"] += time.perf_counter() - t_eval
                counters["eval_bytes"] += nbytes
            if lead:
                rec = metrics.write({
                    "run": cfg.label, "strategy": cfg.strategy.value, "fraction": cfg.fraction,
                    "epoch": epoch + 1, "lr": lr_at(cfg, epoch + 1),
                    "train_loss": counters["loss_sum"] / max(counters["loss_n"], 1.0),
                    "test_loss": test_loss, "test_acc": test_acc,
                    "wall_s": round(counters["wall_s"], 4), "cpu_s": round(counters["cpu_s"], 4),
                    "selection_s": round(counters["selection_s"], 4), "storage_s": round(counters["storage_s"], 4),
                    "forwarded": int(counters["forwarded"]), "rounds": round_stats.get("rounds"),
                    "mean_hold": round_stats.get("mean_hold"), "dropped": round_stats.get("dropped", counters.get("dropped") if drops else None),
                    "eval_s": round(counters["eval_s"], 4), "bytes_received": int(counters["bytes_received"]),
                    "eval_bytes": int(counters["eval_bytes"]), "model_bytes": int(counters["model_bytes"]),
                    "samples_seen": int(counters["samples_seen"]), "num_selected": streamed_n,
                    "selection": streamed})
                if cfg.progress:
                    acc = "-" if test_acc is None else f"{100 * test_acc:.2f}%"
                    print(f"[{cfg.label}] epoch {epoch + 1}/{cfg.epochs}: test acc {acc}, "
                          f"loss {rec['train_loss']:.4f}, {rec['wall_s']:.1f}s, "
                          f"{rec['bytes_received'] / 1e6:.1f} MB", flush=True)
            if ckpt_path is not None:
                _checkpoint(ckpt_path, dist, model, optimizer, epoch + 1, 0, [0] * len(cluster.sources),
                            selections, counts, counters, identity)
        return TrainResult(cfg, arch, model, list(metrics.records))
    except BaseException as exc:
        # First close the channels: that cancels calls still waiting on a hung server (an
        # overlapped selection), which the pool below would otherwise wait for.
        cluster.close()
        if isinstance(exc, StorageGaveUp) and locals().get("ckpt_path") is not None and ckpt_path.exists():
            exc.checkpoint_path = ckpt_path
        raise
    finally:
        if "pool" in locals():
            pool.shutdown(wait=True)  # an overlapped selection still running must not outlive the cluster
        if locals().get("rounds") is not None:
            rounds.close()
        cluster.close()
        dist.close()


def _request(cfg: TrainConfig, dist: _Dist, cluster: Cluster, model: torch.nn.Module, arch: str, epoch: int,
             counters: dict, run_id: str, *, warm_start: bool = False, strategy: Strategy | None = None,
             fraction: float | None = None, curvature: CurvatureEMA | None = None) -> Callable[[], str] | None:
    """Rank 0: snapshot the model now; return the call that pushes it and selects (None elsewhere).
    ``warm_start``: a fresh random subset of the same budget instead of the strategy's selection;
    ``strategy``/``fraction``: another selection than the run's (the subset to augment)."""
    if dist.rank != 0:
        return None
    own = strategy is None and not warm_start
    name = Strategy.RANDOM if warm_start else (strategy or cfg.strategy)
    fraction = cfg.fraction if fraction is None else fraction
    strategy = spec(name)
    blob, version = None, None
    extra = {}
    if own and (strategy.drops or (strategy.needs_model and cfg.drop_threshold > 0)):
        extra = dict(run=run_id, drop_threshold=cfg.drop_threshold,
                     watch=cfg.watch, min_keep=cfg.min_keep)
    if strategy.needs_model:
        blob = state_to_safetensors(model, curvature.tensors() if curvature is not None and strategy.curvature else None)
        counters["model_version"] = version = int(counters["model_version"]) + 1
        counters["model_bytes"] += len(blob) * len(cluster.sources)
    seed = cfg.seed * 100_003 + epoch if strategy.fresh_seed else cfg.seed

    def once() -> list:
        if blob is not None:  # pushed again on a retry: a restarted server may not have it
            cluster.push_model(arch, blob, version)
        return cluster.select(name, fraction, seed=seed, model_version=version, backend=cfg.backend, **extra)

    def call() -> str:
        infos = retrying(once, _retry(cfg), f"selection {getattr(name, 'value', name)}@{fraction:g}")
        return "\n".join(f"{i.id}\t{int(i.num_selected)}\t{float(i.seconds)!r}\t{int(getattr(i, 'num_forwarded', 0))}"
                         f"\t{int(getattr(i, 'num_dropped', 0))}" for i in infos)

    return call


def _retry(cfg: TrainConfig) -> RetryPolicy:
    return RetryPolicy(retries=cfg.storage_retries, backoff=cfg.retry_backoff)


def _share(dist: _Dist, text: str | None, counters: dict) -> tuple[list[str], list[int]]:
    """Rank 0's selection ids and sizes on every rank; adds the storage side's cost to ``counters``."""
    rows = [line.split("\t") for line in dist.broadcast_text(text).splitlines()]
    counters["storage_s"] += sum(float(r[2]) for r in rows)
    counters["forwarded"] += sum(int(r[3]) for r in rows)
    counters["dropped"] = sum(int(r[4]) for r in rows)  # the latest selection's, not a running sum
    return [r[0] for r in rows], [int(r[1]) for r in rows]


def _subset_steps(cfg: TrainConfig, cluster: Cluster) -> int:
    """Steps in one epoch of a mini-batch strategy: as many as an epoch of a per-class subset of
    ``fraction`` (so every strategy at the same fraction and epochs takes the same steps)."""
    per_class = [class_budget(int(n), cfg.fraction) for info in cluster.infos for n in info.class_counts]
    return max(1, math.ceil(sum(per_class) / cfg.batch_size))


class _RoundEpoch:
    """One epoch of a RoundStream as the loop's batch iterator (``observe`` feeds CREST's check)."""

    def __init__(self, rounds: RoundStream, steps: int):
        self._rounds, self._steps = rounds, steps
        self.observe = rounds.observe
        self._stats: dict = {}

    def __iter__(self):
        yield from self._rounds.epoch(self._steps)
        self._stats = self._rounds.take_stats()

    def stats(self) -> dict:
        s = dict(self._stats)
        s["selection_s"] = s.pop("select_wait_s", 0.0)
        return s


def _train_epoch(cfg: TrainConfig, dist: _Dist, net: torch.nn.Module, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, stream: SampleStream, shape: tuple[int, ...], epoch: int,
                 step: int, steps: int, counters: dict, selections: list[str], counts: list[int],
                 ckpt_path, identity: dict, augment: BatchAugment | None = None, rows_per_epoch: int = 0,
                 curvature: CurvatureEMA | None = None, views: ViewLabelTable | None = None) -> bool:
    """One epoch (or its rest, from ``step``); True when ``max_steps`` stopped it early."""
    from tqdm import tqdm

    net.train()
    observe = getattr(stream, "observe", None)
    bar = tqdm(total=steps, initial=step, desc=f"{cfg.label} epoch {epoch + 1}/{cfg.epochs}", unit="step",
               leave=False, disable=not (cfg.progress and dist.rank == 0), dynamic_ncols=True)
    local = [0.0, 0.0, 0.0, 0.0]  # loss sum, loss count, samples, bytes (this rank, since last sync)
    resume_at = [p.start_offset for p in stream.parts] if isinstance(stream, SampleStream) else [0] * len(selections)
    try:
        for batch in stream:
            lr = lr_at(cfg, epoch + min(step / steps, 1.0))
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y, w = batch.x, batch.y, batch.w
            if augment is not None:
                x, y, w = augment(x, batch.ids, y, w, epoch=epoch, sample_shape=shape, rows_per_epoch=rows_per_epoch)
            logits = net(to_input(x, shape if augment is None else input_chw(shape)))
            soft = views.targets(batch.ids, epoch, logits.device) if views is not None else batch.soft
            if soft is not None:  # a distillation's soft labels (of each view): cross-entropy against the teacher's q
                per_example = -(soft * F.log_softmax(logits, dim=1)).sum(dim=1)
            else:
                per_example = F.cross_entropy(logits, y, reduction="none")
            if curvature is not None:  # AdaCore's estimate follows training, step by step
                curvature.update(logits)
            # CRAIG: each selected example stands for `w` examples (weights average 1 per class).
            loss = (per_example * w).mean() if cfg.use_weights else per_example.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if observe is not None:  # CREST: the loss model is checked at these parameters
                observe(float(loss.detach()))
            optimizer.step()
            step += 1
            resume_at = list(batch.offsets)
            counters["steps"] += 1
            local[0] += float(loss.detach()) * len(y)
            local[1] += len(y)
            local[2] += len(y)  # augmented copies count: they are trained on
            local[3] += batch.nbytes
            bar.update(1)
            stop = bool(cfg.max_steps) and counters["steps"] >= cfg.max_steps
            if (stop or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)) and ckpt_path is not None:
                _fold(dist, counters, local)
                _checkpoint(ckpt_path, dist, model, optimizer, epoch, step, list(batch.offsets), selections,
                            counts, counters, identity)
            if stop:
                _fold(dist, counters, local)
                return True
        _fold(dist, counters, local)
        return False
    except StorageGaveUp as exc:
        # Leave a checkpoint of exactly the steps taken (one process: under torchrun the
        # other ranks are not at this point, and a checkpoint is a collective).
        if ckpt_path is not None and not dist.on:
            _fold(dist, counters, local)
            _checkpoint(ckpt_path, dist, model, optimizer, epoch, step, resume_at, selections, counts, counters, identity)
            exc.checkpoint = (ckpt_path, epoch, step)
        raise
    finally:
        bar.close()


def _fold(dist: _Dist, counters: dict, local: list[float]) -> None:
    """Add every rank's running sums to the counters (collective: all ranks call it together)."""
    loss_sum, loss_n, samples, nbytes = dist.sum(local)
    counters["loss_sum"] += loss_sum
    counters["loss_n"] += loss_n
    counters["samples_seen"] += int(samples)
    counters["bytes_received"] += int(nbytes)
    local[:] = [0.0, 0.0, 0.0, 0.0]


def _checkpoint(path, dist: _Dist, model, optimizer, epoch: int, step: int, offsets: list[int],
                selections: list[str], counts: list[int], counters: dict, identity: dict) -> None:
    every = dist.gather_ints(offsets)  # collective: every rank's resume offsets
    if dist.rank == 0:
        save_checkpoint(path, {"epoch": epoch, "step": step, "offsets": every, "selections": list(selections),
                               "num_selected": list(counts), "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(), "counters": dict(counters),
                               "identity": identity})


@torch.no_grad()
def _evaluate(model: torch.nn.Module, cluster: Cluster, name: str, dist: _Dist,
              shape: tuple[int, ...], retry: RetryPolicy | None = None) -> tuple[float, float, int]:
    """Accuracy and mean loss over the whole test set (each rank streams its share)."""
    was_training = model.training
    model.eval()
    stream = SampleStream(cluster.parts(name), epoch=0, seed=0, batch_size=_EVAL_BATCH, rank=dist.rank,
                          world_size=dist.world, device=dist.device, retry=retry)
    correct = loss_sum = count = 0.0
    for batch in stream:
        logits = model(to_input(batch.x, shape))
        loss_sum += float(F.cross_entropy(logits, batch.y, reduction="sum"))
        correct += float((logits.argmax(1) == batch.y).sum())
        count += len(batch)
    model.train(was_training)
    correct, loss_sum, count, nbytes = dist.sum([correct, loss_sum, count, stream.bytes_received])
    if count == 0:
        raise RuntimeError(f"test data set {name!r} streamed no samples")
    return correct / count, loss_sum / count, int(nbytes)
