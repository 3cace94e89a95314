"""``nessa train --objective simclr|clip``: a contrastive run against a storage service.

1. The subset: ``--strategy full`` streams everything; ``random`` a seeded per-class random
   subset of ``--fraction``; ``sas`` / ``clipcov`` ask the service to select on embedding
   columns (``--embedding-column``, ``--text-embedding-column``, ``--latent-classes``) — no labels
   are used by the selection.
2. Training: step-matched (full data's ``epochs * (n // batch_size)`` optimizer steps whatever the
   subset), SimCLR (``trainer.contrastive``) or CLIP-style (``trainer.clip_train``, captions
   streamed with the ``text`` column).
3. Evaluation on ``--test-dataset``: SimCLR -> linear probe (logistic regression on frozen
   features of up to ``--probe-samples`` labelled training examples); CLIP -> zero-shot from
   ``--templates`` over the test set's class names.
4. One metrics record (trainer.metrics schema; ``test_acc`` is the probe / zero-shot accuracy)
   plus ``objective`` and ``eval`` keys, and the model pushed to the service when ``--push`` asks
   (so ``nessa embed`` can use it).
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import numpy as np
import torch

from host.models import input_chw

from .clip_train import ClipConfig, stream_batches, train_clip
from .config import ConfigError, Objective, TrainConfig
from .contrastive import SimCLRConfig, steps_for, train_simclr
from .metrics import MetricsWriter
from .probe import linear_probe, zero_shot
from .source import connect

__all__ = ["run_contrastive", "DEFAULT_TEMPLATES", "read_split"]

#: Zero-shot prompts when ``--templates`` is not given ("{}" is the class name).
DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a {}.")


def read_split(client: Any, dataset: str, *, limit: int = 0, seed: int = 0, batch_bytes: int = 1 << 20):
    """All (or the first ``limit`` in a seeded order) samples and labels of ``dataset``."""
    xs, ys, have = [], [], 0
    for part in client.stream_samples(dataset, selection="full", epoch=0, seed=seed, batch_bytes=batch_bytes):
        xs.append(np.array(part.samples))
        ys.append(np.array(part.labels))
        have += len(xs[-1])
        if limit and have >= limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
    return (x[:limit], y[:limit]) if limit else (x, y)


def _selection(client: Any, cfg: TrainConfig) -> tuple[str, float | None, float]:
    """-> (selection id to stream, fraction for 'random', storage seconds)."""
    name = cfg.strategy.value
    if name == "full":
        return "full", None, 0.0
    if name == "random":
        return "random", cfg.fraction, 0.0
    options = {"embedding_column": cfg.embedding_column}
    if cfg.text_embedding_column:
        options["text_embedding_column"] = cfg.text_embedding_column
    if cfg.latent_classes:
        options["latent_classes"] = cfg.latent_classes
    info = client.select(cfg.dataset, name, cfg.fraction, seed=cfg.seed, model_version=None,
                         backend=cfg.backend or "cpu", **options)
    return info.id, None, float(getattr(info, "seconds", 0.0))


def run_contrastive(cfg: TrainConfig, *, client: Any = None) -> dict:
    """Run the configured contrastive objective (module docs); -> the metrics record."""
    if cfg.objective is Objective.SUPERVISED:
        raise ConfigError("--objective: run_contrastive needs simclr or clip")
    if len(cfg.servers) != 1:
        raise ConfigError("--server: contrastive objectives stream from one storage service")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    own = client is None
    if own:
        client = connect(cfg.servers[0], token=cfg.token, tls_ca=cfg.tls_ca, timeout=cfg.timeout,
                         stream_idle_timeout=cfg.stream_idle_timeout)
    try:
        return _run(cfg, client)
    finally:
        if own and hasattr(client, "close"):
            client.close()


def _run(cfg: TrainConfig, client: Any) -> dict:
    info = client.get_dataset(cfg.dataset)
    shape, clip = tuple(info.sample_shape), cfg.objective is Objective.CLIP
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else ("cpu" if cfg.device == "auto" else cfg.device)
    steps = steps_for(info.num_samples, cfg.batch_size, cfg.epochs)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
    t0, c0 = time.perf_counter(), time.process_time()
    selection, fraction, storage_s = _selection(client, cfg)
    sel_s = time.perf_counter() - t0
    batches = stream_batches(client, cfg.dataset, selection=selection, seed=cfg.seed, batch_size=cfg.batch_size,
                             fraction=fraction, captions=clip)
    lr = cfg.lr  # the CLI's default follows the objective (nessa/_cli_train.py)
    # Augmentation strength follows the image side (28 px: crop padding 4, cutout 8, as for
    # Fashion-MNIST; 8 px digits: 1 and 2): a fixed 4 px shift would wipe out an 8 px image.
    side = min(input_chw(shape)[1:])
    if clip:
        model, out = train_clip(batches, shape, ClipConfig(steps=steps, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
                                                           crop_padding=side // 14, device=device),
                                num_classes=max(2, info.num_classes))
    else:
        model, out = train_simclr(batches, shape, SimCLRConfig(steps=steps, batch_size=cfg.batch_size, lr=lr, seed=cfg.seed,
                                                               temperature=cfg.temperature, crop_padding=side // 7,
                                                               cutout=2 * side // 7, device=device),
                                  num_classes=max(2, info.num_classes))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    acc, e0 = None, time.perf_counter()
    if cfg.test_dataset:
        tx, ty = read_split(client, cfg.test_dataset, batch_bytes=cfg.batch_bytes)
        if clip:
            names = client.get_dataset(cfg.test_dataset).class_names or info.class_names
            acc = zero_shot(model, tx, ty, shape, names, cfg.templates or DEFAULT_TEMPLATES, device=device)
        else:
            px, py = read_split(client, cfg.dataset, limit=cfg.probe_samples, seed=cfg.seed, batch_bytes=cfg.batch_bytes)
            acc = linear_probe(model, px, py, tx, ty, shape, device=device)
    pushed = None
    if cfg.push:
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        pushed = client.push_model("clip_cnn" if clip else "simclr_cnn", save(state), cfg.push, dataset=cfg.dataset).version
    record = {
        "run": cfg.label, "strategy": cfg.strategy.value, "fraction": cfg.fraction, "epoch": out["epochs"],
        "lr": lr, "train_loss": float(np.mean(out["losses"][-max(1, len(out["losses"]) // 10):])),
        "test_loss": None, "test_acc": acc, "wall_s": wall, "cpu_s": cpu, "selection_s": sel_s,
        "storage_s": storage_s, "forwarded": 0, "eval_s": time.perf_counter() - e0, "bytes_received": None,
        "eval_bytes": None, "model_bytes": None, "samples_seen": steps * cfg.batch_size, "num_selected": None,
        "selection": selection, "objective": cfg.objective.value, "steps": steps,
        "eval": "zero_shot" if clip else "linear_probe", "pushed_version": pushed,
    }
    out_path = None if cfg.out_dir is None else os.path.join(cfg.out_dir, "metrics.jsonl")
    MetricsWriter(out_path).write(record)
    if cfg.out_dir is not None:
        buf = io.BytesIO()
        torch.save({"arch": "clip_cnn" if clip else "simclr_cnn", "state": model.state_dict(), "config": cfg.summary()}, buf)
        tmp = os.path.join(cfg.out_dir, "model.pt.tmp")
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(cfg.out_dir, "model.pt"))
    return record
