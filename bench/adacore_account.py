"""Why AdaCore is not ahead of CRAIG on Fashion-MNIST: how much its preconditioning changes what
facility location sees and chooses, measured along a training run.

In process (no service): a small CNN trained as the time-to-accuracy protocol trains a 10 %
budget (SGD, lr 0.05, batch 128, a random 10 % subset per epoch), with AdaCore's curvature
estimate (host/curvature.py) updated every step. After each epoch, on a stratified pool of
``--pool`` training examples: the gradient proxies, CRAIG's and AdaCore's per-class 10 %
selections (lazy greedy, the service's rule), and

- the spread of the preconditioning: the largest over the smallest per-class scale 1/sqrt(v);
- how much it moves the geometry: the Spearman correlation, per class, between the pairwise
  distances of the plain and of the preconditioned proxies (1: the same order, so nearly the
  same facility-location problem), median over classes;
- how much the choice changes: the Jaccard overlap of the two selections, beside the overlap of
  CRAIG with a random subset of the same per-class sizes (the floor; lazy greedy is
  deterministic, so two CRAIG selections would overlap fully).

    python bench/adacore_account.py --epochs 5 --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECTION = "### AdaCore's preconditioning, measured (why not ahead of CRAIG here)"


def _load(data: str | None):
    from storage_service.ingest.idx import find_idx_pairs, load_idx_pair
    from storage_service.ingest.locate import find_fashion_mnist

    folder, looked = find_fashion_mnist(data)
    if folder is None:
        raise SystemExit(f"Fashion-MNIST not found (looked in {', '.join(looked)})")
    pairs = find_idx_pairs(Path(folder))
    return load_idx_pair(*pairs["train"])


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _pdist(x: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    return d[np.triu_indices(len(x), 1)]


def _jaccard(a, b) -> float:
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / max(1, len(a | b))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--pool", type=int, default=6000, help="stratified training examples measured each epoch")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", help="Fashion-MNIST folder (default: search)")
    ap.add_argument("--write", help="replace this section of the Markdown file")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.pool < 100 or not 0 < args.fraction < 1:
        ap.error("--epochs >= 1, --pool >= 100, --fraction in (0, 1)")

    import torch

    import host
    from host.curvature import CurvatureEMA, precondition
    from host.models import build_model, to_input

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y = _load(args.data)
    y = y.astype(np.int64)
    rng = np.random.default_rng(args.seed)
    pool = np.concatenate([rng.choice(np.flatnonzero(y == c), args.pool // 10, replace=False) for c in range(10)])
    model = build_model("small_cnn", (1, 28, 28), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    ema = CurvatureEMA(10, 0.99)
    rows = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        subset = rng.permutation(np.concatenate([rng.choice(np.flatnonzero(y == c), int(np.ceil(args.fraction * (y == c).sum())), replace=False) for c in range(10)]))
        for s in range(0, len(subset), 128):
            idx = subset[s:s + 128]
            logits = model(to_input(x[idx], (1, 28, 28)))
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            ema.update(logits)
        model.eval()
        feats = host.gradient_features(model, x[pool], y[pool], sample_shape=(1, 28, 28))
        v = ema.value()
        pre = precondition(feats, v)
        scale = 1.0 / (np.sqrt(v.astype(np.float64)) + 1e-4)
        craig = np.asarray(host.select(feats, y[pool], args.fraction, optimizer="lazy", seed=args.seed).ids)
        ada = np.asarray(host.select(pre, y[pool], args.fraction, optimizer="lazy", seed=args.seed).ids)
        rand = np.concatenate([rng.choice(np.flatnonzero(y[pool] == c), int((y[pool][craig] == c).sum()), replace=False) for c in range(10)])
        corr = []
        for c in range(10):
            members = np.flatnonzero(y[pool] == c)[:300]
            corr.append(_spearman(_pdist(feats[members].astype(np.float64)), _pdist(pre[members].astype(np.float64))))
        acc_logits = model(to_input(x[pool], (1, 28, 28))).argmax(1).numpy()
        rows.append((epoch, float((acc_logits == y[pool]).mean() * 100), scale.max() / scale.min(),
                     float(np.median(corr)), min(corr), _jaccard(craig, ada), _jaccard(craig, rand)))
        print(rows[-1], flush=True)

    head = ("| after epoch | pool accuracy % | max/min per-class scale | distance-order correlation, median (min) over classes "
            "| Jaccard(CRAIG, AdaCore) | Jaccard(CRAIG, random) |")
    lines = [head, "|---:|---:|---:|---:|---:|---:|"] + [
        f"| {e} | {a:.1f} | {s:.1f} | {m:.3f} ({lo:.3f}) | {j:.2f} | {jr:.2f} |" for e, a, s, m, lo, j, jr in rows]
    cmd = "python bench/adacore_account.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([SECTION, "", f"`{cmd.strip()}` — small CNN trained on a fresh random {args.fraction:.0%} of "
                      f"Fashion-MNIST each epoch (the 10 % protocol), AdaCore's estimate updated every step (beta 0.99); "
                      f"measured on a stratified pool of {args.pool:,} training examples, per-class {args.fraction:.0%} "
                      "selections by lazy greedy.", "", *lines, ""])
    print(text)
    if args.write:
        from bench._markdown import replace_section

        replace_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
