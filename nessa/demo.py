"""``nessa demo``: the whole loop on one machine in a few minutes.

    --data DIR: any layout ``nessa ingest`` reads that has a training and an evaluation split
      (Fashion-MNIST / MNIST IDX, CIFAR-10/100 binary or python, SVHN .mat, CINIC-10, TinyImageNet,
      ImageNet-100), in DIR or in its only such sub-folder (where an archive unpacks to);
    else find Fashion-MNIST ($NESSA_DATA, /usr/share/datasets/fashion-mnist, ../shared/data/fashion-mnist)
      (none found: say so, use scikit-learn's digits)
    -> ingest into a work folder (evaluation split: test, else val, else valid)
    -> the model follows the image size: small CNN up to 28x28, ResNet-20 up to 32x32, ResNet-18 above -> start a storage service on a free loopback port (in-process)
    -> train full, random@F and the best strategy of bench/tta.py (WINNER) @F
    -> comparison table + time-to-accuracy line + metrics JSON lines + PNG plots

The subset runs are step-matched: ``subset_epochs`` (default 5, as many as the full run) epochs
of a ``fraction`` (default 0.3) per-class budget, i.e. 30 % of full's SGD steps, with the same
schedule, LR warm-up and seed; the selection run starts with a one-epoch warm start on a random
subset (bench/tta.py's protocol, whose table is in BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from storage_service.ingest.locate import DATA_ENV, DataNotFound, find_fashion_mnist
from storage_service.server import serve_local
from trainer.config import TrainConfig
from host.strategies import Strategy, parse_strategy

__all__ = ["DemoOptions", "DemoError", "prepare_store", "find_demo_data", "demo_arch", "run_demo", "format_table",
           "tta_line", "WINNER", "DEMO_KINDS"]

#: The strategy that won the time-to-accuracy benchmark (BENCHMARKS.md), as a bench arm: a
#: strategy name, "-nw" for coreset weights off.
WINNER = "nessa-pa-nw"


def _arm(name: str) -> tuple[Strategy, bool]:
    """``(strategy, use_weights)`` of an arm name such as ``nessa-pa-nw``."""
    return parse_strategy(name.removesuffix("-nw")), not name.endswith("-nw")



class DemoError(RuntimeError):
    """The demo cannot run as asked (message says why)."""


@dataclass
class DemoOptions:
    data: Path | None = None  # a data set folder (DEMO_KINDS; with quick too); None: search for Fashion-MNIST
    work_dir: Path | None = None  # None: a temporary folder, removed afterwards
    out_dir: Path = Path("nessa-demo")  # metrics, plots, table
    fraction: float = 0.3
    epochs: int = 5  # full-data run
    subset_epochs: int = 5  # the subset runs: step-matched at `fraction` of full's steps
    reselect_every: int = 1  # epoch-mode strategies (random, craig) reselect every epoch
    eval_every: int = 1  # every epoch: the time-to-accuracy line interpolates between evaluations
    lr_warmup: float = 0.25  # epochs of linear LR warm-up, every run alike
    batch_size: int = 128
    lr: float = 0.05
    quick: bool = False  # 1 epoch, on digits unless `data` names a folder: a smoke test of the whole path
    digits: bool = False  # use scikit-learn's digits even if Fashion-MNIST is there
    threads: int | None = 0  # 0: one thread on machines with <= 2 cores (the service shares them), else torch's default
    progress: bool = True
    strategies: Sequence[str] = ("full", "random", WINNER)
    log: Callable[[str], None] = field(default=print, repr=False)


#: Layouts the demo takes (``storage_service.ingest.SourceKind`` values): each ingests into
#: named splits, of which the demo needs ``train`` and one of ``_EVAL_SPLITS``.
DEMO_KINDS = ("idx", "cifar", "svhn", "cinic10", "tinyimagenet", "imagenet100")
_EVAL_SPLITS = ("test", "val", "valid")
_TITLES = {"svhn": "SVHN", "cinic10": "CINIC-10", "tinyimagenet": "TinyImageNet", "imagenet100": "ImageNet-100"}
_LOOKED_FOR = ("no Fashion-MNIST IDX files, CIFAR-10/100 batches, SVHN *_32x32.mat files, or CINIC-10 / "
               "TinyImageNet / ImageNet-100 folders")


def _demo_kind(folder: Path) -> str | None:
    from storage_service.ingest import IngestError, detect_kind
    from storage_service.ingest.idx import find_idx_pairs

    try:
        kind = detect_kind(folder).value
    except (IngestError, OSError):
        return None
    if kind == "idx" and not {"train", "test"} <= set(find_idx_pairs(folder)):
        return None  # the demo needs both splits
    return kind if kind in DEMO_KINDS else None


def find_demo_data(folder: Path | str) -> tuple[Path, str]:
    """``(data set folder, ingest kind)`` for ``--data folder``: the folder itself if it holds a
    layout of ``DEMO_KINDS``, else its only sub-folder that does (``tar xf cifar-10-python.tar.gz``
    makes ``cifar-10-batches-py`` below the folder it was run in). Raises DemoError otherwise."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DemoError(f"--data {folder}: no such folder ({_LOOKED_FOR} there)")
    kind = _demo_kind(folder)
    if kind is not None:
        return folder, kind
    found = [(sub, k) for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
             if (k := _demo_kind(sub)) is not None]
    if len(found) == 1:
        return found[0]
    if found:
        raise DemoError(f"--data {folder}: several data sets in it ({', '.join(str(p) for p, _ in found)}); name one")
    raise DemoError(f"--data {folder}: {_LOOKED_FOR} in it or in a sub-folder")


