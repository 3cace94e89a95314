"""SAS and ClipCov at selection scale (issue #17 item 5): N unlabelled D-wide embeddings.

Builds a real store of N one-byte samples, all labelled 0 (unlabelled: the latent classes come
from k-means), with two float16 embedding columns written by
``storage_service.columns.write_embedding_column``: ``emb/image`` (clustered: 50 Gaussian modes)
and ``emb/text`` (the image embedding plus noise, a caption in the same space). Each strategy
then runs in its own child process, as the service's worker would: open the store, read the
column(s) (``Store.embeddings``, float32), ``sas_select`` / ``clipcov_select`` at the fraction
on the cpu backend with ``--latent-classes`` k-means classes, on ``--threads`` threads (faiss
and BLAS). Reported per strategy: wall seconds, CPU seconds (user + system, all threads), peak
RSS of the child (``ru_maxrss``: store read, k-means, greedy). Goal (issue #17): <= 10 min and
<= 2 GB on 2 cores at N = 1,000,000, D = 64, 10 %.

    python bench/embed_select.py                      # full size, table into BENCHMARKS.md
    python bench/embed_select.py --n 20000 --no-write # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._markdown import replace_section  # noqa: E402

HEADING = "## SAS and ClipCov at selection scale (unlabelled embeddings)"


def _build(store_dir: Path, n: int, d: int, seed: int) -> None:
    from storage_service.columns import write_embedding_column
    from storage_service.ingest import write_store

    rng = np.random.default_rng(seed)
    write_store(store_dir, np.zeros((n, 1, 1, 1), np.uint8), np.zeros(n, np.int64), name="emb-scale")
    centres = rng.normal(size=(50, d)).astype(np.float32)
    img = np.empty((n, d), np.float16)
    txt = np.empty((n, d), np.float16)
    for s in range(0, n, 1 << 17):  # in blocks: the builder's memory is not what is measured
        m = min(n, s + (1 << 17)) - s
        x = centres[rng.integers(0, 50, m)] + 0.5 * rng.normal(size=(m, d)).astype(np.float32)
        img[s : s + m] = x
        txt[s : s + m] = x + 0.3 * rng.normal(size=(m, d)).astype(np.float32)
    write_embedding_column(store_dir, "emb/image", img, dtype="float16", source="bench:clustered")
    write_embedding_column(store_dir, "emb/text", txt, dtype="float16", source="bench:clustered+noise")


def _child(args) -> None:
    import resource

    from threadpoolctl import threadpool_limits

    import faiss

    from host.clipcov import clipcov_select
    from host.sas import sas_select
    from storage_service.store import Store

    faiss.omp_set_num_threads(args.threads)
    w0, c0 = time.perf_counter(), time.process_time()
    with threadpool_limits(args.threads):
        st = Store(args.store)
        img = st.embeddings("emb/image")
        if args.child in ("sas", "sas-fl"):
            r = sas_select(img, args.fraction, labels=st.labels, latent=args.latent_classes, seed=0, backend="cpu",
                           consume=True, objective="facility-location" if args.child == "sas-fl" else "reference")
        else:
            r = clipcov_select(img, st.embeddings("emb/text"), args.fraction, labels=st.labels,
                               latent=args.latent_classes, seed=0, consume=True)
    out = dict(strategy=args.child, selected=int(len(r.ids)), classes=int(np.unique(r.classes).size),
               wall=time.perf_counter() - w0, cpu=time.process_time() - c0,
               rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--latent-classes", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    p.add_argument("--child", choices=["sas", "sas-fl", "clipcov"], help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="nessa-embsel-") as tmp:
        store = Path(tmp) / "store"
        t = time.perf_counter()
        _build(store, args.n, args.dim, seed=0)
        build_s = time.perf_counter() - t
        for strat in ("sas", "sas-fl", "clipcov"):
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            cmd = [sys.executable, __file__, "--child", strat, "--store", str(store), "--fraction", str(args.fraction),
                   "--latent-classes", str(args.latent_classes), "--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if res.returncode != 0:
                sys.stderr.write(res.stderr)
                return res.returncode
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    command = "python bench/embed_select.py" + ("" if args.n == 1_000_000 else f" --n {args.n}")
    lines = [HEADING, "",
             f"{args.n:,} unlabelled {args.dim}-d float16 embeddings (50 Gaussian modes; caption = image + noise) "
             f"as columns `emb/image`, `emb/text` of a real store (written by `write_embedding_column`, "
             f"{build_s:.0f} s), {args.fraction:.0%} selected, {args.latent_classes} k-means latent classes, cpu backend, "
             f"{args.threads} threads; each strategy in its own process (store read + k-means + selection). "
             "Goal: <= 10 min and <= 2 GB on 2 cores.", "",
             "| strategy | selected | wall (s) | CPU (s) | peak RSS (MiB) | goal met |",
             "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        ok = r["wall"] <= 600 and r["rss_mib"] <= 2048
        lines.append(f"| {r['strategy']} | {r['selected']:,} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_mib']:.0f} | "
                     f"{'yes' if ok else 'no'} |")
    lines += ["", "sas: per latent class, each row's mean clipped cosine similarity to a 4,096-row sample of its "
              "class, top ceil(f n_c) (the reference's ranking); sas-fl: per latent class, random pools of at most "
              "4,096, facility location per pool (lazy greedy); clipcov: the reference's score (cross-modal coverage "
              "from a 4,096-pair sample of the class) and global greedy with a coverage deduction every 200 picks "
              "of a class. No step holds an n x n matrix. Wall time includes waiting on the shared machine; CPU "
              "time is the process's own.", "", f"Command: `{command}`", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
