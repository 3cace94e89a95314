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
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["measure", "this_machine_scenario", "predict_run", "compare_demo", "recompare", "main", "CALIBRATION_FILE",
           "SELECT_WORKLOAD"]

CALIBRATION_FILE = Path(__file__).resolve().parent / "perf" / "calibration.json"
_VERSION = 1
#: The synthetic selection workload timed for the CPU greedy rate (stored with the timings,
#: so the rate is re-derived from seconds whenever the model's operation count changes).
SELECT_WORKLOAD = {"classes": 10, "per_class": 2000, "dim": 10, "fraction": 0.1}


def _workload_ops(w: dict) -> float:
    from sim.perf.params import Optimizer
    from sim.perf.work import budget, host_ops

    per = int(w["per_class"])
    return int(w["classes"]) * host_ops(per, budget(per, float(w["fraction"])), int(w["dim"]), Optimizer.LAZY, 0.01)


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


def this_machine_scenario(cal: dict, *, fraction: float = 0.1, reselect_every: int = 3, clock: str = "wall"):
    """The scenario of this machine: one storage host (CPU engine) feeding a CPU trainer.

    ``clock="cpu"`` builds it from CPU-second rates instead: its (serial) predictions are then
    CPU seconds, comparable with the trainer's ``cpu_s`` whatever else runs on the machine.
    """
    from sim.perf.params import Cpu, Dataset, Engine, Optimizer, Scenario, Selection, Storage, Trainer, Fpga
    from sim.perf.scenarios import SMALL_CNN_28_BYTES, SMALL_CNN_28_MACS

    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    raw = cal["measured"]
    meas = dict(raw) if clock == "wall" else {k[:-4]: v for k, v in raw.items() if k.endswith("_cpu")} | {
        k: raw[k] for k in ("num_samples", "sample_bytes", "num_classes")}
    # The greedy rate: the timed synthetic workload's operation count (under the current model)
    # over its measured seconds.
    sfx = "" if clock == "wall" else "_cpu"
    if f"select_seconds_synthetic{sfx}" in raw:
        meas["select_ops"] = _workload_ops(raw.get("select_workload", SELECT_WORKLOAD)) / raw[f"select_seconds_synthetic{sfx}"]
    src = f"measured on this machine by sim/calibrate.py ({clock} clock)"
    inf = 1e15  # links that do not exist here (PCIe to a GPU): never the bottleneck
    over = {f: src for f in ("storage.ssd_read_bw", "storage.host_nic_bw", "trainer.train_s_per_sample",
                             "cpu.feature_s_per_sample", "cpu.select_ops", "trainer.forward_fraction",
                             "trainer.gpu_gemm_macs", "trainer.gpu_select_ops")}
    over["trainer.gpu_step_s"] = "no GPU here: greedy steps cost no kernel launch"
    over.update({"storage.host_pcie_bw": "not a bottleneck here (no PCIe hop: memory-mapped store)",
                 "storage.drive_link_bw": "not a bottleneck here (no PCIe hop: memory-mapped store)",
                 "trainer.gpu_pcie_bw": "not a bottleneck here (CPU trainer)",
                 "trainer.host_nic_bw": "loopback: the storage side's stream rate is the limit"})
    return Scenario(
        name="this-machine",
        description=f"this machine ({cal['machine']['cpus']} CPUs): CPU storage host over loopback gRPC, CPU trainer",
        dataset=Dataset("fashion-mnist", meas["num_samples"], meas["sample_bytes"], meas["num_classes"], 0,
                        SMALL_CNN_28_MACS, SMALL_CNN_28_BYTES),
        storage=Storage(drives=1, storage_hosts=1, ssd_read_bw=meas["read_bps"], drive_link_bw=inf,
                        host_pcie_bw=inf, host_nic_bw=meas["stream_bps"]),
        fpga=Fpga(),
        # (b) here = selection inside the trainer on this CPU: features at the measured rate
        # (as a fraction of a training step), the greedy at the measured CPU rate.
        trainer=Trainer(gpus=1, gpu_hosts=1, train_s_per_sample=meas["train_s_per_sample"], gpu_pcie_bw=inf,
                        host_nic_bw=inf,
                        forward_fraction=min(1.0, meas["feature_s_per_sample"] / meas["train_s_per_sample"]),
                        gpu_gemm_macs=meas["select_ops"], gpu_select_ops=meas["select_ops"], gpu_step_s=0.0),
        selection=Selection(fraction=fraction, reselect_every=reselect_every, optimizer=Optimizer.LAZY),
        engine=Engine.CPU,
        cpu=Cpu(feature_s_per_sample=meas["feature_s_per_sample"], select_ops=meas["select_ops"]),
        drive_counts=(1,),
        source_overrides=tuple(sorted(over.items())),
    )


