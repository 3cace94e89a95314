"""Time-to-accuracy benchmark: does selection pay? Fashion-MNIST, small CNN, paired seeds.

    python bench/tta.py [--seeds 5] [--full-epochs 5] [--budgets 0.1,0.3]
                        [--arms random,craig,craig-nw,nessa-pa,crest,nessa-ss] [--val] [--write BENCHMARKS.md]

Protocol (DESIGN.md, "Measuring whether selection pays"):

* full data for E epochs; every other arm at budget b trains E epochs of a b-per-class subset,
  i.e. b of full's SGD steps (step-matched: random, craig, nessa-ss stream ceil(b n_c) per class
  per epoch; nessa-pa and crest take as many mini-batch steps);
* the same initialisation, schedule (cosine over the run's epochs, linear LR warm-up), warm
  start (the first ``--warm-start`` epochs of every subset arm train on a fresh random subset of
  the same budget) and pool RNG for every arm of a seed (paired seeds);
* ``--val`` carves a stratified validation split (5,000 examples) from the training set, trains
  on the rest and reports validation accuracy: hyper-parameters are chosen in that mode, never on
  the test set; without it, training uses the whole training set and reports test accuracy;
* the storage service runs in its own process pinned to CPU 1, the trainer in this one pinned to
  CPU 0, torch with one thread: trainer CPU seconds (training only; evaluation excluded) and the
  storage host's seconds per selection (features + greedy, what a SmartSSD would spend) are clean.

Each finished run is appended to ``WORK/results.jsonl`` (a re-run skips runs already there, so an
interrupted benchmark resumes); the table, the goals and the accuracy-vs-compute plot are made
from that file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECTION = "## Time to accuracy (Fashion-MNIST, paired seeds)"
#: Subset arms: a strategy name, with "-nw" for the same strategy with coreset weights off.
ARMS = ("random", "craig", "craig-nw", "nessa-pa", "nessa-pa-nw", "crest", "crest-nw", "nessa-ss", "adacore", "adacore-nw",
        "adacore-pa", "adacore-pa-nw", "max-loss")


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="Fashion-MNIST folder (default: the demo's search)")
    p.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "tta", help="store, results, plots")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--full-epochs", type=int, default=5)
    p.add_argument("--budgets", default="0.1,0.3", help="fractions of full's SGD steps")
    p.add_argument("--arms", default=",".join(ARMS), help=f"subset arms, from {', '.join(ARMS)} (-nw: weights off)")
    p.add_argument("--no-full", action="store_true", help="skip the full-data runs (they must exist in results)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--lr-warmup", type=float, default=0.3, help="epochs of linear LR warm-up (every arm)")
    p.add_argument("--warm-start", type=int, default=1, help="leading random-subset epochs of every subset arm")
    p.add_argument("--minibatches", type=int, default=5)
    p.add_argument("--pool-size", type=int, default=0, help="nessa-pa / crest pool (0: the server's default)")
    p.add_argument("--tau", type=float, default=0.1)
    p.add_argument("--max-hold", type=int, default=100)
    p.add_argument("--drop-threshold", type=float, default=0.05, help="crest and nessa-ss")
    p.add_argument("--watch", type=int, default=3)
    p.add_argument("--tag", default="", help="suffix for the arms' names in the results (e.g. 'hold5' for a "
                   "variant run with other options), so variants stay apart in the table")
    p.add_argument("--val", action="store_true", help="tune: train on train minus a validation split, report on it")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-pin", action="store_true", help="do not pin the service and trainer to CPUs 1 and 0")
    p.add_argument("--report-only", action="store_true", help="make the table from WORK/results.jsonl and exit")
    p.add_argument("--write", type=Path, help="replace this file's time-to-accuracy section with the table")
    return p.parse_args(argv)


def _prepare(args) -> Path:
    """The store under WORK/store: fashion-mnist/{train,test}, and with --val fashion-mnist/{fit,val}."""
    import numpy as np

    from storage_service.ingest import ingest, write_store
    from storage_service.ingest.idx import FASHION_MNIST_CLASSES
    from storage_service.ingest.locate import find_fashion_mnist
    from storage_service.store import Store

    root = args.work / "store"
    if not (root / "fashion-mnist" / "train" / "manifest.json").exists():
        data, looked = find_fashion_mnist(args.data)
        if data is None:
            raise SystemExit(f"Fashion-MNIST not found (looked in {', '.join(looked)})")
        ingest(data, root / "fashion-mnist", overwrite=True, progress=False)
    if args.val and not (root / "fashion-mnist" / "val" / "manifest.json").exists():
        train = Store(root / "fashion-mnist" / "train")
        x, y = train.take(np.arange(len(train)))
        rng = np.random.default_rng(12345)
        val = np.zeros(len(y), bool)
        for c in np.unique(y):  # stratified: 500 per class
            val[rng.choice(np.flatnonzero(y == c), 500, replace=False)] = True
        names = list(FASHION_MNIST_CLASSES)
        write_store(root / "fashion-mnist" / "fit", x[~val], y[~val], name="fashion-mnist/fit", class_names=names)
        write_store(root / "fashion-mnist" / "val", x[val], y[val], name="fashion-mnist/val", class_names=names)
    return root


class _Service:
    """``nessa serve`` in its own process (pinned to CPU 1 unless --no-pin): HOST:PORT in ``target``."""

    def __init__(self, root: Path, pin: bool):
        pre = (lambda: os.sched_setaffinity(0, {1})) if pin else None
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen([sys.executable, "-m", "nessa", "serve", str(root), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     preexec_fn=pre)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (\S+):(\d+)", line)
        if not m:
            self.proc.kill()
            raise SystemExit(f"nessa serve did not start: {line!r}")
        self.target = f"{m.group(1)}:{m.group(2)}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _plan(args) -> list[tuple[str, float, int]]:
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise SystemExit(f"--arms: unknown {', '.join(bad)}; choose from {', '.join(ARMS)}")
    budgets = [float(b) for b in args.budgets.split(",")]
    plan = [] if args.no_full else [("full", 1.0, s) for s in seeds]
    # Seed-major: an interrupted run still leaves complete paired sets.
    for s in seeds:
        plan += [(a, b, s) for b in budgets for a in sorted(arms, key=lambda x: x != "random")]  # random first
    return plan


def _config(args, arm: str, budget: float, seed: int, target: str):
    from trainer.config import TrainConfig

    train, test = ("fashion-mnist/fit", "fashion-mnist/val") if args.val else ("fashion-mnist/train", "fashion-mnist/test")
    strategy = arm.removesuffix("-nw")
    kw = dict(servers=(target,), dataset=train, test_dataset=test, strategy=strategy, fraction=budget,
              epochs=args.full_epochs, lr=args.lr, lr_warmup=args.lr_warmup, seed=seed, threads=args.threads,
              progress=False, eval_every=1, use_weights=not arm.endswith("-nw"), run_name=arm)
    if arm != "full":
        kw.update(warm_start=args.warm_start, minibatches=args.minibatches, pool_size=args.pool_size, tau=args.tau,
                  max_hold=args.max_hold, watch=args.watch,
                  drop_threshold=args.drop_threshold if strategy in ("crest", "nessa-ss") else 0.0)
    return TrainConfig(**kw)


def _key(cfg, arm: str, budget: float) -> str:
    doc = {k: v for k, v in cfg.summary().items() if k not in ("servers", "progress", "run_name", "out_dir")}
    return hashlib.sha256(json.dumps([arm, budget, doc], sort_keys=True, default=str).encode()).hexdigest()[:16]


def main(argv=None) -> int:
    args = _parse(argv)
    from bench import _tta_stats as stats

    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / ("results-val.jsonl" if args.val else "results.jsonl")
    if not args.report_only:
        if not args.no_pin:
            os.sched_setaffinity(0, {0})
        import torch

        from trainer.loop import train

        torch.set_num_threads(args.threads)
        root = _prepare(args)
        done = set()
        if results_path.exists():
            done = {json.loads(line)["key"] for line in results_path.read_text().splitlines() if line.strip()}
        service = _Service(root, pin=not args.no_pin)
        try:
            for arm, budget, seed in _plan(args):
                cfg = _config(args, arm, budget, seed, service.target)
                if args.tag and arm != "full":
                    arm = f"{arm}/{args.tag}"
                key = _key(cfg, arm, budget)
                if key in done:
                    continue
                t0 = time.perf_counter()
                curve = train(cfg).records
                f = curve[-1]
                print(f"{arm}@{budget:g} seed {seed}: acc {100 * f['test_acc']:.2f}%, trainer cpu {f['cpu_s']:.1f}s, "
                      f"storage {f.get('storage_s', 0):.1f}s, wait {f['selection_s']:.2f}s "
                      f"({time.perf_counter() - t0:.0f}s)", flush=True)
                with results_path.open("a") as fh:
                    fh.write(json.dumps({"key": key, "arm": arm, "budget": budget, "seed": seed,
                                         "config": cfg.summary(), "curve": curve}) + "\n")
        finally:
            service.close()
    runs = [json.loads(line) for line in results_path.read_text().splitlines() if line.strip()]
    text_table, goals = stats.table(runs)
    budgets = sorted({r["budget"] for r in runs if r["arm"] != "full"})
    plots = [stats.plot(runs, args.work / f"accuracy_vs_trainer_cpu_{b:g}.png", budget=b,
                        title=f"Fashion-MNIST, small CNN: {b:g} of full's steps") for b in budgets]
    seeds = sorted({r["seed"] for r in runs})
    cmd = "python bench/tta.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n".join([
        SECTION, "",
        f"`{cmd.strip()}` — {'validation split (5,000 held out of train)' if args.val else 'test set'}; "
        f"small CNN, SGD (momentum 0.9, nesterov, cosine over each run's epochs, lr {args.lr:g}, linear warm-up "
        f"{args.lr_warmup:g} epoch, batch 128); full data {args.full_epochs} epochs; every subset arm "
        f"{args.full_epochs} epochs of its budget (step-matched), the first {args.warm_start} on a random subset; "
        f"seeds {seeds[0]}..{seeds[-1]} paired (same initialisation and pool RNG across arms). Service and trainer "
        f"{'pinned to CPUs 1 and 0' if not args.no_pin else 'unpinned'}, torch {args.threads} thread(s). "
        "Mean ± 95 % t interval over seeds; 'vs random' is the paired difference. Trainer CPU excludes "
        "evaluation; 'storage s per selection' is the storage host's time per selection (features + greedy), "
        "'per selection / full epoch' divides it by one full-data epoch of trainer CPU. "
        "Time to full−p: trainer CPU seconds until the run first reaches full's final accuracy minus p "
        "points (same seed), and full's own time to that accuracy divided by it.",
        "", text_table, "", *goals, "",
        "Plots (not committed): " + ", ".join(f"`{p.relative_to(REPO) if p.is_relative_to(REPO) else p}`" for p in plots),
        ""])
    print()
    print(text)
    if args.write:
        from bench._markdown import replace_section

        replace_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
