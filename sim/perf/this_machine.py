"""This machine as the performance model sees it, from a calibration file.

``sim/calibrate.py`` measures this machine and writes ``calibration.json``; this module turns
that file into the ``this-machine`` scenario and compares the model's predictions with the
measured demo runs it records. It measures nothing itself, so the scenario table can read a
calibration without importing the measuring code (which drives a storage service).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sim.perf.macs import SMALL_CNN_28_BYTES, SMALL_CNN_28_MACS

__all__ = ["CALIBRATION_FILE", "SELECT_WORKLOAD", "this_machine_scenario", "predict_run", "compare_demo", "recompare"]

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"
#: The synthetic selection workload timed for the CPU greedy rate (stored with the timings,
#: so the rate is re-derived from seconds whenever the model's operation count changes).
SELECT_WORKLOAD = {"classes": 10, "per_class": 2000, "dim": 10, "fraction": 0.1}


def _workload_ops(w: dict) -> float:
    from sim.perf.params import Optimizer
    from sim.perf.work import budget, host_ops

    per = int(w["per_class"])
    return int(w["classes"]) * host_ops(per, budget(per, float(w["fraction"])), int(w["dim"]), Optimizer.LAZY, 0.01)


def this_machine_scenario(cal: dict, *, fraction: float = 0.1, reselect_every: int = 3, clock: str = "wall"):
    """The scenario of this machine: one storage host (CPU engine) feeding a CPU trainer.

    ``clock="cpu"`` builds it from CPU-second rates instead: its (serial) predictions are then
    CPU seconds, comparable with the trainer's ``cpu_s`` whatever else runs on the machine.
    """
    from sim.perf.params import Cpu, Dataset, Engine, Optimizer, Scenario, Selection, Storage, Trainer, Fpga

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
    from host.strategies import spec
    from sim.perf.model import System, _stream, budget_total, selection_seconds

    tr = sc.trainer
    if strategy == "full":
        samples = sc.dataset.num_samples
    else:
        samples = budget_total(sc)
    stages = _stream(sc, samples, tr.train_s_per_sample)
    epoch = sum(stages.values()) if serial else max(stages.values())
    selections = math.ceil(epochs / sc.selection.reselect_every)
    select = sum(selection_seconds(sc, System.NESSA).values()) if spec(strategy).needs_model else 0.0
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
