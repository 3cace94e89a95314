"""Training benchmark on Fashion-MNIST: full data vs random vs nessa subsets, one run, one service.

    python bench/train.py [--data DIR] [--fractions 0.05,0.1,0.3] [--full-epochs 8] [--subset-epochs 16]
                          [--reselect-every 4] [--write BENCHMARKS.md]

Ingests Fashion-MNIST (once, under --work), starts a storage service in this process on a free
loopback port, and trains the small CNN with each strategy. Random and nessa get the same
budget at each fraction (same epochs, same per-class subset size, same reselection schedule,
same learning rate); only how the subset is chosen differs. Reported per run: final test
accuracy, wall time and CPU time of training + selection (evaluation excluded, the same test
pass for everybody), selection time, and training bytes received from the service.

The machine is a shared 2-core VM: besides wall time the table gives process CPU seconds
(trainer + in-process service), which other tenants disturb far less. torch runs one thread:
with two, OpenMP spin-waits collapse under load (measured ~10x slower on this VM).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECTION = "## Training (Fashion-MNIST)"


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="Fashion-MNIST folder (default: the demo's search)")
    p.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "train", help="store, metrics, plots")
    p.add_argument("--fractions", default="0.05,0.1,0.3")
    p.add_argument("--full-epochs", type=int, default=10)
    p.add_argument("--subset-epochs", type=int, default=12)
    p.add_argument("--reselect-every", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--eval-every", type=int, default=4, help="test-set passes (not timed) every N epochs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-weights", action="store_true", help="nessa without coreset weights")
    p.add_argument("--write", type=Path, help="replace this file's training section with the table")
    return p.parse_args()


def _row(r: dict, full: dict) -> str:
    return (f"| {r['strategy']} | {r['fraction']:g} | {r['epoch']} | {100 * r['test_acc']:.2f} | "
            f"{100 * (r['test_acc'] - full['test_acc']):+.2f} | {r['wall_s']:.1f} | {r['wall_s'] / full['wall_s']:.3f} | "
            f"{r['cpu_s']:.1f} | {r['cpu_s'] / full['cpu_s']:.3f} | {r['selection_s']:.1f} | "
            f"{r['bytes_received'] / 1e6:.1f} | {r['bytes_received'] / full['bytes_received']:.3f} |")


def main() -> int:
    args = _parse()
    import torch

    torch.set_num_threads(args.threads)
    from trainer.config import TrainConfig
    from storage_service.ingest.locate import find_fashion_mnist
    from storage_service.server import serve_local as local_service
    from trainer.loop import train
    from trainer.plots import plot_runs

    data, looked = find_fashion_mnist(args.data)
    if data is None:
        print(f"Fashion-MNIST not found (looked in {', '.join(looked)})", file=sys.stderr)
        return 2
    fractions = [float(f) for f in args.fractions.split(",")]
    root = args.work / "store"
    if not (root / "fashion-mnist" / "train" / "manifest.json").exists():
        from storage_service.ingest import ingest

        ingest(data, root / "fashion-mnist", overwrite=True, progress=False)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    finals: list[dict] = []
    curves: dict[str, list[dict]] = {}
    with local_service(root) as target:
        plan = [("full", 1.0, args.full_epochs)]
        for f in fractions:
            plan += [("random", f, args.subset_epochs), ("craig", f, args.subset_epochs)]
        for strategy, fraction, epochs in plan:
            cfg = TrainConfig(servers=(target,), dataset="fashion-mnist/train", test_dataset="fashion-mnist/test",
                              strategy=strategy, fraction=fraction, epochs=epochs,
                              reselect_every=args.reselect_every, lr=args.lr, eval_every=args.eval_every,
                              use_weights=not (args.no_weights and strategy == "craig"), threads=args.threads,
                              progress=False, out_dir=args.work / "runs" / f"{strategy}-{fraction:g}")
            result = train(cfg)
            finals.append(result.final)
            curves[cfg.label] = result.records
            f = result.final
            print(f"{cfg.label}: acc {100 * f['test_acc']:.2f}%, wall {f['wall_s']:.1f}s, cpu {f['cpu_s']:.1f}s, "
                  f"selection {f['selection_s']:.1f}s, {f['bytes_received'] / 1e6:.1f} MB", flush=True)
    minutes = (time.perf_counter() - t0) / 60
    load1 = os.getloadavg()
    plots = plot_runs(curves, args.work, title="Fashion-MNIST, small CNN")

    full = finals[0]
    by = {(r["strategy"], r["fraction"]): r for r in finals}
    lines = ["| strategy | fraction | epochs | test acc (%) | vs full (points) | wall (s) | wall vs full | "
             "CPU (s) | CPU vs full | selection (s) | MB received | bytes vs full |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [_row(r, full) for r in finals]
    goal = []
    n10 = by.get(("craig", 0.1))
    if n10:
        gap = 100 * (full["test_acc"] - n10["test_acc"])
        goal.append(f"- craig@0.1 vs full: {gap:.2f} points below full (goal <= 1.0: {'met' if gap <= 1.0 else 'NOT met'}); "
                    f"wall {n10['wall_s'] / full['wall_s']:.3f}x, CPU {n10['cpu_s'] / full['cpu_s']:.3f}x of full "
                    f"(goal <= 0.333: wall {'met' if n10['wall_s'] <= full['wall_s'] / 3 else 'NOT met'}, "
                    f"CPU {'met' if n10['cpu_s'] <= full['cpu_s'] / 3 else 'NOT met'}).")
    for f in fractions:
        r, n = by.get(("random", f)), by.get(("craig", f))
        if r and n:
            d = 100 * (n["test_acc"] - r["test_acc"])
            goal.append(f"- nessa vs random at {f:g}: {d:+.2f} points ({'met' if d >= 0 else 'NOT met'}).")
    cmd = "python bench/train.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        SECTION, "",
        f"`{cmd.strip()}` — small CNN, SGD (momentum 0.9, nesterov, cosine, lr {args.lr:g}, batch 128), "
        f"full data for {args.full_epochs} epochs; random and nessa for {args.subset_epochs} epochs on the subset, "
        f"reselected every {args.reselect_every} epochs (same budget for both; nessa = CRAIG selection on the "
        f"storage service's CPU backend, weights {'off' if args.no_weights else 'on'}). "
        f"Times are training + selection (test passes excluded); CPU = process CPU seconds of trainer + "
        f"in-process service, torch with {args.threads} thread(s). One run, {minutes:.0f} min, "
        f"load average {load0[0]:.1f} at start and {load1[0]:.1f} at the end on this shared 2-core VM.",
        "", *lines, "", *goal, "", f"Plots: `{plots[0].relative_to(REPO) if plots[0].is_relative_to(REPO) else plots[0]}`, "
        f"`{plots[1].relative_to(REPO) if plots[1].is_relative_to(REPO) else plots[1]}` (not committed).", ""])
    print()
    print(text)
    if args.write:
        from bench._markdown import replace_section

        replace_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
