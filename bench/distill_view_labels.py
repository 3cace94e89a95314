"""Pilot for issue #18: a teacher's labels for each augmented *view* of a random 500, not one label
per image (validation split carved from Fashion-MNIST train; the test split is not touched).

    python bench/distill_view_labels.py --teacher-epochs 3 --arms hard,soft,view-cf,view-cf-T1,view-cf-300

Static soft labels (what ``nessa distill --labels soft`` stores) give a random 500 ~+3.7 points;
this measures what labelling every view the trainer makes adds (FKD / "patient and consistent"
distillation). The trainer's augmentation is reproducible per (seed, epoch, sample id)
(``host.augment``), so the storage host can precompute these labels for exactly the views a run
will draw: the system does that since (``nessa distill --labels views``, ``host.distill.views``;
measured on the test split by ``bench/distill.py --arms dm-views,random-views,random-aug``). This
pilot, where the teacher runs in process, is what chose its temperature and epochs on validation.

Arms: ``hard`` / ``soft`` (static T=2 teacher labels), no augmentation; ``hard-cf`` hard labels with
crop (pad 2) + flip; ``view-*`` crop + flip with the teacher's softmax(logits / T) of each view
(T=2 unless ``-T1``/``-T4``); ``-300``: 300 epochs instead of 100. Student: the small CNN, batch 128,
SGD 0.05 nesterov, cosine, wd 5e-4, one torch thread. One JSON line per (seed, arm) on stdout.
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
from host.distill import DistillConfig  # noqa: E402
from host.distill.teacher import train_teacher  # noqa: E402
from host.models import build_model  # noqa: E402
from storage_service.ingest.idx import load_idx_pair  # noqa: E402
from host.augment import AugmentConfig, Augmenter  # noqa: E402

_CF = AugmentConfig(crop_padding=2, flip=True)
#: arm -> (label mode, augmentation, temperature, epochs)
ARMS = {
    "hard": ("hard", AugmentConfig(), 2.0, 100),
    "soft": ("soft", AugmentConfig(), 2.0, 100),
    "hard-cf": ("hard", _CF, 2.0, 100),
    "view-cf": ("view", _CF, 2.0, 100),
    "view-cf-T1": ("view", _CF, 1.0, 100),
    "view-cf-T4": ("view", _CF, 4.0, 100),
    "view-cf-300": ("view", _CF, 2.0, 300),
}
_VAL_SEED, _TEACHER_SEED, _VAL_SIZE, _PER_CLASS = 123, 7, 5000, 50


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher-epochs", type=int, default=3)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args(argv)
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        ap.error(f"--arms: unknown {unknown}; known: {list(ARMS)}")
    torch.set_num_threads(1)
    root = _fashion()
    x_all, y_all = load_idx_pair(root / "train-images-idx3-ubyte.gz", root / "train-labels-idx1-ubyte.gz")
    y_all = y_all.astype(np.int64)
    perm = np.random.default_rng(_VAL_SEED).permutation(len(x_all))
    val, train = perm[:_VAL_SIZE], perm[_VAL_SIZE:]
    xv, yv = torch.from_numpy(x_all[val]).unsqueeze(1).float() / 255, torch.from_numpy(y_all[val])
    xt, yt = torch.from_numpy(x_all[train]).unsqueeze(1), torch.from_numpy(y_all[train])
    mean, std = (xt.float() / 255).mean(), (xt.float() / 255).std()
    t0 = time.process_time()
    teacher = train_teacher(((xt.float() / 255) - mean) / std, yt, 10,
                            DistillConfig(method="dm", teacher_epochs=args.teacher_epochs), seed=_TEACHER_SEED)
    print(json.dumps({"teacher_epochs": args.teacher_epochs, "teacher_cpu_s": round(time.process_time() - t0, 1)}), flush=True)

    @torch.no_grad()
    def probs(x_u8: torch.Tensor, temperature: float) -> torch.Tensor:
        return torch.softmax(teacher(((x_u8.float() / 255) - mean) / std) / temperature, 1)

    @torch.no_grad()
    def accuracy(model) -> float:
        model.eval()
        hits = sum((model(xv[i:i + 1000]).argmax(1) == yv[i:i + 1000]).sum().item() for i in range(0, len(xv), 1000))
        model.train()
        return 100.0 * hits / len(xv)

    def run(seed: int, mode: str, aug: AugmentConfig, temperature: float, epochs: int) -> float:
        rng = np.random.default_rng(seed)
        sel = np.concatenate([rng.choice(np.flatnonzero(yt.numpy() == c), _PER_CLASS, replace=False) for c in range(10)])
        xs, ys = xt[sel], yt[sel]
        static = probs(xs, temperature)
        torch.manual_seed(seed)
        model = build_model("small_cnn", (28, 28), 10)
        n = len(sel)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(n / 128))
        augment, gen = Augmenter(aug), torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            for b in range(0, n, 128):
                i = order[b:b + 128]
                x = augment(xs[i], sel[i.numpy()], epoch=epoch, seed=seed) if aug.active else xs[i]
                logp = F.log_softmax(model(x.float() / 255), 1)
                if mode == "hard":
                    loss = F.nll_loss(logp, ys[i])
                else:  # soft: the image's label; view: the label of this very view
                    target = static[i] if mode == "soft" else probs(x, temperature)
                    loss = -(target * logp).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        return accuracy(model)

    for seed in (int(s) for s in args.seeds.split(",")):
        for arm in arms:
            t0 = time.process_time()
            acc = run(seed, *ARMS[arm])
            print(json.dumps({"seed": seed, "arm": arm, "val_acc": round(acc, 2), "cpu_s": round(time.process_time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
