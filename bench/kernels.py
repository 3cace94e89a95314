"""Emulated FPGA kernels vs the CPU backend on the same Fashion-MNIST class, plus per-class
operation counts for the system model.

    python bench/kernels.py [--data DIR] [--classes 0 6] [--fraction 0.1] [--train-samples 10000] [--out FILE]

One process, same model and same class for every row:

* features: a SmallCNN trained for one pass over ``--train-samples`` images; CPU backend (torch
  float32) vs the ``nessa_features`` kernel (int8, emulated) over the class's training images.
* greedy: per class, CPU backend (C float32) vs the ``nessa_greedy`` kernel (fixed point,
  emulated), lazy and stochastic; the objective of each selection is also scored on the float
  features (same max_dist: the class's largest float distance) so quality is comparable.
* op counts (:mod:`host.device.opcounts`): MACs, distance MACs, gain evaluations (measured by the
  kernel), bytes read / written over the DDR bundle -- what the system model turns into cycles --
  and the cycle estimates of the kernels' PE arrays as written (unsynthesised).

Emulation runs the HLS C++ on the CPU with g++ -O3: its time says nothing about the card's; the
op counts do. Times are wall seconds on this (shared, noisy) machine; compare ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from host import _cpu_backend as cpu  # noqa: E402
from host.backends import Backend  # noqa: E402
from host.device.backend import bind  # noqa: E402
from host.device.opcounts import features_op_counts, greedy_op_counts  # noqa: E402
from host.facility_location import objective, stochastic_sample_size  # noqa: E402
from host.golden.similarity import quantize_features  # noqa: E402
from host.models import build_model, to_input  # noqa: E402
from storage_service.ingest.idx import read_idx  # noqa: E402


def _find_data(arg: str | None) -> Path:
    for c in [arg, REPO.parent / "shared/data/fashion-mnist", "/usr/share/datasets/fashion-mnist"]:
        if c and any(Path(c).glob("train-images-idx3-ubyte*")):
            return Path(c)
    raise SystemExit("Fashion-MNIST not found; pass --data DIR")


def _train(x: np.ndarray, y: np.ndarray, n: int) -> torch.nn.Module:
    sub = np.random.default_rng(0).permutation(len(x))[:n]
    torch.manual_seed(0)
    model = build_model("small_cnn", (28, 28), 10)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xs, ys = to_input(x[sub], (28, 28)), torch.as_tensor(y[sub])
    for lo in range(0, n, 64):
        loss = torch.nn.functional.cross_entropy(model(xs[lo:lo + 64]), ys[lo:lo + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--classes", type=int, nargs="+", default=[0, 6])
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--train-samples", type=int, default=10000)
    ap.add_argument("--out", help="also write the markdown tables here")
    args = ap.parse_args()
    folder = _find_data(args.data)
    x = read_idx(next(folder.glob("train-images-idx3-ubyte*")))
    y = read_idx(next(folder.glob("train-labels-idx1-ubyte*"))).astype(np.int64)
    model = _train(x, y, args.train_samples)
    dev = bind(Backend.EMU)
    dev.greedy(np.zeros((2, 2), np.float32), 1)  # open the device / build the library outside the timings

    lines = ["| class | n | k | stage | CPU backend s | EMU kernel s | EMU / CPU time | CPU objective | EMU objective | "
             "EMU sel. on float obj. / CPU | overlap |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    counts = ["| class | n | d | k | feature MACs | feature cycles (MAC/cycle) | distance MACs | distance cycles (MAC/cycle) | "
              "features + distances ms at 200 MHz | gain evals (lazy) | gain ops | bytes read | bytes written |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in args.classes:
        rows = np.flatnonzero(y == c)
        xc, yc = x[rows], y[rows]
        n = len(rows)
        k = int(np.ceil(args.fraction * n))
        g_cpu, t_fc = _timed(lambda: cpu.features(model, xc, yc, sample_shape=(28, 28), batch_size=1000, embedding=False))
        g_emu, t_fe = _timed(lambda: dev.features(model, xc, yc, sample_shape=(28, 28), batch_size=2000, embedding=False))
        agree = float((np.argmax(g_cpu + np.eye(10)[yc], 1) == np.argmax(g_emu + np.eye(10)[yc], 1)).mean())
        lines.append(f"| {c} | {n} | - | features (argmax agree {agree:.4f}) | {t_fc:.2f} | {t_fe:.2f} | {t_fe / t_fc:.1f}x | - | - | - | - |")
        dmax = float(np.sqrt(np.maximum(((g_cpu[:, None, :] - g_cpu[None, :, :]) ** 2).sum(-1), 0)).max())
        for opt in ("lazy", "stochastic"):
            (ids_c, _, obj_c), t_gc = _timed(lambda: cpu.greedy(g_cpu, k, optimizer=opt, seed=0, epsilon=0.01, max_dist=None))
            (ids_e, _, obj_e), t_ge = _timed(lambda: dev.greedy(g_emu, k, optimizer=opt, seed=0, epsilon=0.01, max_dist=None))
            f_e, f_c = objective(g_cpu, ids_e, max_dist=dmax), objective(g_cpu, ids_c, max_dist=dmax)
            ov = len(set(ids_e.tolist()) & set(ids_c.tolist())) / k
            lines.append(f"| {c} | {n} | {k} | greedy {opt} | {t_gc:.2f} | {t_ge:.2f} | {t_ge / t_gc:.1f}x | {obj_c:.2f} | "
                         f"{obj_e:.2f} | {f_e / f_c:.5f} | {ov:.3f} |")
        q = quantize_features(g_emu)
        run = dev.flow.greedy(q, k, maxd_q=0, mode=0)
        gc = greedy_op_counts(n, q.shape[1], k, evaluations=run.evaluations - n, maxd_from_data=True)
        fc = features_op_counts(dev._models[next(iter(dev._models))], n)
        ms = 1e3 * (fc["cycles"] + gc["distance_cycles"]) / 200e6
        counts.append(f"| {c} | {n} | {q.shape[1]} | {k} | {fc['macs']:,} | {fc['cycles']:,} ({fc['macs_per_cycle']:.1f}) | "
                      f"{gc['distance_macs']:,} | {gc['distance_cycles']:,} ({gc['distance_macs'] / gc['distance_cycles']:.0f}) | "
                      f"{ms:.1f} | {gc['gain_evals']:,} "
                      f"(naive {(k - 1) * (n - 1):,}) | {gc['gain_ops']:,} | {fc['bytes_read'] + gc['bytes_read']:,} | "
                      f"{fc['bytes_written'] + gc['bytes_written']:,} |")
        ss = stochastic_sample_size(n, k, 0.01)
        print(f"class {c}: stochastic samples {ss} per step", file=sys.stderr)
    text = "\n".join(lines) + "\n\nPer-class operation counts (features + greedy, lazy, max_dist from data):\n\n" + "\n".join(counts) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
