"""Distillation next to the data: each stage written as a data set, progress, resume.

``run_distillation(store, source, root, out, cfg)`` distils ``cfg.stages`` stages of
``cfg.ipc`` images per class from the opened ``store`` (``host.distill``) and writes stage s as
the data set ``<out>/stage-<ss>`` under the store root ``root``. A stage's data set holds the
cumulative union S_1 u ... u S_s, which is what a PDD trainer trains on after stage s (so a
trainer streams it like any other data set, ``selection="full"``); the rows of stage j are
``[(j-1) * C * ipc, j * C * ipc)``.

Each stage is written atomically (a hidden temporary folder beside it, every file fsynced, then
renamed), so an interrupted distillation leaves only finished stages. Run again with the same
options, it continues after the last finished stage: stage s depends only on the options and
the earlier stages (``host.distill.pdd.stage_seed``), so the result equals an uninterrupted
run's. Asking for more stages later extends a finished distillation.

Stage manifest (``manifest.json`` ``extra["distill"]``, format ``nessa-distill`` version 1)::

    format, format_version   "nessa-distill", 1
    source                   the source data set's name; source_sha256: hash of its shard hashes
    method, ipc, seed        the base method, images per class per stage, the seed
    stage, stages            this stage (1-based) and the number of stages asked for
    config                   every DistillConfig field but ``stages`` (what must match to resume)
    stage_rows               [[start, end], ...]: rows of each stage in this union
    labels                   "hard" (the label column is each image's class), "soft" (also a
                             teacher's probabilities, in the embedding column below) or "views"
                             (soft, and also the teacher's label of every augmented view)
    soft_label_column        with soft labels: "emb/soft-labels", float32 [rows, classes], rows
                             summing to 1 (``label_temperature``: the softmax temperature)
    view_labels              with views: {"format": "nessa-view-labels", "format_version": 1,
                             "epochs", "augment", "temperature", "columns": {seed: column}}; each
                             column ("emb/view-labels-s<seed>", float16 [rows, epochs * classes])
                             is described in host/distill/views.py
    value_space              "model-input": float32 pixels as the models see uint8 / 255
    cpu_s                    process CPU seconds this stage took to distil (with its share of the
                             teacher: all of it for the first stage a run writes); cpu_s_total:
                             stages 1..s

``DistillJobs`` runs distillations on a worker thread for the service (``Distill`` /
``GetDistillation`` RPCs) and reports their progress.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from host.distill import (SOFT_LABEL_COLUMN, DistillConfig, DistillError, Distiller, check_images,
                          view_label_column)
from host.distill.views import VIEW_LABELS_FORMAT, VIEW_LABELS_VERSION
from storage_service.columns import write_embedding_column
from storage_service.ingest.writer import atomic_dir, write_chunks
from storage_service.manifest import MANIFEST_NAME, Manifest, ManifestError

__all__ = ["FORMAT", "FORMAT_VERSION", "SOFT_LABEL_COLUMN", "DistillStatus", "DistillJobs", "run_distillation", "stage_dataset",
           "check_out_name", "finished_stages", "DistillError"]

FORMAT = "nessa-distill"
FORMAT_VERSION = 1
#: Options added after the first distillations were written: what a manifest without them meant.
_LEGACY_CONFIG = {k: v for k, v in DistillConfig().summary().items()
                  if k in ("labels", "teacher_epochs", "teacher_width", "label_temperature", "view_epochs",
                           "view_seeds", "view_augment")}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def stage_dataset(out: str, stage: int) -> str:
    """The data set name of stage ``stage`` (1-based) of the distillation ``out``."""
    return f"{out}/stage-{int(stage):02d}"


def check_out_name(out: str) -> str:
    """``out`` as a relative data set path (``a/b``), or DistillError naming --out."""
    if not isinstance(out, str) or not out.strip():
        raise DistillError("--out: a name for the distilled data set is needed")
    out = out.strip().strip("/")
    parts = out.split("/")
    if any(not _NAME.fullmatch(p) for p in parts) or len(out) > 200:
        raise DistillError(f"--out: {out[:80]!r} is not a data set name (letters, digits, '.', '_', '-', "
                           "'/' between parts, no part starting with '.')")
    return out


@dataclass
class DistillStatus:
    """Where a distillation stands (also rebuilt from disk for one no job is running)."""

    name: str
    source: str = ""
    method: str = ""
    stages: int = 0
    ipc: int = 0
    seed: int = 0
    iterations: int = 0
    state: str = "running"  # running | done | failed | stopped (unfinished, not running: Distill resumes)
    stages_done: int = 0
    step: int = 0  # matching steps done, all stages together
    steps_total: int = 0
    stage_datasets: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    error: str = ""
    resumed_from: int = 0  # stages found finished when this run started
    labels: str = "hard"  # or "soft": the stages also carry SOFT_LABEL_COLUMN; "views": and view labels
    view_epochs: int = 0  # views: epochs of views labelled


def _source_sha(manifest: Manifest) -> str:
    return hashlib.sha256("".join(s.sha256 for s in manifest.shards).encode()).hexdigest()


def _identity(source: str, manifest: Manifest, cfg: DistillConfig) -> dict:
    conf = cfg.summary()
    conf.pop("stages")
    return {"source": source, "source_sha256": _source_sha(manifest), "config": conf}


def finished_stages(root: str | os.PathLike, out: str, source: str, manifest: Manifest, cfg: DistillConfig) -> list[Manifest]:
    """The manifests of the finished stages 1..k of ``out`` (k may be 0), or DistillError when
    ``out`` is taken by something else (a data set, or a distillation with other options)."""
    base = Path(root) / out
    rel = Path(out)
    for part in (rel, *rel.parents):  # out itself, or a folder above it, is a data set
        if (Path(root) / part / MANIFEST_NAME).exists():
            raise DistillError(f"--out: {out!r} is or lies inside an existing data set; choose another name")
    want = _identity(source, manifest, cfg)
    found = []
    while True:
        path = base / f"stage-{len(found) + 1:02d}"
        if not (path / MANIFEST_NAME).exists():
            return found
        try:
            m = Manifest.load(path)
        except ManifestError as exc:
            raise DistillError(f"--out: {stage_dataset(out, len(found) + 1)} is unreadable ({exc}); remove it") from None
        doc = m.extra.get("distill") or {}
        have = {k: doc.get(k) for k in want}
        if isinstance(have.get("config"), dict):
            have["config"] = {**_LEGACY_CONFIG, **have["config"]}
        if doc.get("format") != FORMAT or have != want:
            diff = sorted(k for k in ("source", "source_sha256") if have.get(k) != want[k])
            diff += sorted(k for k, v in want["config"].items() if (have.get("config") or {}).get(k) != v)
            raise DistillError(f"--out: {out!r} already holds a distillation made with other options "
                               f"({', '.join(diff) or 'format'} differ); choose another --out or the same options")
        found.append(m)


def _write_stage(dest: Path, samples: np.ndarray, labels: np.ndarray, manifest: Manifest, extra: dict,
                 soft: np.ndarray | None = None, views: dict[str, tuple[np.ndarray, str]] | None = None) -> None:
    with atomic_dir(dest) as tmp:
        write_chunks(tmp, [(samples, labels)], name=dest.parent.name + "/" + dest.name, sample_shape=samples.shape[1:],
                     dtype=np.float32, num_classes=manifest.num_classes, class_names=manifest.class_names,
                     extra={"distill": extra})
        if soft is not None:  # inside the temporary: the stage appears with its labels or not at all
            write_embedding_column(tmp, SOFT_LABEL_COLUMN, soft, dtype="float32", source="distill-teacher", lock=False)
        for column, (values, source) in (views or {}).items():
            write_embedding_column(tmp, column, values, dtype="float16", source=source, lock=False)
    # atomic_dir fsyncs every file of tmp before the rename and the parent folder after it.


def _load_all(store) -> tuple[np.ndarray, np.ndarray]:
    parts = [(np.array(s), np.array(l)) for _, s, l in store.iter_batches(65536)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def run_distillation(store, source: str, root: str | os.PathLike, out: str, cfg: DistillConfig, *,
                     progress: Callable[[int, int], None] | None = None,
                     on_stage: Callable[[int, float], None] | None = None) -> DistillStatus:
    """Distil (or finish distilling) ``out`` from ``store`` (the data set ``source``) under the
    store root ``root``. ``progress(stage, step)`` after every matching step; ``on_stage(stage,
    cpu_s)`` after each stage is written. Returns the final status."""
    out = check_out_name(out)
    m = store.manifest
    check_images(source, m.sample_shape, m.class_counts, cfg)
    done = finished_stages(root, out, source, m, cfg)
    status = DistillStatus(out, source, cfg.method.value, cfg.stages, cfg.ipc, cfg.seed, cfg.iterations, "running",
                           len(done), len(done) * cfg.iterations, cfg.stages * cfg.iterations,
                           [stage_dataset(out, s + 1) for s in range(len(done))],
                           float(done[-1].extra["distill"]["cpu_s_total"]) if done else 0.0, resumed_from=len(done),
                           labels=cfg.labels.value, view_epochs=cfg.view_epochs)
    if len(done) >= cfg.stages:
        status.state, status.step = "done", status.steps_total
        return status
    samples, labels = _load_all(store)
    dist = Distiller(samples, labels, m.sample_shape, m.num_classes, cfg, name=source)
    del samples
    previous: list[tuple[np.ndarray, np.ndarray]] = []
    soft: list[np.ndarray] = []  # soft labels of the stages in previous (soft and views)
    views: dict[int, list[np.ndarray]] = {seed: [] for seed in cfg.view_seeds}  # per training seed, per stage
    if done:  # the earlier stages, read back from the last finished one (it holds their union)
        from storage_service.store import Store

        last = Store(Path(root) / stage_dataset(out, len(done)))
        x, y = last.take(np.arange(len(last)))
        previous = [(np.array(x[a:b]), np.array(y[a:b])) for a, b in last.manifest.extra["distill"]["stage_rows"]]
        rows = last.manifest.extra["distill"]["stage_rows"]
        if cfg.soft:  # read back, not recomputed: a new process's teacher could differ in the last bit
            q = last.embeddings(SOFT_LABEL_COLUMN)
            soft = [np.array(q[a:b], dtype=np.float32) for a, b in rows]
        for seed in views:
            q = last.embeddings(view_label_column(seed))
            views[seed] = [np.array(q[a:b], dtype=np.float16) for a, b in rows]
    ident = _identity(source, m, cfg)
    for s in range(len(done) + 1, cfg.stages + 1):
        c0 = time.process_time()
        imgs, labs = dist.run_stage(s, previous, progress=(lambda k, s=s: progress(s, k)) if progress else None)
        if cfg.soft:
            soft.append(dist.soft_labels(imgs))
        first_row = sum(len(x) for x, _ in previous)  # a row's id in every later union too
        for seed, parts in views.items():
            parts.append(dist.view_labels(imgs, np.arange(first_row, first_row + len(imgs)), seed))
        cpu = time.process_time() - c0
        previous.append((imgs, labs))
        rows, start = [], 0
        for x, _ in previous:
            rows.append([start, start + len(x)])
            start += len(x)
        status.cpu_s += cpu
        extra = {"format": FORMAT, "format_version": FORMAT_VERSION, **ident, "method": cfg.method.value,
                 "ipc": cfg.ipc, "seed": cfg.seed, "stage": s, "stages": cfg.stages, "stage_rows": rows,
                 "labels": cfg.labels.value, "value_space": "model-input", "cpu_s": round(cpu, 3),
                 "cpu_s_total": round(status.cpu_s, 3)}
        if cfg.soft:
            extra.update(soft_label_column=SOFT_LABEL_COLUMN, label_temperature=cfg.label_temperature,
                         teacher_cpu_s=round(dist.teacher_cpu_s, 3))
        spec = dist.view_spec if views else None
        if spec is not None:
            extra["view_labels"] = {"format": VIEW_LABELS_FORMAT, "format_version": VIEW_LABELS_VERSION, "epochs": spec.epochs,
                                    "augment": list(spec.augment), "temperature": spec.temperature,
                                    "columns": {str(seed): view_label_column(seed) for seed in views}}
        _write_stage(Path(root) / out / f"stage-{s:02d}", np.concatenate([x for x, _ in previous]),
                     np.concatenate([y for _, y in previous]), m, extra,
                     np.concatenate(soft) if cfg.soft else None,
                     {view_label_column(seed): (np.concatenate(parts), spec.source()) for seed, parts in views.items()})
        status.stages_done = s
        status.stage_datasets.append(stage_dataset(out, s))
        if on_stage is not None:
            on_stage(s, cpu)
    status.state, status.step = "done", status.steps_total
    return status


class DistillJobs:
    """Distillations of one store root, run one at a time on a worker thread."""

    def __init__(self, root: str | os.PathLike, *, workers: int = 1):
        self.root = Path(root)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nessa-distill")
        self._lock = threading.Lock()
        self._jobs: dict[str, DistillStatus] = {}

    def start(self, store, source: str, out: str, cfg: DistillConfig) -> DistillStatus:
        """Start (or resume, or find running) the distillation ``out``; checks everything first
        (DistillError for bad options) and returns at once."""
        out = check_out_name(out)
        m = store.manifest
        check_images(source, m.sample_shape, m.class_counts, cfg)
        with self._lock:
            job = self._jobs.get(out)
            if job is not None and job.state == "running":
                if (job.source, job.method, job.ipc, job.seed, job.stages, job.labels, job.view_epochs) != (
                        source, cfg.method.value, cfg.ipc, cfg.seed, cfg.stages, cfg.labels.value, cfg.view_epochs):
                    raise DistillError(f"--out: {out!r} is being distilled with other options right now")
                return replace(job, stage_datasets=list(job.stage_datasets))
            done = finished_stages(self.root, out, source, m, cfg)
            job = DistillStatus(out, source, cfg.method.value, cfg.stages, cfg.ipc, cfg.seed, cfg.iterations, "running",
                                len(done), len(done) * cfg.iterations, cfg.stages * cfg.iterations,
                                [stage_dataset(out, s + 1) for s in range(len(done))], resumed_from=len(done),
                                labels=cfg.labels.value, view_epochs=cfg.view_epochs)
            self._jobs[out] = job
        self._pool.submit(self._run, job, store, source, out, cfg)
        return replace(job, stage_datasets=list(job.stage_datasets))

    def _run(self, job: DistillStatus, store, source: str, out: str, cfg: DistillConfig) -> None:
        def progress(stage: int, step: int) -> None:
            job.step = (stage - 1) * cfg.iterations + step

        def on_stage(stage: int, cpu: float) -> None:
            with self._lock:
                job.stages_done = stage
                job.stage_datasets.append(stage_dataset(out, stage))
                job.cpu_s += cpu

        try:
            final = run_distillation(store, source, self.root, out, cfg, progress=progress, on_stage=on_stage)
            with self._lock:
                job.cpu_s, job.step, job.state = final.cpu_s, final.steps_total, "done"
        except BaseException as exc:  # noqa: BLE001 - reported through GetDistillation
            with self._lock:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def status(self, out: str) -> DistillStatus:
        """A running (or this process's finished) job's status, else what the disk says: done
        when every stage asked for is there, stopped when some are missing. KeyError if none."""
        out = check_out_name(out)
        with self._lock:
            job = self._jobs.get(out)
            if job is not None:
                return replace(job, stage_datasets=list(job.stage_datasets))
        stages = []
        while True:
            path = self.root / out / f"stage-{len(stages) + 1:02d}"
            try:
                stages.append(Manifest.load(path).extra.get("distill") or {})
            except ManifestError:
                break
        if not stages or stages[-1].get("format") != FORMAT:
            raise KeyError(out)
        last = stages[-1]
        conf = last.get("config") or {}
        iters = int(conf.get("iterations", 0))
        asked = max(int(last.get("stages", len(stages))), len(stages))
        return DistillStatus(out, last.get("source", ""), last.get("method", ""), asked, int(last.get("ipc", 0)),
                             int(last.get("seed", 0)), iters, "done" if len(stages) >= asked else "stopped", len(stages),
                             len(stages) * iters, asked * iters, [stage_dataset(out, s + 1) for s in range(len(stages))],
                             float(last.get("cpu_s_total", 0.0)), labels=str(last.get("labels", "hard")),
                             view_epochs=int((last.get("view_labels") or {}).get("epochs", 0)))

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