def predict_run(sc, strategy: str, epochs: int, *, serial: bool = False) -> float:
    """Predicted ``wall_s`` (training + selection, no evaluation) of one demo run.

    ``serial``: stages add up instead of overlapping (what a machine with too few cores for
    the pipeline does); the model's default is the pipelined ``max``.
    """
    from sim.perf.model import System, _stream, budget_total, selection_seconds

    tr = sc.trainer
    if strategy == "full":
        samples = sc.dataset.num_samples
    else:
        samples = budget_total(sc)
    stages = _stream(sc, samples, tr.train_s_per_sample)
    epoch = sum(stages.values()) if serial else max(stages.values())
    selections = math.ceil(epochs / sc.selection.reselect_every)
    select = sum(selection_seconds(sc, System.NESSA).values()) if strategy == "nessa" else 0.0
    return epochs * epoch + selections * select


def _final_records(demo_dir: Path) -> dict[str, dict]:
    out = {}
    for p in sorted(demo_dir.glob("*/metrics.jsonl")):
        lines = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        if lines:
            out[lines[-1]["strategy"]] = lines[-1]
    return out


def compare_demo(sc, demo_dir: Path, sc_cpu=None) -> list[dict]:
    """Predicted vs measured ``wall_s`` per demo run (pipelined and serial predictions), and,
    with ``sc_cpu`` (the CPU-clock scenario), predicted vs measured ``cpu_s``."""
    rows = []
    for strategy, rec in _final_records(demo_dir).items():
        epochs = int(rec["epoch"])
        pred = predict_run(sc, strategy, epochs)
        pred_serial = predict_run(sc, strategy, epochs, serial=True)
        meas = float(rec["wall_s"])
        row = {
            "run": rec.get("run", strategy), "strategy": strategy, "epochs": epochs,
            "measured_wall_s": meas, "measured_selection_s": float(rec.get("selection_s", 0.0)),
            "predicted_wall_s": pred, "error": (pred - meas) / meas,
            "predicted_serial_wall_s": pred_serial, "error_serial": (pred_serial - meas) / meas,
        }
        if sc_cpu is not None and rec.get("cpu_s"):
            cpu = float(rec["cpu_s"])
            pc = predict_run(sc_cpu, strategy, epochs, serial=True)  # one process: CPU work adds up
            row.update(measured_cpu_s=cpu, predicted_cpu_s=pc, error_cpu=(pc - cpu) / cpu)
        rows.append(row)
    return rows


def recompare(cal: dict) -> list[dict]:
    """The stored comparison's measured figures against the *current* model's predictions."""
    demo = cal.get("demo", {})
    kw = dict(fraction=demo.get("fraction", 0.1), reselect_every=demo.get("reselect_every", 3))
    sc, sc_cpu = this_machine_scenario(cal, **kw), this_machine_scenario(cal, clock="cpu", **kw)
    rows = []
    for r in cal.get("comparison", []):
        r = dict(r)
        pred = predict_run(sc, r["strategy"], r["epochs"])
        pred_serial = predict_run(sc, r["strategy"], r["epochs"], serial=True)
        r.update(predicted_wall_s=pred, error=(pred - r["measured_wall_s"]) / r["measured_wall_s"],
                 predicted_serial_wall_s=pred_serial,
                 error_serial=(pred_serial - r["measured_wall_s"]) / r["measured_wall_s"])
        if "measured_cpu_s" in r:
            pc = predict_run(sc_cpu, r["strategy"], r["epochs"], serial=True)
            r.update(predicted_cpu_s=pc, error_cpu=(pc - r["measured_cpu_s"]) / r["measured_cpu_s"])
        rows.append(r)
    return rows


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

    from trainer.demo import DemoOptions, find_fashion_mnist, run_demo

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
        run_demo(DemoOptions(data=data, out_dir=demo_dir, fraction=args.fraction, epochs=args.epochs,
                             subset_epochs=args.subset_epochs, reselect_every=args.reselect_every,
                             threads=args.threads, progress=False, log=lambda _msg: None))
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
