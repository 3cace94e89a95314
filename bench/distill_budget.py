"""Probe for issue #18 on a validation split: does a larger matching budget let PDD overtake DM?

    python bench/distill_budget.py --seeds 0 --iterations 1000            # one process per seed
    python bench/distill_budget.py --seeds 0 --method dc --iterations 4 --arms pdd,base

``bench/distill.py`` distils with 20 DM steps a PDD stage (100 for single-stage DM), where the
synthetic images hardly leave their real initialisation. This runs more: PDD over the base method
(``--method`` dm or dc), 5 stages x IPC 10 with ``--iterations`` steps a stage, against the base
method in one stage at IPC 50 with 5x as many steps, and a random 50 per class (the real images
the matching starts from), on a 5,000-image validation split
carved from Fashion-MNIST train (seed 123, as in ``bench/distill_view_labels.py``; the test split
is not touched). Student: the small CNN, 100 epochs (PDD: split over its cumulative unions as
``trainer.distilled`` splits them), batch 128, SGD 0.05 nesterov cosine, wd 5e-4, hard labels, one
torch thread, in process. One JSON line per (seed, arm) on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.distill import _fashion  # noqa: E402
from host.distill import DistillConfig, Distiller  # noqa: E402
from host.models import build_model  # noqa: E402
from storage_service.ingest.idx import load_idx_pair  # noqa: E402
from trainer.distilled import epochs_per_stage  # noqa: E402

_VAL_SEED, _VAL_SIZE, _EPOCHS, _BATCH = 123, 5000, 100, 128


def _student(stages: list[tuple[np.ndarray, np.ndarray]], seed: int, xv: torch.Tensor, yv: torch.Tensor) -> float:
    """Validation accuracy % of the small CNN trained on the cumulative unions of ``stages``."""
    torch.manual_seed(seed)
    model = build_model("small_cnn", (28, 28), 10)
    per = epochs_per_stage(_EPOCHS, len(stages))
    sizes = np.cumsum([len(x) for x, _ in stages])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, sum(n * math.ceil(s / _BATCH) for n, s in zip(per, sizes)))
    gen = torch.Generator().manual_seed(seed)
    for k, n_epochs in enumerate(per):
        xs = torch.from_numpy(np.concatenate([x for x, _ in stages[:k + 1]])).reshape(-1, 1, 28, 28).float()
        ys = torch.from_numpy(np.concatenate([y for _, y in stages[:k + 1]]).astype(np.int64))
        for _ in range(n_epochs):
            order = torch.randperm(len(xs), generator=gen)
            for b in range(0, len(xs), _BATCH):
                i = order[b:b + _BATCH]
                loss = F.cross_entropy(model(xs[i]), ys[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    with torch.no_grad():
        hits = sum((model(xv[i:i + 1000]).argmax(1) == yv[i:i + 1000]).sum().item() for i in range(0, len(xv), 1000))
    return 100.0 * hits / len(xv)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--iterations", type=int, default=1000, help="matching steps a PDD stage (single stage: 5x)")
    ap.add_argument("--method", default="dm", choices=("dm", "dc"), help="the base method (default dm)")
    ap.add_argument("--arms", default="pdd,base,random", help="pdd, base (the single-stage method), random")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = _fashion()
    x_all, y_all = load_idx_pair(root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz")
    perm = np.random.default_rng(_VAL_SEED).permutation(len(x_all))
    val, train = perm[:_VAL_SIZE], perm[_VAL_SIZE:]
    xv, yv = torch.from_numpy(x_all[val]).unsqueeze(1).float() / 255, torch.from_numpy(y_all[val].astype(np.int64))
    xt, yt = x_all[train], y_all[train].astype(np.int64)
    for seed in (int(s) for s in args.seeds.split(",")):
        arms = {"pdd": DistillConfig(method=args.method, stages=5, ipc=10, iterations=args.iterations, seed=seed),
                "base": DistillConfig(method=args.method, stages=1, ipc=50, iterations=5 * args.iterations, seed=seed),
                "random": DistillConfig(method="random", stages=1, ipc=50, seed=seed)}
        for arm, cfg in ((a, arms[a]) for a in args.arms.split(",")):
            c0 = time.process_time()
            dist, stages = Distiller(xt, yt, (28, 28), 10, cfg), []
            for s in range(1, cfg.stages + 1):
                stages.append(dist.run_stage(s, stages))
            cpu = time.process_time() - c0
            print(json.dumps({"seed": seed, "arm": args.method if arm == "base" else arm, "method": cfg.method.value,
                              "iterations": cfg.iterations, "val_acc": round(_student(stages, seed, xv, yv), 2),
                              "distill_cpu_s": round(cpu, 1)}), flush=True)


if __name__ == "__main__":
    main()
