"""Named scenarios for ``nessa simulate --scenario NAME``.

Each scenario fixes a data set, a cluster and a trainer; every figure that differs from the
dataclass defaults carries its own source in :data:`SCENARIO_SOURCES` (rendered into
SIMULATION.md and ``nessa simulate --sources``). MAC and model-size figures of the
project's own models are counted from ``host.models`` by :mod:`sim.perf.macs`
(``tests/sim/test_scenarios.py`` recounts them).
"""

from __future__ import annotations

from typing import Callable

from .params import Dataset, Fpga, Scenario, Selection, Storage, Trainer

__all__ = ["SCENARIOS", "SCENARIO_SOURCES", "get_scenario", "scenario_names"]

_POW2_TO_256 = tuple(2**i for i in range(9))  # 1, 2, 4, ..., 256

from .macs import SMALL_CNN_28_BYTES, SMALL_CNN_28_MACS  # noqa: E402 (counted from host.models)

# Counted by sim.perf.macs from host.models (tests/sim/test_scenarios.py recounts them).
RESNET20_32_MACS, RESNET20_32_BYTES = 40_813_184, 1_096_336
RESNET20_64_C1000_MACS, RESNET20_64_C1000_BYTES = 163_314_176, 1_353_736
# torchvision ResNet-50 (IMAGENET1K_V1) model card: 4.09 GFLOPS (multiply-adds), 25,557,032 parameters.
RESNET50_MACS, RESNET50_BYTES = 4.09e9, 25_557_032 * 4

_A = "assumption: "
_TRAIN_SRC = "trainer.train_s_per_sample"
# Every scenario field that differs from the dataclass default, with its source.
SCENARIO_SOURCES: dict[str, dict[str, str]] = {
    "fashion-mnist-1": {
        _TRAIN_SRC: _A + "1e-5 s (small CNN on one A100 is launch-bound: ~1.3 ms per 128-sample step)",
        "trainer.gpus": _A + "one GPU",
        "trainer.gpu_hosts": _A + "one GPU host",
        "storage.drives": "scenario: one SmartSSD",
    },
    "cifar10-1": {
        "dataset.num_samples": "CIFAR-10 train size (Krizhevsky 2009)",
        "dataset.sample_bytes": "CIFAR-10: 32x32x3 uint8",
        "dataset.num_classes": "CIFAR-10",
        "dataset.model_macs": "resnet20 of host.models at 32x32, counted by sim.perf.macs",
        "dataset.model_bytes": "resnet20 float32 state, counted by sim.perf.macs",
        _TRAIN_SRC: _A + "4e-5 s (ResNet-20 on one A100 is launch-bound: ~5 ms per 128-sample step)",
        "trainer.gpus": _A + "one GPU",
        "trainer.gpu_hosts": _A + "one GPU host",
        "storage.drives": "scenario: one SmartSSD",
    },
    "imagenet-8": {
        "dataset.num_samples": "ImageNet-1k train size (Russakovsky et al. 2015)",
        "dataset.sample_bytes": _A + "stored decoded at 3x224x224 uint8 (the Store keeps fixed-size raw samples)",
        "dataset.num_classes": "ImageNet-1k",
        "dataset.model_macs": "torchvision ResNet-50 model card: 4.09 GFLOPS (multiply-adds)",
        "dataset.model_bytes": "torchvision ResNet-50 model card: 25,557,032 parameters x 4 bytes",
        _TRAIN_SRC: _A + "1/2,700 s per GPU (ResNet-50 AMP on an A100, order of NVIDIA's published training throughput)",
        "trainer.gpus": _A + "one GPU host with 8 GPUs",
        "trainer.gpu_hosts": _A + "one GPU host",
        "storage.drives": "scenario: 8 SmartSSDs in one storage host",
    },
    "web-1b": {
        "dataset.num_samples": _A + "a web-scale set of 1e9 samples",
        "dataset.sample_bytes": _A + "3x64x64 uint8 (downsampled-ImageNet size, Chrabaszcz et al. 2017)",
        "dataset.num_classes": _A + "1,000 classes",
        "dataset.model_macs": "resnet20 of host.models at 64x64 with 1,000 classes, counted by sim.perf.macs",
        "dataset.model_bytes": "resnet20 (64x64, 1,000 classes) float32 state, counted by sim.perf.macs",
        _TRAIN_SRC: _A + "5e-5 s per GPU (launch-bound small ResNet)",
        "trainer.gpus": _A + "8 GPU hosts x 8 GPUs",
        "trainer.gpu_hosts": _A + "8 GPU hosts",
        "storage.drives": "scenario: swept 1..256 SmartSSDs, 8 per storage host",
    },
}


