"""Why ClipCov does not beat a random subset on the synthetic Fashion-MNIST captions: a measured
account (issue #17), on a validation split.

    python bench/clipcov_account.py [--seeds 2] [--mismatch 0.1,0.4] [--proxy pool,other] [--write BENCHMARKS.md]

Per (caption noise, proxy): a 10,000-pair pool drawn from Fashion-MNIST train with SYNTHETIC
captions (storage_service/ingest/synthetic_captions.py; ``--mismatch`` of them name another
class), a proxy CLIP model (``pool``: one epoch on the pool, as bench/contrastive_study.py;
``other``: four epochs on 20,000 *other* training pairs, standing in for a proxy pretrained
elsewhere), and 10 % subsets:

* ``random``: uniform; ``oracle-clean``: uniform over the correctly captioned pairs only (ground
  truth no selector has: what removing the noise alone is worth);
* ``clip-score``: the pairs whose own image-caption similarity under the proxy is highest;
* ``clipcov``: host.clipcov as the service runs it (reference score, global greedy, 10 k-means
  latent classes); ``clipcov-labels``: the same with the true labels as latent classes;
  ``clipcov-balanced``: the reference score taken per true class with that class's share of the
  budget (no class can go empty).

Every subset trains ``clip_cnn`` for the same 156 steps (batch 256, paired seeds: same init and
batch order per seed); zero-shot accuracy from the caption templates on 5,000 held-out training
images (a validation split: nothing here looks at the test split). Reported: accuracy (mean ±
95 % CI), the paired difference against ``random``, mismatched captions kept, and the smallest
and largest class in the subset (of ~100 per class for a uniform 10 %).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._markdown import replace_section  # noqa: E402
from bench._tta_stats import mean_ci, paired  # noqa: E402

SECTION = "## ClipCov on synthetic captions, measured (why it does not beat random here)"
ARMS = ("random", "oracle-clean", "clip-score", "clipcov", "clipcov-labels", "clipcov-balanced")
FRACTION = 0.1
POOL, VAL, OTHER = 10_000, 5_000, 20_000


def _subsets(arm: str, seed: int, I, T, y, wrong, k: int) -> np.ndarray:
    from host.clipcov import clipcov_select

    if arm == "random":
        return np.sort(np.random.default_rng([seed, 77]).choice(len(y), k, replace=False))
    if arm == "oracle-clean":
        return np.sort(np.random.default_rng([seed, 77]).choice(np.flatnonzero(~wrong), k, replace=False))
    if arm == "clip-score":
        In, Tn = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (I, T))
        return np.sort(np.argsort(-np.einsum("nd,nd->n", In, Tn), kind="stable")[:k])
    if arm == "clipcov":
        return clipcov_select(I, T, FRACTION, latent=10).ids
    if arm == "clipcov-labels":
        return clipcov_select(I, T, FRACTION, labels=y).ids
    parts = []  # clipcov-balanced: one latent class at a time, its own budget
    for c in np.unique(y):
        m = np.flatnonzero(y == c)
        parts.append(m[clipcov_select(I[m], T[m], FRACTION, labels=np.zeros(m.size, np.int64), latent=1).ids])
    return np.sort(np.concatenate(parts))


def _config(args, mismatch: float, proxy: str) -> list[dict]:
    import torch

    from host.embedding import embed_images, embed_texts
    from storage_service.ingest.idx import FASHION_MNIST_CLASSES, load_idx_pair
    from storage_service.ingest.locate import find_fashion_mnist
    from storage_service.ingest.synthetic_captions import TEMPLATES, captions_for
    from trainer.clip_train import ClipConfig, train_clip
    from trainer.contrastive import ArrayBatches, steps_for
    from trainer.probe import zero_shot

    torch.set_num_threads(args.threads)
    data, looked = find_fashion_mnist(None)
    if data is None:
        raise SystemExit(f"Fashion-MNIST not found (looked in {', '.join(looked)})")
    x, y = load_idx_pair(data / "train-images-idx3-ubyte.gz", data / "train-labels-idx1-ubyte.gz")
    perm = np.random.default_rng(7).permutation(len(y))
    pool, val, other = perm[:POOL], perm[POOL:POOL + VAL], perm[POOL + VAL:POOL + VAL + OTHER]
    texts, wrong = captions_for(y, seed=3, mismatch=mismatch, images=x, return_mismatched=True)
    names, shape, b = list(FASHION_MNIST_CLASSES), tuple(x.shape[1:]), 256
    src = pool if proxy == "pool" else other
    epochs = 1 if proxy == "pool" else 4
    model, _ = train_clip(ArrayBatches(x[src], np.arange(len(src)), b, 1000, texts=[texts[i] for i in src]), shape,
                          ClipConfig(steps=steps_for(len(src), b, epochs), batch_size=b, seed=1000, lr=2e-3))
    px, py, pw, pt = x[pool], y[pool], wrong[pool], [texts[i] for i in pool]
    I, T = embed_images(model, px, shape), embed_texts(model, pt)
    proxy_acc = zero_shot(model, x[val], y[val], shape, names, TEMPLATES)
    k = int(round(FRACTION * POOL))
    out = []
    for seed in range(args.seeds):
        for arm in ARMS:
            ids = _subsets(arm, seed, I, T, py, pw, k)
            m, _ = train_clip(ArrayBatches(px, ids, b, seed, texts=pt), shape,
                              ClipConfig(steps=156, batch_size=b, seed=seed, lr=2e-3))
            counts = np.bincount(py[ids], minlength=10)
            rec = {"mismatch": mismatch, "proxy": proxy, "proxy_acc": proxy_acc, "seed": seed, "arm": arm,
                   "acc": zero_shot(m, x[val], y[val], shape, names, TEMPLATES), "n": int(len(ids)),
                   "mismatched": float(pw[ids].mean()), "class_min": int(counts.min()), "class_max": int(counts.max())}
            print(json.dumps(rec), flush=True)
            out.append(rec)
    return out


def _report(runs: list[dict], command: str) -> str:
    lines = [SECTION, "", f"`{command}` (records: `bench/results/clipcov_account.jsonl`). See the module docstring "
             "for the arms; zero-shot accuracy on a 5,000-image validation split, 10 % subsets, paired seeds.", ""]
    for (mm, proxy) in sorted({(r["mismatch"], r["proxy"]) for r in runs}):
        rs = [r for r in runs if r["mismatch"] == mm and r["proxy"] == proxy]
        lines += [f"**{mm:.0%} mismatched captions, proxy `{proxy}`** (the proxy's own zero-shot accuracy "
                  f"{100 * rs[0]['proxy_acc']:.1f} %)", "",
                  "| arm | seeds | accuracy % | vs random (paired) | mismatched kept | smallest / largest class |",
                  "|---|---:|---:|---:|---:|---:|"]
        rnd = {r["seed"]: 100 * r["acc"] for r in rs if r["arm"] == "random"}
        for arm in ARMS:
            a = [r for r in rs if r["arm"] == arm]
            if not a:
                continue
            m, h = mean_ci([100 * r["acc"] for r in a])
            d = ""
            if arm != "random":
                dm, dh, n = paired({r["seed"]: 100 * r["acc"] for r in a}, rnd)
                d = f"{dm:+.2f} ± {dh:.2f}" if n > 1 else f"{dm:+.2f}"
            lines.append(f"| {arm} | {len(a)} | {m:.2f} ± {h:.2f} | {d} | {100 * np.mean([r['mismatched'] for r in a]):.1f} % | "
                         f"{min(r['class_min'] for r in a)} / {max(r['class_max'] for r in a)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--mismatch", default="0.1,0.4", help="caption noise shares, comma-separated")
    p.add_argument("--proxy", default="pool,other", help="proxies: pool (1 epoch on the pool), other (4 on other pairs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "clipcov_account.jsonl")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--write", type=Path, help="put the tables in this file's section")
    args = p.parse_args(argv)
    runs = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    if not args.report_only:
        have = {(r["mismatch"], r["proxy"]) for r in runs}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for mm in (float(v) for v in args.mismatch.split(",")):
            for proxy in args.proxy.split(","):
                if (mm, proxy) in have:
                    continue
                new = _config(args, mm, proxy)
                with args.out.open("a") as fh:
                    fh.writelines(json.dumps(r) + "\n" for r in new)
                runs += new
    text = _report(runs, "python bench/clipcov_account.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print(text)
    if args.write:
        replace_section(args.write, SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
