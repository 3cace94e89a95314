"""``nessa demo --data DIR`` takes every layout ``nessa ingest`` reads with a train and an eval split,
in DIR or in its only sub-folder; the model follows the sample size; a tiny CIFAR-10 folder runs
the whole demo (ingest, serve over loopback gRPC, full / random / selection training)."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

import nessa.demo as demo
from nessa.cli import main
from tests.store.test_ingest_folders import make_cinic, make_imagenet100, make_tiny

RNG = np.random.default_rng(3)


def cifar10_bin(folder, train_per_class=6, test_per_class=2):
    """cifar-10-batches-bin with one data batch: 1 label byte + 3,072 pixel bytes per record."""
    folder.mkdir(parents=True)
    (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    for name, per in (("data_batch_1.bin", train_per_class), ("test_batch.bin", test_per_class)):
        y = np.repeat(np.arange(10, dtype=np.uint8), per)
        # class-dependent brightness, so a model can learn something in one epoch
        x = np.clip(RNG.normal(25 * y[:, None], 30, (len(y), 3072)), 0, 255).astype(np.uint8)
        np.concatenate([y[:, None], x], axis=1).tofile(folder / name)
    return folder


def idx_folder(folder, n=20, fashion=True):
    folder.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        x = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = np.arange(n, dtype=np.uint8) % 10
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 2049, n) + y.tobytes())
    return folder


def svhn_folder(folder):
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        savemat(folder / f"{split}_32x32.mat", {"X": RNG.integers(0, 256, (32, 32, 3, 10), dtype=np.uint8),
                                                "y": (np.arange(10) % 10 + 1).reshape(-1, 1)})
    return folder


def cifar100_python(folder):
    import pickle

    folder.mkdir(parents=True)
    for split in ("train", "test"):
        d = {b"data": RNG.integers(0, 256, (4, 3072), dtype=np.uint8), b"fine_labels": [0, 1, 2, 99],
             b"coarse_labels": [0, 1, 2, 19]}
        (folder / split).write_bytes(pickle.dumps(d, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, protocol=2))
    return folder


@pytest.mark.parametrize("make, kind, title, eval_split, shape, arch", [
    (lambda p: idx_folder(p / "fashion-mnist"), "idx", "Fashion-MNIST", "test", (28, 28), "small_cnn"),
    (lambda p: cifar10_bin(p / "cifar-10-batches-bin"), "cifar", "CIFAR-10", "test", (3, 32, 32), "resnet20"),
    (lambda p: cifar100_python(p / "cifar-100-python"), "cifar", "CIFAR-100", "test", (3, 32, 32), "resnet20"),
    (lambda p: svhn_folder(p / "svhn"), "svhn", "SVHN", "test", (3, 32, 32), "resnet20"),
    (lambda p: make_cinic(p / "CINIC-10", per_class=(1, 1, 1)) and p / "CINIC-10", "cinic10", "CINIC-10", "test",
     (3, 32, 32), "resnet20"),
    (lambda p: make_tiny(p / "tiny-imagenet-200"), "tinyimagenet", "TinyImageNet", "val", (3, 64, 64), "resnet18"),
    (lambda p: make_imagenet100(p / "imagenet100"), "imagenet100", "ImageNet-100", "val", (3, 64, 64), "resnet18"),
])
def test_every_layout_is_found_ingested_and_gets_its_model(tmp_path, make, kind, title, eval_split, shape, arch):
    from storage_service.store import Store

    folder = make(tmp_path / "dl")
    assert demo.find_demo_data(folder) == (folder, kind)
    assert demo.find_demo_data(tmp_path / "dl") == (folder, kind)  # the folder an archive was unpacked in
    got_title, train, test = demo.prepare_store(tmp_path / "root", tmp_path / "dl", progress=False)
    assert got_title == title and test.endswith(f"/{eval_split}")
    m = Store(tmp_path / "root" / train).manifest
    assert tuple(m.sample_shape) == shape and demo.demo_arch(m.sample_shape) == arch
    assert len(Store(tmp_path / "root" / test)) > 0


def test_demo_arch_follows_the_image_size():
    assert [demo.demo_arch(s) for s in [(8, 8), (28, 28), (28, 28, 1), (32, 32, 3), (3, 32, 32), (3, 64, 64), (96, 96, 3)]] == \
        ["small_cnn", "small_cnn", "small_cnn", "resnet20", "resnet20", "resnet18", "resnet18"]


def test_bad_data_folders_fail_clearly(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(demo.DemoError, match=r"junk: no Fashion-MNIST IDX files, CIFAR-10/100 batches"):
        demo.find_demo_data(tmp_path / "junk")
    cifar10_bin(tmp_path / "two" / "a")
    svhn_folder(tmp_path / "two" / "b")
    with pytest.raises(demo.DemoError, match=r"several data sets in it .*two/a.*two/b"):
        demo.find_demo_data(tmp_path / "two")
    half = tmp_path / "half"  # IDX training files only: nothing to evaluate on
    idx_folder(half)
    for f in half.glob("t10k-*"):
        f.unlink()
    with pytest.raises(demo.DemoError, match="half: no Fashion-MNIST IDX files"):
        demo.find_demo_data(half)
    tiny = make_tiny(tmp_path / "bad" / "tiny-imagenet-200")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tiny / "val" / "images" / "val_77.JPEG")
    out = tmp_path / "o"
    assert main(["demo", "--data", str(tmp_path / "bad"), "--quick", "--work-dir", str(tmp_path / "w"),
                 "--out-dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "val/images/val_77.JPEG: validation image without a label" in err
    assert not list((tmp_path / "w" / "store").iterdir())  # nothing ingested


def test_quick_demo_on_a_tiny_cifar10_folder(tmp_path, capsys):
    data = cifar10_bin(tmp_path / "cifar-10-batches-bin")
    out = tmp_path / "demo"
    assert main(["demo", "--data", str(data), "--quick", "--out-dir", str(out), "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "model resnet20 for samples of shape [3, 32, 32]" in printed
    for run in ("| full |", "| random@0.3 |", f"| {demo.WINNER}@0.3 |"):
        assert run in printed and run in (out / "table.md").read_text()
    assert (out / "table.md").read_text().startswith("CIFAR-10, fraction 0.3")
    for run in ("full", "random", demo.WINNER):
        records = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
        assert records[-1]["test_acc"] is not None and 0.0 <= records[-1]["test_acc"] <= 1.0
