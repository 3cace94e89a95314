"""Data-efficient augmentation on Fashion-MNIST, paired seeds: which examples are worth augmenting?

    python bench/augment_study.py [--seeds 3] [--epochs 8] [--train-size 20000] [--fractions 0.1,0.3]
                                  [--kinds coreset,random,max-loss,coreset-sub,random-sub]
                                  [--augment crop,cutout,randaugment] [--main-aug crop,flip]
                                  [--val] [--write BENCHMARKS.md]

Arms (all the same epochs, batch size, schedule and initialisation per seed):

* ``none``: the training data as streamed, no augmentation (``weak`` with ``--main-aug``: every
  row augmented in place by the weak transforms, the reference code's plain training);
* ``inplace-aug``: every batch replaced by its augmentation (the usual recipe; not with ``--main-aug``);
* ``full-aug``: full data augmentation as the paper counts it: every batch plus an augmented copy
  of each of its rows (``--augment-subset selected``), twice the rows of ``none``;
* ``KIND@F``: the streamed batches plus augmented copies of an F-per-class subset the storage
  service picks every ``--every`` epochs next to the data (``nessa train --augment-subset``):
  ``coreset`` (CRAIG on gradient proxies of the non-augmented data, Liu & Mirzasoleiman 2022),
  ``random``, ``max-loss``; the same SGD steps as ``none``, larger batches;
* ``KIND-sub@F``: the reference code's ``--subset_main_dataset --enable_subset_augment`` (its
  README's example): train on an F subset *and* augmented copies of it, the subset re-picked every
  ``--every`` epochs by the storage service (``--strategy craig|random --fraction F
  --augment-subset selected``): ``coreset-sub`` (CRAIG, its weights on the subset's rows, copies
  weight 1, as the reference), ``random-sub``, ``pa-nw-sub`` (NeSSA's partition mode: every
  mini-batch a facility-location coreset of a fresh 640-example pool, weights off); F of the SGD
  steps, 2F of ``full-aug``'s rows (``--sub-epochs`` gives these arms a longer schedule).

With ``--main-aug`` (the reference's weak crop + flip) the streamed rows of every arm are
augmented in place by those transforms and the copies get them plus ``--augment`` (the
reference's strong policy is its weak one plus AutoAugment).

The training set is a stratified ``--train-size`` sample of Fashion-MNIST's 60,000 (this is a
2-core machine); ``--val`` trains on it minus nothing but reports accuracy on a 5,000-example
validation split carved from the rest of train (for choosing options), otherwise the test set.
Trainer compute is the trainer's CPU seconds (evaluation excluded). The storage service runs in
its own process. Each run is appended to ``WORK/results.jsonl``; a re-run skips what is there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._markdown import replace_section  # noqa: E402
from bench._tta_stats import mean_ci, paired  # noqa: E402

SECTION = "## Data-efficient augmentation (Fashion-MNIST, paired seeds)"


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "augment")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--fractions", default="0.1,0.3")
    p.add_argument("--kinds", default="coreset,random,max-loss")
    p.add_argument("--augment", default="crop,cutout,randaugment")
    p.add_argument("--main-aug", default="", help="weak transforms of every streamed row (the reference's crop,flip)")
    p.add_argument("--every", type=int, default=2, help="epochs between subset picks (R)")
    p.add_argument("--sub-epochs", type=int, default=0,
                   help="epochs of the KIND-sub arms (default --epochs): a longer schedule on the subset that "
                        "still costs 2 x F x sub-epochs rows against full-aug's 2 x epochs")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--val", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--only", default="", help="comma list of arm labels to run (e.g. full-aug,coreset-sub@0.3): "
                   "split one study over processes sharing --work")
    p.add_argument("--write", type=Path, help="replace this file's section with the table")
    p.add_argument("--section", default=SECTION, help="the BENCHMARKS.md heading --write replaces")
    return p.parse_args(argv)


def _prepare(args) -> Path:
    import numpy as np

    from storage_service.ingest import ingest, write_store
    from storage_service.ingest.idx import FASHION_MNIST_CLASSES
    from storage_service.ingest.locate import find_fashion_mnist
    from storage_service.store import Store

    root = args.work / "store"
    if not (root / "fm" / "train" / "manifest.json").exists():
        data, looked = find_fashion_mnist(None)
        if data is None:
            raise SystemExit(f"Fashion-MNIST not found (looked in {', '.join(looked)})")
        ingest(data, root / "fm", overwrite=True, progress=False)
    name = f"fm/sub{args.train_size}"
    if not (root / name / "manifest.json").exists():
        train = Store(root / "fm" / "train")
        x, y = train.take(np.arange(len(train)))
        rng = np.random.default_rng(2024)
        per = args.train_size // 10
        fit, val = [], []
        for c in range(10):
            members = rng.permutation(np.flatnonzero(y == c))
            fit.append(members[:per])
            val.append(members[per : per + 500])
        fit, val = np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))
        names = list(FASHION_MNIST_CLASSES)
        write_store(root / name, x[fit], y[fit], name=name, class_names=names)
        write_store(root / f"{name}-val", x[val], y[val], name=f"{name}-val", class_names=names)
    return root


def _arms(args) -> list[tuple[str, float]]:
    arms = [("weak", 1.0)] if args.main_aug else [("none", 1.0), ("inplace-aug", 1.0)]
    arms.append(("full-aug", 1.0))
    for f in (float(v) for v in args.fractions.split(",")):
        arms += [(k.strip(), f) for k in args.kinds.split(",") if k.strip()]
    return arms


def _config(args, arm: str, fraction: float, seed: int, target: str):
    from trainer.config import TrainConfig

    name = f"fm/sub{args.train_size}"
    kw = dict(servers=(target,), dataset=name, test_dataset=f"{name}-val" if args.val else "fm/test", strategy="full",
              epochs=args.epochs, lr=args.lr, lr_warmup=0.3, seed=seed, threads=args.threads, progress=False,
              run_name=arm if arm in ("none", "weak", "inplace-aug", "full-aug") else f"{arm}@{fraction:g}")
    # the copies' (strong) transforms: the weak ones and --augment, as the reference composes them
    strong = ",".join(dict.fromkeys(t for t in f"{args.main_aug},{args.augment}".split(",") if t))
    copies = dict(augment=strong, augment_main=args.main_aug)
    if arm == "weak":
        kw.update(augment=args.main_aug)
    elif arm == "inplace-aug":
        kw.update(augment=args.augment)
    elif arm == "full-aug":
        kw.update(augment_subset="selected", **copies)
    elif arm.endswith("-sub"):
        if args.sub_epochs:
            kw.update(epochs=args.sub_epochs, run_name=f"{arm}@{fraction:g}/{args.sub_epochs}ep")
        if arm == "pa-nw-sub":  # NeSSA's mini-batch coresets (weights off, 640-pools: the TTA study's best rule)
            kw.update(use_weights=False, pool_size=640)
        kw.update(strategy={"coreset-sub": "craig", "random-sub": "random", "pa-nw-sub": "nessa-pa"}[arm],
                  fraction=fraction, reselect_every=args.every, augment_subset="selected", **copies)
    elif arm != "none":
        kw.update(augment_subset=f"{arm}:{fraction:g}", augment_every=args.every, **copies)
    return TrainConfig(**kw)


def _table(runs: list[dict], args) -> str:
    by: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in runs:
        by[r["label"]][r["seed"]] = r["final"]
    acc = {k: {s: 100 * f["test_acc"] for s, f in v.items()} for k, v in by.items()}
    cpu = {k: {s: f["cpu_s"] for s, f in v.items()} for k, v in by.items()}
    base = "weak" if "weak" in by else "none"  # the arm without copies
    rows = [f"| arm | accuracy % | vs full-aug (paired) | vs random (same F, paired) | vs {base} (paired) | trainer CPU s "
            "| full-aug CPU / arm CPU | MB received |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def fmt(m, h, n=None):
        return f"{m:+.2f} ± {h:.2f}" if n is None or n > 1 else f"{m:+.2f}"

    order = [base, "inplace-aug", "full-aug"] + sorted((k for k in by if "@" in k),
                                                           key=lambda k: (float(k.split("@")[1].split("/")[0]), k))
    for label in order:
        if label not in by:
            continue
        m, h = mean_ci(list(acc[label].values()))
        c, ch = mean_ci(list(cpu[label].values()))
        vs_full = fmt(*paired(acc[label], acc["full-aug"])) if "full-aug" in acc and label != "full-aug" else "—"
        kind, _, frac = label.partition("@")
        rnd = f"{'random-sub' if kind.endswith('-sub') else 'random'}@{frac}" if frac else None
        vs_rnd = fmt(*paired(acc[label], acc[rnd])) if rnd and rnd in acc and rnd != label else "—"
        vs_none = fmt(*paired(acc[label], acc[base])) if base in acc and label != base else "—"
        ratio = (mean_ci(list(cpu["full-aug"].values()))[0] / c) if "full-aug" in cpu else float("nan")
        mb = mean_ci([f["bytes_received"] / 1e6 for f in by[label].values()])[0]
        rows.append(f"| {label} | {m:.2f} ± {h:.2f} | {vs_full} | {vs_rnd} | {vs_none} | {c:.0f} ± {ch:.0f} | {ratio:.2f}× | {mb:.1f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    args = _parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = args.work / ("results-val.jsonl" if args.val else "results.jsonl")
    if not args.report_only:
        import torch

        from bench.tta import _Service
        from trainer.loop import train

        torch.set_num_threads(args.threads)
        root = _prepare(args)
        done = set()
        if results.exists():
            done = {json.loads(line)["key"] for line in results.read_text().splitlines() if line.strip()}
        service = _Service(root, pin=False)
        try:
            for seed in range(args.seeds):  # seed-major: an interrupted run leaves complete paired sets
                for arm, fraction in _arms(args):
                    cfg = _config(args, arm, fraction, seed, service.target)
                    if args.only and cfg.label not in args.only.split(","):
                        continue
                    key = json.dumps([cfg.label, seed, args.epochs, args.train_size, args.augment, args.every, args.val]
                                     + ([args.main_aug] if args.main_aug else []))
                    if key in done:
                        continue
                    t0 = time.perf_counter()
                    curve = train(cfg).records
                    f = curve[-1]
                    print(f"{cfg.label} seed {seed}: acc {100 * f['test_acc']:.2f}%, trainer cpu {f['cpu_s']:.0f}s "
                          f"({time.perf_counter() - t0:.0f}s)", flush=True)
                    with results.open("a") as fh:
                        fh.write(json.dumps({"key": key, "label": cfg.label, "seed": seed, "final": f}) + "\n")
        finally:
            service.close()
    runs = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    seeds = sorted({r["seed"] for r in runs})
    cmd = "python bench/augment_study.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n".join([
        args.section, "",
        f"`{cmd.strip()}` — {'validation split' if args.val else 'test set'}; Fashion-MNIST, a stratified "
        f"{args.train_size:,}-example training set, small CNN, {args.epochs} epochs for every arm (same steps), "
        f"SGD (momentum 0.9, nesterov, cosine, lr {args.lr:g}, 0.3 epoch warm-up, batch 128); augmentation "
        f"`{args.augment}`; subsets picked every {args.every} epochs by the storage service; seeds "
        f"{seeds[0]}..{seeds[-1]} paired. Mean ± 95 % t interval over seeds; trainer CPU excludes evaluation.",
        "", _table(runs, args), ""])
    print(text)
    if args.write:
        replace_section(args.write, args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
