"""Soak: many clients streaming for a while, with model pushes and selections beside them.

Starts ``nessa serve`` in its own process on a store this script writes (a synthetic 28x28 set
the size of Fashion-MNIST's training split, and a small one that model-based selections run
on), then runs ``--clients`` streaming clients spread over ``--procs`` processes for
``--seconds``, while one thread pushes a small CNN every ``--push-every`` seconds and another
asks for a random selection every 2 s and a model-based (craig) one every 15 s. It samples the
server's resident memory every 0.25 s and, at the end, counts the files the server keeps.

Reported: rows and bytes streamed, throughput, errors by status code (streams, pushes,
selections), server RSS at start / peak / end, files and bytes in the state folder. A healthy
server: 0 errors, flat RSS after warm-up, state bounded by its retention setting.

    python bench/soak.py --clients 64 --seconds 60 --md RELIABILITY.md
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage_service.client import StorageClient, StorageError  # noqa: E402
from storage_service.ingest import write_store  # noqa: E402

BIG, SMALL = "soak/big", "soak/small"


def _write_stores(root: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    write_store(root / BIG, rng.integers(0, 256, (rows, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, rows), name="big")
    write_store(root / SMALL, rng.integers(0, 256, (2000, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 2000), name="small")


def _start_server(root: Path, workers: int) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "nessa", "serve", str(root), "--port", "0", "--workers", str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    line = proc.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stderr.read()}")
    return proc, int(m.group(1))


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _client_proc(port: int, threads: int, seconds: float, queue) -> None:
    """One process of streaming clients: ``threads`` threads, each its own StorageClient."""
    stop = time.monotonic() + seconds
    rows, nbytes, errors = [0], [0], collections.Counter()
    lock = threading.Lock()

    def loop(k: int) -> None:
        with StorageClient(f"127.0.0.1:{port}", timeout=60) as c:
            epoch = 0
            while time.monotonic() < stop:
                sel = ("full", None) if k % 2 else ("random", 0.1)
                try:
                    for b in c.stream_samples(BIG, selection=sel[0], fraction=sel[1], seed=k, epoch=epoch, batch_bytes=1 << 20):
                        with lock:
                            rows[0] += b.count
                            nbytes[0] += b.nbytes
                        if time.monotonic() >= stop:
                            break
                except StorageError as exc:
                    with lock:
                        errors[exc.code.name] += 1
                epoch += 1

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((rows[0], nbytes[0], dict(errors)))


def _pusher(port: int, stop: threading.Event, every: float, out: dict, lat: dict) -> None:
    from host.models import build_model

    model = build_model("small_cnn", (1, 28, 28), 10)
    version = 0
    with StorageClient(f"127.0.0.1:{port}", timeout=60) as c:
        while not stop.wait(every):
            version += 1
            t0 = time.perf_counter()
            try:
                c.push_model("small_cnn", model, version, dataset=SMALL)
                out["pushes"] += 1
                lat["push"].append(time.perf_counter() - t0)
            except StorageError as exc:
                out[f"push {exc.code.name}"] += 1


def _selector(port: int, stop: threading.Event, out: dict, lat: dict) -> None:
    with StorageClient(f"127.0.0.1:{port}", timeout=120) as c:
        last_model = time.monotonic()
        k = 0
        while not stop.wait(2.0):
            k += 1
            try:
                t0 = time.perf_counter()
                c.select(BIG, "random", 0.1, seed=k)
                out["selections"] += 1
                lat["select"].append(time.perf_counter() - t0)
                if time.monotonic() - last_model >= 15 and out["pushes"] > 0:  # with the latest pushed model
                    c.select(SMALL, "craig", 0.1, seed=k)
                    out["selections"] += 1
                    last_model = time.monotonic()
            except StorageError as exc:
                out[f"select {exc.code.name}"] += 1


def _state_usage(root: Path) -> tuple[int, int]:
    files = [p for p in (root / ".nessa").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--procs", type=int, default=4, help="client processes the clients are spread over")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rows", type=int, default=60000, help="rows in the streamed data set")
    ap.add_argument("--workers", type=int, default=32, help="the server's --workers")
    ap.add_argument("--push-every", type=float, default=0.5, help="seconds between model pushes")
    ap.add_argument("--md", help="append the table to this Markdown file")
    args = ap.parse_args(argv)
    for name in ("clients", "procs", "rows", "workers"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    if not args.seconds > 0 or not args.push_every > 0:
        ap.error("--seconds and --push-every must be > 0")

    with tempfile.TemporaryDirectory(prefix="nessa-soak-") as tmp:
        root = Path(tmp)
        _write_stores(root, args.rows)
        server, port = _start_server(root, args.workers)
        rss, rss_t, sampling = [], [], threading.Event()

        def sample() -> None:
            while not sampling.wait(0.25):
                rss.append(_rss_mib(server.pid))
                rss_t.append(time.perf_counter())

        try:
            rss.append(_rss_mib(server.pid))
            rss_t.append(time.perf_counter())
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            side, stop, lat = collections.Counter(), threading.Event(), collections.defaultdict(list)
            pusher = threading.Thread(target=_pusher, args=(port, stop, args.push_every, side, lat))
            selector = threading.Thread(target=_selector, args=(port, stop, side, lat))
            pusher.start()
            selector.start()
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            per = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
            t0 = time.perf_counter()
            rss_t.append(t0)
            procs = [ctx.Process(target=_client_proc, args=(port, n, args.seconds, queue)) for n in per if n]
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            wall = time.perf_counter() - t0
            for p in procs:
                p.join()
            stop.set()
            pusher.join()
            selector.join()
            sampling.set()
            alive = server.poll() is None
            files, state_bytes = _state_usage(root)
        finally:
            server.terminate()
            server.wait(60)

    rows = sum(r[0] for r in results)
    nbytes = sum(r[1] for r in results)
    errors = collections.Counter()
    for r in results:
        errors.update(r[2])
    side_errors = {k: v for k, v in side.items() if " " in k}
    # RSS when a quarter, half, three quarters and all of the clients' time had passed: flat after
    # warm-up is healthy, a steady climb is a leak.
    t_start = rss_t[1] if len(rss_t) > 1 else rss_t[0]
    quarters = [rss[min(range(len(rss)), key=lambda i: abs(rss_t[i] - (t_start + q * wall / 4)))] for q in (1, 2, 3, 4)]

    def p50_max(xs: list[float]) -> str:
        return f"{np.median(xs):.2f} / {max(xs):.2f}" if xs else "-"

    table = [
        "| clients | seconds | rows streamed | GB | MB/s | stream errors | pushes (s p50 / max) | selections (s p50 / max) | push/select errors | server alive | RSS start / peak (MiB) | RSS at 1/4, 1/2, 3/4, end | state files (MB) |",
        "|---:|---:|---:|---:|---:|---|---|---|---|---|---|---|---|",
        f"| {args.clients} | {wall:.0f} | {rows:,} | {nbytes / 1e9:.2f} | {nbytes / 1e6 / wall:.0f} | {dict(errors) or 0} | {side['pushes']} ({p50_max(lat['push'])}) | "
        f"{side['selections']} ({p50_max(lat['select'])}) | {side_errors or 0} | {'yes' if alive else 'NO'} | {rss[0]:.0f} / {max(rss):.0f} | "
        f"{', '.join(f'{r:.0f}' for r in quarters)} | {files} ({state_bytes / 1e6:.1f}) |",
    ]
    text = "\n".join(table)
    print(text)
    if args.md:
        cmd = "python bench/soak.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(args.md, "a") as f:
            f.write(f"\n`{cmd}` ({time.strftime('%Y-%m-%d')}, 2-core host):\n\n{text}\n")
    return 0 if alive and not errors and not side_errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
