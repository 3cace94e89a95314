"""Data selection for contrastive learning on Fashion-MNIST, paired seeds (issue #17 item 5).

    python bench/contrastive_study.py [--part simclr,clip] [--seeds 2] [--epochs 4] [--train-size 10000]
                                      [--sas-fractions 0.6,0.8] [--clip-fractions 0.05,0.1,0.3]
                                      [--simclr-arms random,sas,sas-fl] [--clip-arms random,clip-score,clipcov]
                                      [--eval test|val] [--mismatch 0.1] [--write BENCHMARKS.md]

(a) SimCLR (``simclr_cnn``, NT-Xent, two augmented views): ``full``, ``random@F``, ``sas@F`` (the
    reference's ranking) and ``sas-fl@F`` (facility location per pool) for F in ``--sas-fractions``; linear-probe accuracy (logistic regression on frozen features of
    the whole training sample, accuracy on the 10,000-image test split). SAS selects on
    ``emb/proxy``: the embeddings of a short SimCLR run on the full training sample (the proxy;
    its training, embedding and the selections are timed and reported).
(b) CLIP-style (``clip_cnn``, InfoNCE) on the synthetic Fashion-MNIST captions
    (storage_service/ingest/synthetic_captions.py: templates, attribute words and a share of
    mismatched captions): ``full``, ``random@F``, ``clip-score@F`` (the pairs with the highest
    own image–text similarity under the proxy CLIP model) and ``clipcov@F`` (selected by the
    service on ``emb/image`` + ``emb/text`` of the proxy); zero-shot accuracy on the test split
    from the caption templates. ``oracle-clean@F`` (ask for it in ``--clip-arms``) is a uniform
    subset of the pairs whose captions are *not* mismatched (ground truth no selector has): the
    most that filtering noise alone can give at this noise share (``--mismatch``).

``--eval val`` scores every run on a validation split instead of the test split: 5,000
Fashion-MNIST training images outside the training sample (seeded), for choosing settings
without looking at the test split (the selection protocol's rule); records carry their split
and the tables keep them apart.

Every arm of a seed trains the same number of optimizer steps (full data's ``--epochs``:
step-matched), from the same initialisation and augmentation draws (paired seeds); ``random``
is a uniform seeded subset (the label-free baseline the SAS/ClipCov papers use). Selections are
computed by a storage service over loopback gRPC (``StorageClient.select``), the columns written
next to the data with ``storage_service.columns``; training reads the selected ids' samples from
the store in memory (the trainer's streaming path is covered by ``nessa train --objective``'s
tests; here it would only add identical bytes). Hyper-parameters are fixed, not tuned. Each run is
appended to ``WORK/results.jsonl``; a re-run skips what is there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._markdown import replace_section  # noqa: E402
from bench._tta_stats import mean_ci, paired  # noqa: E402

SECTION = "## Data selection for contrastive learning: SAS and ClipCov (Fashion-MNIST, paired seeds)"
PROXY_SEED = 1000  # the proxies' seed, apart from the arms' seeds


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "contrastive")
    p.add_argument("--part", default="simclr,clip")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=4, help="full data's epochs; every arm trains as many steps")
    p.add_argument("--clip-epochs", type=int, default=0, help="(b)'s epochs (default: --epochs)")
    p.add_argument("--proxy-epochs", type=int, default=1)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--sas-fractions", default="0.6,0.8")
    p.add_argument("--clip-fractions", default="0.05,0.1,0.3")
    p.add_argument("--simclr-arms", default="random,sas,sas-fl", help="(a)'s subset arms, comma-separated")
    p.add_argument("--clip-arms", default="random,clip-score,clipcov",
                   help="(b)'s subset arms, comma-separated (also: oracle-clean)")
    p.add_argument("--eval", choices=["test", "val"], default="test",
                   help="score on the test split, or on 5,000 held-out training images (validation)")
    p.add_argument("--mismatch", type=float, default=0.10, help="share of mismatched synthetic captions")
    p.add_argument("--latent-classes", type=int, default=10)
    p.add_argument("--simclr-lr", type=float, default=3e-3)
    p.add_argument("--temperature", type=float, default=0.2, help="NT-Xent temperature")
    p.add_argument("--clip-lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--write", type=Path, help="replace this file's section with the tables")
    return p.parse_args(argv)


# -- data -------------------------------------------------------------------------------------
def _prepare(args) -> dict:
    """Stores under WORK/store: fm/train (stratified --train-size sample), fm/test; with captions."""
    from storage_service.columns import write_text_column
    from storage_service.ingest import write_store
    from storage_service.ingest.idx import FASHION_MNIST_CLASSES, load_idx_pair
    from storage_service.ingest.locate import find_fashion_mnist
    from storage_service.ingest.synthetic_captions import captions_for
    from storage_service.store import Store

    root = args.work / "store"
    train_dir, test_dir = root / "fm" / "train", root / "fm" / "test"
    names = list(FASHION_MNIST_CLASSES)
    prepared = root / "prepared.json"  # what the stores were built with (older work dirs: none)
    if prepared.exists() and json.loads(prepared.read_text())["mismatch"] != args.mismatch:
        raise SystemExit(f"{args.work} was prepared with --mismatch {json.loads(prepared.read_text())['mismatch']}; "
                         "use another --work for another share")
    if not prepared.exists():
        for old in args.work.glob("proxy_*.json"):  # their embedding columns go with the old store
            old.unlink()
        data, looked = find_fashion_mnist(None)
        if data is None:
            raise SystemExit(f"Fashion-MNIST not found (looked in {', '.join(looked)})")
        x, y = load_idx_pair(data / "train-images-idx3-ubyte.gz", data / "train-labels-idx1-ubyte.gz")
        tx, ty = load_idx_pair(data / "t10k-images-idx3-ubyte.gz", data / "t10k-labels-idx1-ubyte.gz")
        rng = np.random.default_rng(12345)
        per = args.train_size // len(names)
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in range(len(names))]))
        write_store(train_dir, x[keep], y[keep], name="fm/train", class_names=names, overwrite=True)
        rest = np.setdiff1d(np.arange(len(y)), keep)
        val = np.sort(np.random.default_rng(54321).choice(rest, 5000, replace=False))
        write_store(root / "fm" / "val", x[val], y[val], name="fm/val", class_names=names, overwrite=True)
        texts, wrong = captions_for(y[keep], seed=12345, images=x[keep], return_mismatched=True, mismatch=args.mismatch)
        write_text_column(train_dir, texts)
        np.save(root / "mismatched.npy", wrong)
        write_store(test_dir, tx, ty, name="fm/test", class_names=names, overwrite=True)
        prepared.write_text(json.dumps({"mismatch": args.mismatch, "train_size": args.train_size}))
    train, test = Store(train_dir), Store(root / "fm" / args.eval)
    x, y = train.take(np.arange(len(train)))
    tx, ty = test.take(np.arange(len(test)))  # the split runs are scored on (--eval)
    return {"root": root, "train_dir": train_dir, "x": x, "y": y, "tx": tx, "ty": ty, "names": names,
            "texts": train.texts(), "shape": tuple(x.shape[1:]), "wrong": np.load(root / "mismatched.npy")}


def _proxy(args, d: dict, kind: str) -> dict:
    """Train the proxy (short run on all the data), embed the training sample into columns."""
    from host.embedding import embed_images, embed_texts
    from storage_service.columns import write_embedding_column
    from trainer.clip_train import ClipConfig, train_clip
    from trainer.contrastive import ArrayBatches, SimCLRConfig, steps_for, train_simclr

    path = args.work / f"proxy_{kind}.json"
    if path.exists():
        return json.loads(path.read_text())
    n, b = len(d["y"]), args.batch_size
    steps = steps_for(n, b, args.proxy_epochs)
    t0 = time.process_time()
    if kind == "simclr":
        model, _ = train_simclr(ArrayBatches(d["x"], np.arange(n), b, PROXY_SEED), d["shape"],
                                SimCLRConfig(steps=steps, batch_size=b, seed=PROXY_SEED, lr=args.simclr_lr,
                                             temperature=args.temperature))
    else:
        model, _ = train_clip(ArrayBatches(d["x"], np.arange(n), b, PROXY_SEED, texts=d["texts"]), d["shape"],
                              ClipConfig(steps=steps, batch_size=b, seed=PROXY_SEED, lr=args.clip_lr))
    train_s = time.process_time() - t0
    t0 = time.process_time()
    img = embed_images(model, d["x"], d["shape"])
    cols = {"emb/proxy" if kind == "simclr" else "emb/image": img}
    if kind == "clip":
        cols["emb/text"] = embed_texts(model, d["texts"])
    embed_s = time.process_time() - t0
    for name, values in cols.items():
        write_embedding_column(d["train_dir"], name, values, dtype="float32", source=f"bench proxy {kind}", overwrite=True)
    info = {"steps": steps, "train_cpu_s": train_s, "embed_cpu_s": embed_s}
    if kind == "clip":  # own image-text similarity of each pair under the proxy
        info["score"] = np.einsum("nd,nd->n", img, cols["emb/text"]).tolist()
    path.write_text(json.dumps(info))
    return info


# -- selections ---------------------------------------------------------------------------------
def _ids_of(client, dataset: str, selection: str) -> np.ndarray:
    ids = [np.asarray(b.ids) for b in client.stream_samples(dataset, selection=selection, epoch=0, seed=0)]
    return np.sort(np.concatenate(ids)).astype(np.int64)


def _select(client, args, arm: str, fraction: float, seed: int, n: int, score, wrong) -> tuple[np.ndarray, float]:
    """-> (sorted ids of the arm's subset, storage-side seconds)."""
    if arm == "full":
        return np.arange(n), 0.0
    k = int(round(fraction * n))
    if arm == "random":
        return np.sort(np.random.default_rng([seed, 77]).choice(n, k, replace=False)), 0.0
    if arm == "clip-score":
        return np.sort(np.argsort(-np.asarray(score), kind="stable")[:k]), 0.0
    if arm == "oracle-clean":
        clean = np.flatnonzero(~wrong)
        return np.sort(np.random.default_rng([seed, 77]).choice(clean, k, replace=False)), 0.0
    options = {"embedding_column": "emb/proxy" if arm in ("sas", "sas-fl") else "emb/image",
               "latent_classes": args.latent_classes}
    if arm == "clipcov":
        options["text_embedding_column"] = "emb/text"
    t0 = time.perf_counter()
    info = client.select("fm/train", arm, fraction, seed=seed, backend="cpu", **options)
    wall = time.perf_counter() - t0
    return _ids_of(client, "fm/train", info.id), float(getattr(info, "seconds", 0.0) or wall)


# -- runs ----------------------------------------------------------------------------------------
def _train_eval(args, d: dict, kind: str, ids: np.ndarray, seed: int) -> dict:
    from trainer.clip_train import ClipConfig, train_clip
    from trainer.contrastive import ArrayBatches, SimCLRConfig, steps_for, train_simclr
    from trainer.probe import linear_probe, zero_shot

    n, b = len(d["y"]), args.batch_size
    epochs = (args.clip_epochs or args.epochs) if kind == "clip" else args.epochs
    steps = steps_for(n, b, epochs)
    t0 = time.process_time()
    if kind == "simclr":
        model, out = train_simclr(ArrayBatches(d["x"], ids, b, seed), d["shape"], SimCLRConfig(steps=steps, batch_size=b, seed=seed,
                                                                                                 lr=args.simclr_lr, temperature=args.temperature))
        train_s = time.process_time() - t0
        acc = linear_probe(model, d["x"], d["y"], d["tx"], d["ty"], d["shape"])
    else:
        from storage_service.ingest.synthetic_captions import TEMPLATES

        model, out = train_clip(ArrayBatches(d["x"], ids, b, seed, texts=d["texts"]), d["shape"],
                                ClipConfig(steps=steps, batch_size=b, seed=seed, lr=args.clip_lr))
        train_s = time.process_time() - t0
        acc = zero_shot(model, d["tx"], d["ty"], d["shape"], d["names"], TEMPLATES)
    return {"acc": acc, "steps": steps, "train_cpu_s": train_s, "final_loss": float(np.mean(out["losses"][-10:]))}


def _plan(args) -> list[tuple[str, str, float]]:
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    plan = []
    if "simclr" in parts:
        plan.append(("simclr", "full", 1.0))
        for f in (float(v) for v in args.sas_fractions.split(",")):
            plan += [("simclr", arm, f) for arm in args.simclr_arms.split(",") if arm]
    if "clip" in parts:
        plan.append(("clip", "full", 1.0))
        for f in (float(v) for v in args.clip_fractions.split(",")):
            plan += [("clip", arm, f) for arm in args.clip_arms.split(",") if arm]
    return plan


def main(argv=None) -> int:
    args = _parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = args.work / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    if not args.report_only:
        import torch

        with (args.work / "commands.txt").open("a") as fh:
            fh.write("python bench/contrastive_study.py " + " ".join(a for a in sys.argv[1:]) + "\n")

        from storage_service.client import StorageClient
        from storage_service.server import serve_local

        torch.set_num_threads(args.threads)
        d = _prepare(args)
        plan = _plan(args)
        proxies = {k: _proxy(args, d, k) for k in {kind for kind, _, _ in plan}}
        have = {(r["kind"], r["arm"], r["fraction"], r["seed"], r.get("eval", "test")) for r in done}
        with serve_local(d["root"]) as target, StorageClient(target) as client:
            for seed in range(args.seeds):
                for kind, arm, f in plan:
                    if (kind, arm, f, seed, args.eval) in have:
                        continue
                    ids, storage_s = _select(client, args, arm, f, seed, len(d["y"]), proxies[kind].get("score"), d["wrong"])
                    rec = {"kind": kind, "arm": arm, "fraction": f, "seed": seed, "num_selected": int(len(ids)),
                           "eval": args.eval, "mismatch": args.mismatch,
                           "mismatched": float(d["wrong"][ids].mean()),
                           "storage_s": storage_s, **_train_eval(args, d, kind, ids, seed)}
                    print(json.dumps(rec), flush=True)
                    with results.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    done.append(rec)
    text = _report(args, done)
    print(text)
    if args.write:
        replace_section(args.write, SECTION, text)
    return 0


def _report(args, runs: list[dict]) -> str:
    by = defaultdict(dict)
    for r in runs:
        if r.get("eval", "test") == args.eval:  # one split per table
            by[(r["kind"], r["arm"], r["fraction"])][r["seed"]] = r
    cmds = args.work / "commands.txt"
    shown = cmds.read_text().splitlines() if cmds.exists() else []
    lines = [SECTION, "", "Commands (each run appended to WORK/results.jsonl; the table is over all of them):", ""]
    lines += [f"    {c}" for c in shown] + [""]
    for kind, metric in (("simclr", "linear-probe accuracy"), ("clip", "zero-shot accuracy")):
        arms = sorted((k for k in by if k[0] == kind), key=lambda k: (-k[2], k[1]))
        if not arms:
            continue
        split = "test split" if args.eval == "test" else "validation split"
        lines += [f"**{kind}** ({metric} on the {split}, %, mean ± 95 % CI over paired seeds; Δ = paired difference)", "",
                  "| arm | fraction | seeds | accuracy | Δ vs random | Δ vs full | trainer CPU s | storage s | mismatched captions kept |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        full = {s: r["acc"] for s, r in by.get((kind, "full", 1.0), {}).items()}
        for key in arms:
            runs_k = by[key]
            acc = {s: r["acc"] for s, r in runs_k.items()}
            m, h = mean_ci([100 * a for a in acc.values()])
            rnd = {s: r["acc"] for s, r in by.get((kind, "random", key[2]), {}).items()}
            dr = "" if key[1] in ("random", "full") else _delta(acc, rnd)
            df = "" if key[1] == "full" else _delta(acc, full)
            cpu = np.mean([r["train_cpu_s"] for r in runs_k.values()])
            st = np.mean([r["storage_s"] for r in runs_k.values()])
            mis = f"{100 * np.mean([r['mismatched'] for r in runs_k.values()]):.1f} %" if kind == "clip" else ""
            lines.append(f"| {key[1]} | {key[2]:g} | {len(acc)} | {m:.2f} ± {h:.2f} | {dr} | {df} | {cpu:.0f} | {st:.2f} | {mis} |")
        lines.append("")
    for kind in ("simclr", "clip"):
        p = args.work / f"proxy_{kind}.json"
        if p.exists():
            info = json.loads(p.read_text())
            lines.append(f"Proxy ({kind}, {info['steps']} steps on all the data): training {info['train_cpu_s']:.0f} CPU s, "
                         f"embedding {info['embed_cpu_s']:.1f} CPU s.")
    return "\n".join(lines).rstrip() + "\n"


def _delta(a: dict, b: dict) -> str:
    m, h, k = paired({s: 100 * v for s, v in a.items()}, {s: 100 * v for s, v in b.items()})
    if k == 0:
        return ""
    return f"{m:+.2f} ± {h:.2f}" if k > 1 else f"{m:+.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