def demo_arch(sample_shape: Sequence[int]) -> str:
    """The demo's model for samples of ``sample_shape``: small_cnn up to 28x28, resnet20 up to 32x32,
    resnet18 above (TinyImageNet, ImageNet-100)."""
    from host.models import input_chw

    _, h, w = input_chw(sample_shape)
    side = max(h, w)
    return "small_cnn" if side <= 28 else "resnet20" if side <= 32 else "resnet18"


def prepare_store(root: Path, data: Path | None, *, progress: bool = True) -> tuple[str, str, str]:
    """Ingest the data set in ``data`` (see :func:`find_demo_data`; digits when None) under ``root``.

    Returns (title, training data set name, test data set name) as the server will name them.
    """
    from storage_service.ingest import IngestError, ingest, write_store

    if data is not None:
        data, kind = find_demo_data(data)
        fashion = kind == "idx" and "fashion" in str(data.resolve()).lower()
        slug = "fashion-mnist" if fashion else "mnist" if kind == "idx" else kind
        try:
            made = ingest(data, root / slug, kind=kind, progress=progress)
        except IngestError as exc:
            raise DemoError(f"--data {data}: {exc}") from None
        evals = [s for s in _EVAL_SPLITS if s in made]
        if "train" not in made or not evals:
            raise DemoError(f"--data {data}: the demo needs a training and a test (or val) split; "
                            f"{data} has {', '.join(sorted(made))}")
        if kind == "cifar":
            title = f"CIFAR-{made['train'].num_classes}"
        elif kind == "idx":
            title = "Fashion-MNIST" if fashion else f"IDX data ({data.name})"
        else:
            title = _TITLES[kind]
        return title, f"{slug}/train", f"{slug}/{evals[0]}"
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.clip(digits.images * 16.0, 0, 255).astype(np.uint8)  # 0..16 grey levels -> uint8
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test_mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):  # stratified 80/20 split
        ids = rng.permutation(np.flatnonzero(y == c))
        test_mask[ids[: len(ids) // 5]] = True
    names = [str(i) for i in range(10)]
    write_store(root / "digits" / "train", x[~test_mask], y[~test_mask], name="digits/train", class_names=names)
    write_store(root / "digits" / "test", x[test_mask], y[test_mask], name="digits/test", class_names=names)
    return "scikit-learn digits", "digits/train", "digits/test"


def format_table(results: Sequence[dict], *, baseline: str = "full") -> str:
    """Markdown table of each run's final accuracy, wall time and bytes received."""
    base = next((r for r in results if r["run"] == baseline), None)
    lines = ["| run | epochs | test acc (%) | wall time (s) | CPU time (s) | selection (s) | bytes received (MB) "
             "| wall vs full | bytes vs full |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        t_ratio = f"{r['wall_s'] / base['wall_s']:.2f}x" if base else "-"
        b_ratio = f"{r['bytes_received'] / base['bytes_received']:.3f}x" if base else "-"
        lines.append(f"| {r['run']} | {r['epoch']} | {100 * r['test_acc']:.2f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['selection_s']:.1f} | {r['bytes_received'] / 1e6:.1f} | {t_ratio} | {b_ratio} |")
    return "\n".join(lines)


def tta_line(records: dict[str, list[dict]], label: str, points: float = 1.0) -> str:
    """How long ``label`` took to reach full's final accuracy minus ``points``, against full."""
    from trainer.metrics import time_to_accuracy

    target = records["full"][-1]["test_acc"] - points / 100
    mine = time_to_accuracy(records[label], target, "wall_s")
    theirs = time_to_accuracy(records["full"], target, "wall_s")
    head = f"time to full−{points:g} ({100 * target:.2f}%): {label}"
    if mine == float("inf"):
        best = max((r["test_acc"] or 0.0) for r in records[label])
        return f"{head} did not reach it within its budget (best {100 * best:.2f}%); full took {theirs:.1f} s"
    return f"{head} {mine:.1f} s vs full {theirs:.1f} s ({theirs / max(mine, 1e-9):.1f}x less, wall time)"


def run_demo(opts: DemoOptions) -> dict:
    """Run the demo; returns {"table", "results", "records", "plots", "dataset", "seconds"}."""
    t0 = time.perf_counter()
    log = opts.log
    data = None
    if opts.data is not None and not opts.digits:
        data = find_demo_data(opts.data)[0]  # fail now, before anything is trained
    elif not (opts.quick or opts.digits):
        try:
            data, looked = find_fashion_mnist(None)
        except DataNotFound as exc:
            raise DemoError(str(exc)) from None
        if data is None:
            log(f"Fashion-MNIST not found (looked in {', '.join(looked)}; set --data or ${DATA_ENV}, "
                f"or install the Debian package dataset-fashion-mnist); using scikit-learn's digits instead.")
    if opts.threads == 0:
        opts = dataclasses.replace(opts, threads=1 if (os.cpu_count() or 1) <= 2 else None)
    epochs = 1 if opts.quick else opts.epochs
    subset_epochs = 1 if opts.quick else opts.subset_epochs
    for name in opts.strategies:  # bad options fail now, not after the ingest and the first runs
        strategy, weights = _arm(name)
        TrainConfig(servers=("127.0.0.1:1",), dataset="check", strategy=strategy, fraction=opts.fraction,
                    epochs=epochs if strategy is Strategy.FULL else subset_epochs, use_weights=weights,
                    reselect_every=opts.reselect_every, batch_size=opts.batch_size, lr=opts.lr,
                    lr_warmup=opts.lr_warmup, eval_every=1 if opts.quick else opts.eval_every, threads=opts.threads)
    own_work = opts.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="nessa-demo-")) if own_work else Path(opts.work_dir)
    out = Path(opts.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"--out-dir {out}: cannot create it: {exc.strerror}") from None
    try:
        root = work / "store"
        if root.exists():
            shutil.rmtree(root)
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            raise DemoError(f"--work-dir {work}: cannot create {root}: {exc.strerror}") from None
        log(f"ingesting {data if data else 'scikit-learn digits'} into {root}")
        title, train_name, test_name = prepare_store(root, data, progress=opts.progress)
        from storage_service.store import Store

        train_store = Store(root / train_name)
        shape, n_train = train_store.manifest.sample_shape, len(train_store)
        arch = demo_arch(shape)
        if n_train < 4 * opts.batch_size:  # a tiny data set: a few steps per epoch (and batches the server accepts)
            small = min(n_train, max(8, n_train // 4))
            log(f"batch size {small} instead of {opts.batch_size}: the training split has only {n_train} samples")
            opts = dataclasses.replace(opts, batch_size=small)
        with serve_local(root) as target:
            return _compare(opts, log, title, train_name, test_name, target, epochs, subset_epochs, out, t0, arch,
                            shape)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


def _compare(opts: DemoOptions, log: Callable[[str], None], title: str, train_name: str, test_name: str,
             target: str, epochs: int, subset_epochs: int, out: Path, t0: float, arch: str,
             shape: Sequence[int]) -> dict:
    from trainer.loop import train
    from trainer.plots import plot_runs

    log(f"storage service on {target}: training {', '.join(opts.strategies)} on {title} "
        f"(subsets: {opts.fraction:g} of each class; model {arch} for samples of shape {list(shape)})")
    records: dict[str, list[dict]] = {}
    for name in opts.strategies:
        strategy, weights = _arm(name)
        full = strategy is Strategy.FULL
        cfg = TrainConfig(servers=(target,), dataset=train_name, test_dataset=test_name, strategy=strategy,
                          fraction=opts.fraction, epochs=epochs if full else subset_epochs, use_weights=weights,
                          arch=arch, run_name=None if full else f"{name}@{opts.fraction:g}",
                          reselect_every=opts.reselect_every, batch_size=opts.batch_size, lr=opts.lr,
                          lr_warmup=opts.lr_warmup, eval_every=1 if opts.quick else opts.eval_every,
                          out_dir=out / name, progress=opts.progress, threads=opts.threads)
        records[cfg.label] = train(cfg).records
    finals = [recs[-1] for recs in records.values()]
    table = format_table(finals)
    (out / "table.md").write_text(f"{title}, fraction {opts.fraction:g}\n\n{table}\n")
    plots = plot_runs(records, out, title=f"{title}: {' vs '.join(opts.strategies)} @ {opts.fraction:g}")
    lines = ([tta_line(records, label, p) for label in records if label != "full" for p in (1.0, 2.0)]
             if "full" in records else [])
    log("")
    log(table)
    log("")
    for line in lines:
        log(line)
    if lines:
        (out / "table.md").write_text((out / "table.md").read_text() + "\n" + "\n".join(lines) + "\n")
        log("")
    log(f"metrics: {out}/<run>/metrics.jsonl; plots: {', '.join(str(p) for p in plots)}")
    return {"table": table, "results": finals, "records": records, "plots": plots, "dataset": title,
            "seconds": time.perf_counter() - t0}
