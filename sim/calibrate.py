"""Calibrate the performance model on this machine and check it against a measured demo run.

    python -m sim.calibrate [--data FASHION_MNIST_DIR] [--out sim/perf/calibration.json]
                            [--demo-dir DIR | --run-demo] [--epochs 5 --subset-epochs 15 --reselect-every 3]

Step 1 measures, each in isolation, the inputs the model needs for this machine (no GPU, no
SmartSSD: the storage host is this machine, the "GPU" is its CPU, selection is the CPU backend):

* ``train_s_per_sample``  — small_cnn SGD steps on Fashion-MNIST batches of 128 (the demo's model);
* ``stream_bps``          — the storage service's StreamSamples over loopback gRPC, full train set;
* ``read_bps``            — ``Store.take`` of the whole train set (shards memory-mapped);
* ``feature_s_per_sample``— ``host.gradient_features`` on 10,000 samples;
* ``select_ops``          — ``host.select(optimizer="lazy")`` on *synthetic* clustered features
  (20,000 x 10, 10 classes), divided into the model's operation count for that workload — a
  different workload from the demo's, so the prediction below is not fitted to the demo.

Step 2 builds the ``this-machine`` scenario from them and predicts the wall time (training +
selection, the trainer's ``wall_s``) of each run of ``nessa demo``; step 3 reads the demo's
metrics (``--demo-dir``, or runs the demo with ``--run-demo``) and reports the error. With
``--run-demo`` the inputs are measured before and after the demo (the machine is shared) and
the model uses their mean; the before/after spread is recorded next to the error.
Everything is written to ``--out`` (JSON, ``version`` 1), which ``nessa simulate --scenario
this-machine`` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from sim.perf.this_machine import (CALIBRATION_FILE, SELECT_WORKLOAD, _workload_ops, compare_demo, predict_run,
                                   recompare, this_machine_scenario)

__all__ = ["measure", "this_machine_scenario", "predict_run", "compare_demo", "recompare", "main", "CALIBRATION_FILE",
           "SELECT_WORKLOAD"]

_VERSION = 1


class _Clock:
    """Wall and process-CPU seconds of a block (CPU time is what a shared machine does not steal)."""

    def __enter__(self) -> "_Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _timed(fn, *args, **kw):
    with _Clock() as c:
        out = fn(*args, **kw)
    return out, c


def measure(data: Path, work: Path, *, threads: int | None = None) -> dict:
    """Micro-measurements of this machine (see module docstring); takes about a minute."""
    import numpy as np
    import torch

    import host
    from host.models import build_model, to_input
    from storage_service.client import StorageClient
    from storage_service.ingest import ingest
    from storage_service.server import create_server
    from storage_service.store import Store

    if threads:
        torch.set_num_threads(threads)
    root = work / "store"
    ingest(data, root / "fashion-mnist", progress=False)
    st = Store(root / "fashion-mnist" / "train")
    m = st.manifest
    shape = tuple(m.sample_shape)
    n = len(st)
    ids = np.arange(n, dtype=np.int64)

    # Store read rate (the "SSD read" stage: page cache after the first pass).
    st.take(ids)
    (samples, labels), c_read = _timed(st.take, ids)

    # Training step time of the demo's model.
    torch.manual_seed(0)
    model = build_model("small_cnn", shape, m.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    bs, steps, warm = 128, 60, 5
    model.train()

    def step(i: int) -> None:
        sl = slice((i * bs) % (n - bs), (i * bs) % (n - bs) + bs)
        x = to_input(samples[sl], shape)
        y = torch.as_tensor(labels[sl], dtype=torch.long)
        loss = (torch.nn.functional.cross_entropy(model(x), y, reduction="none") * torch.ones(bs)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(warm):
        step(i)
    with _Clock() as c_train:
        for i in range(warm, warm + steps):
            step(i)

    # Feature extraction rate (what the storage host runs at each reselection).
    model.eval()
    nf = 10_000
    _, c_feat = _timed(host.gradient_features, model, samples[:nf], labels[:nf], sample_shape=shape, batch_size=512)

    # Selection rate on synthetic clustered features (not the demo's features).
    rng = np.random.default_rng(0)
    c, per, d, frac = (SELECT_WORKLOAD[k] for k in ("classes", "per_class", "dim", "fraction"))
    centers = rng.normal(size=(c * 5, d)).astype(np.float32) * 3
    feats = (centers[rng.integers(0, c * 5, c * per)] + rng.normal(size=(c * per, d))).astype(np.float32)
    labs = np.repeat(np.arange(c), per)
    host.select(feats[:2000], labs[:2000], frac, optimizer="lazy")  # warm-up (imports, allocators)
    _, c_sel = _timed(host.select, feats, labs, frac, optimizer="lazy")
    ops = _workload_ops(SELECT_WORKLOAD)

    # Loopback gRPC stream of the full train set (what the trainer receives; server in-process,
    # so its CPU time is counted too, as in `nessa demo`).
    server, port = create_server("127.0.0.1:0", store_root=root)  # returned already started
    try:
        with StorageClient(f"127.0.0.1:{port}") as client:
            list(client.stream_samples("fashion-mnist/train", batch_bytes=1 << 20))  # warm-up
            with _Clock() as c_stream:
                got = sum(b.nbytes for b in client.stream_samples("fashion-mnist/train", batch_bytes=1 << 20))
    finally:
        server.stop(grace=None)
    out = {
        "select_workload": dict(SELECT_WORKLOAD),
        "num_samples": n,
        "sample_bytes": int(np.prod(shape)),
        "num_classes": int(m.num_classes),
        "torch_threads": torch.get_num_threads(),
        "stream_bytes": int(got),
    }
    for clock in ("wall", "cpu"):
        sfx = "" if clock == "wall" else "_cpu"
        t = {k: max(getattr(v, clock), 1e-9) for k, v in
             (("read", c_read), ("train", c_train), ("feat", c_feat), ("sel", c_sel), ("stream", c_stream))}
        out.update({
            f"train_s_per_sample{sfx}": t["train"] / (steps * bs),
            f"feature_s_per_sample{sfx}": t["feat"] / nf,
            f"select_ops{sfx}": ops / t["sel"],
            f"select_seconds_synthetic{sfx}": t["sel"],
            f"read_bps{sfx}": samples.nbytes / t["read"],
            f"stream_bps{sfx}": got / t["stream"],
        })
    return out


def _run_demo(data: Path, demo_dir: Path, args: argparse.Namespace) -> None:
    """``nessa demo`` as a user runs it (its own process: the model sees the command's whole cost)."""
    import subprocess

    cmd = [sys.executable, "-m", "nessa", "demo", "--data", str(data), "--out-dir", str(demo_dir),
           "--fraction", str(args.fraction), "--epochs", str(args.epochs), "--reselect-every", str(args.reselect_every),
           "--subset-epochs", str(args.subset_epochs or 3 * args.epochs), "--no-progress"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="Fashion-MNIST IDX folder (default: the demo's search order)")
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--demo-dir", type=Path, help="out dir of a finished `nessa demo` run to compare with")
    g.add_argument("--run-demo", action="store_true", help="run `nessa demo` now (a few minutes) and compare")
    ap.add_argument("--epochs", type=int, default=5, help="demo: full-data epochs (as `nessa demo`)")
    ap.add_argument("--subset-epochs", type=int, default=None, help="demo: subset epochs (default 3x)")
    ap.add_argument("--reselect-every", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)

    from storage_service.ingest.locate import find_fashion_mnist

    data, looked = find_fashion_mnist(args.data)
    if data is None:
        print(f"calibrate: Fashion-MNIST not found (looked in {', '.join(looked)}); give --data", file=sys.stderr)
        return 2
    def _measure() -> dict:
        with tempfile.TemporaryDirectory(prefix="nessa-cal-") as tmp:
            return measure(data, Path(tmp), threads=args.threads)

    meas = _measure()
    cal = {
        "version": _VERSION,
        "command": "python -m sim.calibrate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "measured": meas,
        "demo": {"fraction": args.fraction, "reselect_every": args.reselect_every},
    }
    sc = this_machine_scenario(cal, fraction=args.fraction, reselect_every=args.reselect_every)
    for k, v in meas.items():
        print(f"measured {k:28s} {v:.6g}" if isinstance(v, float) else f"measured {k:28s} {v}")
    demo_dir = args.demo_dir
    if args.run_demo:
        demo_dir = Path(tempfile.mkdtemp(prefix="nessa-cal-demo-"))
        t0 = time.perf_counter()
        _run_demo(data, demo_dir, args)
        cal["demo"]["seconds"] = time.perf_counter() - t0
        print(f"demo metrics and plots: {demo_dir}")
        cal["demo"]["epochs"] = args.epochs
        cal["demo"]["subset_epochs"] = args.subset_epochs or 3 * args.epochs
        # The machine is shared: measure again after the demo, model with the mean, and
        # report how far the two measurements lie apart (the noise the error must be read against).
        after = _measure()
        cal["measured_before"], cal["measured_after"] = meas, after
        cal["measured"] = meas = {k: (v + after[k]) / 2 if isinstance(v, float) else v for k, v in meas.items()}
        cal["measurement_spread"] = {k: abs(after[k] - v) / max(abs(meas[k]), 1e-30)
                                     for k, v in cal["measured_before"].items() if isinstance(v, float)}
        sc = this_machine_scenario(cal, fraction=args.fraction, reselect_every=args.reselect_every)
        for k, v in cal["measurement_spread"].items():
            print(f"before/after spread {k:28s} {100 * v:.1f}%")
    if demo_dir is not None:
        sc_cpu = this_machine_scenario(cal, fraction=args.fraction, reselect_every=args.reselect_every, clock="cpu")
        rows = compare_demo(sc, demo_dir, sc_cpu)
        cal["comparison"] = rows
        print(f"\n{'run':10s} {'epochs':>6s} {'wall s':>8s} {'model':>8s} {'error':>7s} {'serial':>8s} {'error':>7s}"
              f" {'cpu s':>8s} {'model':>8s} {'error':>7s}")
        for r in rows:
            cpu = (f" {r['measured_cpu_s']:8.1f} {r['predicted_cpu_s']:8.1f} {100 * r['error_cpu']:+6.1f}%"
                   if "measured_cpu_s" in r else "")
            print(f"{r['run']:10s} {r['epochs']:6d} {r['measured_wall_s']:8.1f} {r['predicted_wall_s']:8.1f} "
                  f"{100 * r['error']:+6.1f}% {r['predicted_serial_wall_s']:8.1f} {100 * r['error_serial']:+6.1f}%{cpu}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cal, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
