"""PDD vs the single-stage base method vs random vs herding, on Fashion-MNIST, paired seeds.

    nice -n 10 python bench/distill.py --seeds 0 1 2 --out bench/results/distill
    # or one process per seed (each one thread), then the table over all of them:
    for s in 0 1 2; do nice -n 10 python bench/distill.py --seeds $s --out bench/results/distill & done; wait
    python bench/distill.py --report --out bench/results/distill

Per seed, next to the data (in this process, one after the other, each timed in process CPU):
  * pdd      PDD over DM: ``--stages`` x ``--ipc`` images per class, ``--iterations`` matching
             steps per stage (``storage_service.distill_jobs.run_distillation``)
  * dm       DM in one stage at the same total IPC, with the same total matching steps
  * herding  ``stages * ipc`` real images per class chosen by herding
  * random   ``stages * ipc`` real images per class, uniformly (the service's random subset)
  * pdd-steps  the pdd set again, trained step-matched: enough epochs that its SGD steps equal the
             other arms' (its early unions are small, so epoch-matched pdd takes fewer steps)
  * dm-soft, pdd-soft  the dm and pdd distillations made with ``labels="soft"``: each image also
             carries a teacher's softmax(logits / 2) (a 32-wide ConvNet, 3 epochs on fm/train;
             ``host.distill.teacher``), and the trainer trains on those
  * random-soft  the control for them: ``method="random"`` (real images, no matching) with the
             same teacher's soft labels -- what the labels alone are worth
  * dm-views, random-views, pdd-views  the dm, random and pdd sets made with ``labels="views"``: the same teacher
             labels every view the trainer's ``--augment crop,flip`` draws with the arm's seed in each
             of ``--view-epochs`` epochs (``host.distill.views``); trained ``--view-epochs`` epochs
             with that augmentation, each view against its own label
  * random-aug  the fair control for them: the random 500 with class labels and the same
             augmentation and epochs
Then a storage service on a loopback port serves them and the trainer trains the small CNN on
each through it (``trainer.loop.train``, the same metrics as every other run): the same epochs,
schedule and seed for every arm; pdd spreads its epochs over the cumulative unions of its stages
(so it takes fewer SGD steps: its early unions are smaller). Reported: test accuracy (mean and
95 % t interval over seeds, paired differences), distillation CPU seconds, bytes the trainer
received for training, SGD steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._tta_stats import mean_ci, paired  # noqa: E402

ARMS = ("pdd", "pdd-steps", "dm", "herding", "random", "pdd-soft", "dm-soft", "random-soft", "dm-views",
        "random-views", "pdd-views", "random-aug")
#: Arms trained on a distillation's stages (``--strategy pdd``), soft labels where it has them.
_DISTILLED = ("pdd", "pdd-steps", "dm", "pdd-soft", "dm-soft", "random-soft", "dm-views", "random-views", "pdd-views")
#: Arms trained ``--view-epochs`` epochs with ``--augment crop,flip``.
_VIEWS = ("dm-views", "random-views", "pdd-views", "random-aug")
_AUGMENT = "crop,flip"


def _fashion() -> Path:
    for cand in (os.environ.get("NESSA_FASHION_MNIST"), "/usr/share/datasets/fashion-mnist",
                 str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist")):
        if cand and Path(cand).is_dir():
            return Path(cand)
    raise SystemExit("Fashion-MNIST not found (set NESSA_FASHION_MNIST)")


def _distil(root: Path, seed: int, args) -> dict:
    import torch

    from host.distill import DistillConfig, Distiller, herding
    from storage_service.distill_jobs import run_distillation
    from storage_service.ingest.writer import write_store
    from storage_service.store import Store

    torch.set_num_threads(args.threads)
    store = Store(root / "fm" / "train")
    out = {}
    pdd = DistillConfig(method="dm", stages=args.stages, ipc=args.ipc, iterations=args.iterations, seed=seed)
    if {"pdd", "pdd-steps"} & set(args.arms):
        st = run_distillation(store, "fm/train", root, f"pdd-s{seed}", pdd)
        out["pdd"] = out["pdd-steps"] = {"distill_cpu_s": st.cpu_s, "distilled": f"pdd-s{seed}"}
    out["random"] = {"distill_cpu_s": 0.0}
    if "dm" in args.arms:
        dm = DistillConfig(method="dm", stages=1, ipc=args.stages * args.ipc, iterations=args.stages * args.iterations,
                           seed=seed)
        st = run_distillation(store, "fm/train", root, f"dm-s{seed}", dm)
        out["dm"] = {"distill_cpu_s": st.cpu_s, "distilled": f"dm-s{seed}"}
    soft = {"pdd-soft": dict(method="dm", stages=args.stages, ipc=args.ipc, iterations=args.iterations),
            "dm-soft": dict(method="dm", stages=1, ipc=args.stages * args.ipc, iterations=args.stages * args.iterations),
            "random-soft": dict(method="random", stages=1, ipc=args.stages * args.ipc)}
    for arm, kw in soft.items():
        if arm in args.arms:
            st = run_distillation(store, "fm/train", root, f"{arm}-s{seed}",
                                  DistillConfig(seed=seed, labels="soft", **kw))
            out[arm] = {"distill_cpu_s": st.cpu_s, "distilled": f"{arm}-s{seed}"}
    views = {"dm-views": soft["dm-soft"], "random-views": soft["random-soft"], "pdd-views": soft["pdd-soft"]}
    for arm, kw in views.items():
        if arm in args.arms:  # the training seed is the arm's seed: its views are labelled
            st = run_distillation(store, "fm/train", root, f"{arm}-s{seed}",
                                  DistillConfig(seed=seed, labels="views", view_epochs=args.view_epochs, view_seeds=(seed,),
                                                view_augment=_AUGMENT, **kw))
            out[arm] = {"distill_cpu_s": st.cpu_s, "distilled": f"{arm}-s{seed}"}
    out["random-aug"] = {"distill_cpu_s": 0.0}
    if "herding" not in args.arms:
        return out
    c0 = time.process_time()
    x, y = store.take(np.arange(len(store)))
    ids = herding(Distiller(x, y, store.manifest.sample_shape, store.manifest.num_classes, pdd, name="fm/train"),
                  args.stages * args.ipc, train_samples=1000, epochs=2)
    write_store(root / f"herding-s{seed}", x[np.sort(ids)], y[np.sort(ids)], class_names=store.manifest.class_names)
    out["herding"] = {"distill_cpu_s": time.process_time() - c0, "dataset": f"herding-s{seed}"}
    return out


def _train(port: int, arm: str, seed: int, info: dict, per_class: int, class_size: int, args) -> dict:
    from trainer.config import TrainConfig
    from trainer.loop import train

    common = dict(servers=f"127.0.0.1:{port}", test_dataset="fm/test", epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, seed=seed, eval_every=args.epochs, progress=False, threads=args.threads, run_name=arm)
    if arm == "pdd-steps":  # as many SGD steps as a 500-image arm's: more epochs on the small early unions
        n, p, b = per_class * 10, args.stages, args.batch_size
        per_stage = sum(math.ceil(n * (s + 1) / p / b) for s in range(p))
        common["epochs"] = common["eval_every"] = max(p, round(args.epochs * math.ceil(n / b) * p / per_stage))
    if arm in _VIEWS:
        common.update(epochs=args.view_epochs, eval_every=args.view_epochs, augment=_AUGMENT)
    if arm in _DISTILLED:
        cfg = TrainConfig(dataset="", strategy="pdd", distilled=info["distilled"], **common)
    elif arm == "herding":
        cfg = TrainConfig(dataset=info["dataset"], strategy="full", **common)
    else:  # one uniform draw of per_class a class, kept for the whole run
        cfg = TrainConfig(dataset="fm/train", strategy="random", fraction=per_class / class_size,
                          reselect_every=common["epochs"], **common)
    t0 = time.perf_counter()
    res = train(cfg)
    last = res.final
    return {"test_acc": last["test_acc"], "bytes_received": last["bytes_received"],
            "samples_seen": last["samples_seen"], "train_cpu_s": last["cpu_s"], "train_wall_s": time.perf_counter() - t0,
            "steps": sum(math.ceil(r["num_selected"] / args.batch_size) for r in res.records), "epochs": cfg.epochs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--stages", type=int, default=5)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=20, help="matching steps per PDD stage (dm: stages x this)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--view-epochs", type=int, default=300,
                    help="dm-views, random-views, random-aug: epochs trained (and views labelled) with crop + flip")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: OpenMP spin-waits make 2 threads on 2 busy cores ~10x slower)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/distill"))
    ap.add_argument("--arms", default=",".join(ARMS), type=lambda t: [a for a in t.split(",") if a],
                    help=f"comma list of {', '.join(ARMS)} (default: all)")
    ap.add_argument("--report", action="store_true", help="only write table.md from every runs-*.json in --out")
    args = ap.parse_args(argv)
    if args.report:
        return _report(args.out)

    from storage_service.ingest import ingest
    from storage_service.server import create_server

    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[int, dict]] = {a: {} for a in ARMS}
    with tempfile.TemporaryDirectory(prefix="nessa-distill-") as tmp:
        root = Path(tmp)
        ingest(_fashion(), root / "fm", progress=False)
        class_size = min(json.loads((root / "fm" / "train" / "manifest.json").read_text())["class_counts"])
        server, port = create_server("127.0.0.1:0", root)
        try:
            for seed in args.seeds:
                made = _distil(root, seed, args)
                for arm in args.arms:
                    r = _train(port, arm, seed, made[arm], args.stages * args.ipc, class_size, args)
                    r["distill_cpu_s"] = made[arm]["distill_cpu_s"]
                    rows[arm][seed] = r
                    print(f"seed {seed} {arm:8s} acc {100 * r['test_acc']:.2f}%  distil {r['distill_cpu_s']:.0f} s CPU  "
                          f"{r['bytes_received'] / 1e6:.2f} MB  {r['steps']} steps", flush=True)
                tag = "-".join(str(s) for s in args.seeds) + ("" if list(args.arms) == list(ARMS) else "-" + "+".join(args.arms))
                (args.out / f"runs-{tag}.json").write_text(json.dumps(
                    {"args": {k: str(v) for k, v in vars(args).items()}, "runs": rows}, indent=1) + "\n")
        finally:
            server.stop(0)
    return _report(args.out)


def _report(out: Path) -> int:
    rows: dict[str, dict[int, dict]] = {a: {} for a in ARMS}
    conf = None
    for f in sorted(out.glob("runs-*.json")):
        doc = json.loads(f.read_text())
        # view_epochs only shapes the view arms (their runs record their epochs); older files lack it.
        a = {k: v for k, v in doc["args"].items() if k not in ("seeds", "out", "report", "arms", "view_epochs")}
        if conf is not None and a != conf:
            raise SystemExit(f"{f}: made with other options than the other runs files ({a} vs {conf})")
        conf = a
        for arm, runs in doc["runs"].items():
            rows[arm].update({int(s): v for s, v in runs.items()})
    if conf is None:
        raise SystemExit(f"no runs-*.json in {out}")
    table = _table(rows, int(conf["stages"]), int(conf["ipc"]))
    (out / "table.md").write_text(table)
    print(table)
    return 0


def _table(rows: dict, stages: int, ipc: int) -> str:
    total = stages * ipc
    names = {"pdd": f"PDD over DM, {stages} x IPC {ipc}, epoch-matched", "pdd-steps": f"PDD over DM, {stages} x IPC {ipc}, step-matched",
             "dm": f"DM, 1 x IPC {total}",
             "herding": f"herding, {total} per class", "random": f"random, {total} per class",
             "pdd-soft": f"PDD over DM, {stages} x IPC {ipc}, soft labels, epoch-matched",
             "dm-soft": f"DM, 1 x IPC {total}, soft labels",
             "random-soft": f"random, {total} per class, soft labels (control)"}
    ep = {arm: next(iter(r.values())).get("epochs") for arm, r in rows.items() if arm in _VIEWS and r}
    names["pdd-views"] = f"PDD over DM, {stages} x IPC {ipc}, per-view labels, crop + flip, {ep.get('pdd-views')} epochs"
    names.update({"dm-views": f"DM, 1 x IPC {total}, per-view labels, crop + flip, {ep.get('dm-views')} epochs",
                  "random-views": f"random, {total} per class, per-view labels, crop + flip, {ep.get('random-views')} epochs (control)",
                  "random-aug": f"random, {total} per class, class labels, crop + flip, {ep.get('random-aug')} epochs (control)"})
    lines = ["| arm | test acc % (95 % CI) | distillation CPU s | MB received (training) | SGD steps |",
             "| --- | --- | --- | --- | --- |"]
    for arm in ARMS:
        r = rows[arm]
        if not r:
            continue
        acc = mean_ci([100 * v["test_acc"] for v in r.values()])
        cpu = mean_ci([v["distill_cpu_s"] for v in r.values()])
        mb = mean_ci([v["bytes_received"] / 1e6 for v in r.values()])
        steps = mean_ci([v["steps"] for v in r.values()])
        lines.append(f"| {names[arm]} | {acc[0]:.2f} ± {acc[1]:.2f} | {cpu[0]:.0f} | {mb[0]:.2f} | {steps[0]:.0f} |")
    lines += ["", "| paired difference (points) | mean ± 95 % CI | seeds |", "| --- | --- | --- |"]
    for a, b in (("pdd", "dm"), ("pdd-steps", "dm"), ("pdd-steps", "random"), ("dm", "random"), ("dm", "herding"),
                 ("pdd-soft", "dm-soft"), ("dm-soft", "random"), ("dm-soft", "random-soft"), ("dm-soft", "dm"),
                 ("random-soft", "random"), ("dm-views", "random"), ("dm-views", "random-aug"),
                 ("dm-views", "random-views"), ("dm-views", "dm-soft"), ("random-views", "random-soft"),
                 ("random-aug", "random"), ("pdd-views", "dm-views")):
        if not rows[a] or not rows[b]:
            continue
        m, h, n = paired({s: 100 * v["test_acc"] for s, v in rows[a].items()},
                         {s: 100 * v["test_acc"] for s, v in rows[b].items()})
        lines.append(f"| {a} − {b} | {m:+.2f} ± {h:.2f} | {n} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
