"""Per-image cost of the trainer's tensor augmentations (host/augment.py) on this machine's CPU.

    python bench/augment.py [--batch 256] [--repeats 20] [--md BENCHMARKS.md]

Times each configuration on uint8 batches the size of Fashion-MNIST (1x28x28) and CIFAR
(3x32x32) images, best of ``--repeats`` after a warm-up, and reports microseconds per image.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.augment import AugmentConfig, Augmenter  # noqa: E402

CONFIGS = {
    "crop 4 + flip": AugmentConfig(crop_padding=4, flip=True),
    "cutout 8": AugmentConfig(cutout=8),
    "crop + flip + cutout": AugmentConfig(crop_padding=4, flip=True, cutout=8),
    "RandAugment N=2 M=9": AugmentConfig(randaugment_ops=2, randaugment_magnitude=9),
    "RandAugment + crop + flip + cutout": AugmentConfig(crop_padding=4, flip=True, cutout=8, randaugment_ops=2),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--md", help="append the table to this Markdown file")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    shapes = {"1x28x28": (1, 28, 28), "3x32x32": (3, 32, 32)}
    rows = ["| augmentation | " + " | ".join(f"{k} (us/image)" for k in shapes) + " |", "|---|" + "---:|" * len(shapes)]
    for name, cfg in CONFIGS.items():
        cells = []
        for shape in shapes.values():
            x = torch.from_numpy(rng.integers(0, 256, (args.batch, *shape), dtype=np.uint8))
            ids = np.arange(args.batch)
            aug = Augmenter(cfg)
            aug(x, ids, epoch=0, seed=0)
            best = float("inf")
            for r in range(args.repeats):
                t = time.perf_counter()
                aug(x, ids, epoch=r, seed=0)
                best = min(best, time.perf_counter() - t)
            cells.append(f"{best / args.batch * 1e6:.1f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(rows)
    print(table)
    if args.md:
        with open(args.md, "a") as f:
            f.write(f"\n`python bench/augment.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
                    f"(batch {args.batch}, torch threads {torch.get_num_threads()}):\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