def _src(name: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(SCENARIO_SOURCES[name].items()))


def _fashion_mnist_1() -> Scenario:
    return Scenario(
        name="fashion-mnist-1",
        description="Fashion-MNIST on one SmartSSD, small CNN, one GPU",
        dataset=Dataset("fashion-mnist", 60_000, 784, 10, 0, SMALL_CNN_28_MACS, SMALL_CNN_28_BYTES),
        storage=Storage(drives=1, storage_hosts=1),
        fpga=Fpga(),
        trainer=Trainer(gpus=1, gpu_hosts=1, train_s_per_sample=1e-5),
        selection=Selection(),
        drive_counts=(1, 2, 4),
        source_overrides=_src("fashion-mnist-1"),
    )


def _cifar10_1() -> Scenario:
    return Scenario(
        name="cifar10-1",
        description="CIFAR-10 on one SmartSSD, ResNet-20, one GPU",
        dataset=Dataset("cifar10", 50_000, 3 * 32 * 32, 10, 0, RESNET20_32_MACS, RESNET20_32_BYTES),
        storage=Storage(drives=1, storage_hosts=1),
        fpga=Fpga(),
        trainer=Trainer(gpus=1, gpu_hosts=1, train_s_per_sample=4e-5),
        selection=Selection(),
        drive_counts=(1, 2, 4),
        source_overrides=_src("cifar10-1"),
    )


def _imagenet_8() -> Scenario:
    return Scenario(
        name="imagenet-8",
        description="ImageNet-1k on eight SmartSSDs, ResNet-50, 8 GPUs",
        dataset=Dataset("imagenet-1k", 1_281_167, 3 * 224 * 224, 1000, 0, RESNET50_MACS, RESNET50_BYTES),
        storage=Storage(drives=8, storage_hosts=1),
        fpga=Fpga(),
        trainer=Trainer(gpus=8, gpu_hosts=1, train_s_per_sample=1 / 2700),
        selection=Selection(),
        drive_counts=(1, 2, 4, 8, 16, 32),
        source_overrides=_src("imagenet-8"),
    )


def _web_1b() -> Scenario:
    return Scenario(
        name="web-1b",
        description="1e9 web images (3x64x64) on 1..256 SmartSSDs, ResNet-20 (64x64), 64 GPUs",
        dataset=Dataset("web-1b", 1_000_000_000, 3 * 64 * 64, 1000, 0, RESNET20_64_C1000_MACS, RESNET20_64_C1000_BYTES),
        storage=Storage(drives=256, storage_hosts=32),
        fpga=Fpga(),
        trainer=Trainer(gpus=64, gpu_hosts=8, train_s_per_sample=5e-5),
        selection=Selection(),
        drive_counts=_POW2_TO_256,
        source_overrides=_src("web-1b"),
    )


def _this_machine() -> Scenario:
    """This machine as measured by ``python -m sim.calibrate`` (sim/perf/calibration.json)."""
    import json

    from sim.perf.this_machine import CALIBRATION_FILE, this_machine_scenario

    if not CALIBRATION_FILE.is_file():
        raise ValueError(f"no calibration yet: run `python -m sim.calibrate` to write {CALIBRATION_FILE}")
    cal = json.loads(CALIBRATION_FILE.read_text())
    demo = cal.get("demo", {})
    return this_machine_scenario(cal, fraction=demo.get("fraction", 0.1), reselect_every=demo.get("reselect_every", 3))


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "fashion-mnist-1": _fashion_mnist_1,
    "cifar10-1": _cifar10_1,
    "imagenet-8": _imagenet_8,
    "web-1b": _web_1b,
    "this-machine": _this_machine,
}


def scenario_names() -> list[str]:
    return sorted(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """A fresh copy of the named scenario; ``KeyError`` message lists the known names."""
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}") from None
