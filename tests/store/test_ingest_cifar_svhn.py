"""CIFAR-10/100 (binary and python batches) and SVHN (.mat) ingest, on small files written in the
exact published layouts; a pickle asking for anything but a numpy array is refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.io import savemat

from nessa.cli import main
from storage_service.ingest import IngestError, SourceKind, detect_kind, ingest
from storage_service.store import Store

RNG = np.random.default_rng(7)


def _images(n: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def _check(root, split: str, x: np.ndarray, y: np.ndarray, names=None) -> None:
    st = Store(root / split)
    samples, labels = st.take(np.arange(len(st)))
    assert tuple(st.manifest.sample_shape) == (3, 32, 32)
    assert np.array_equal(samples, x) and np.array_equal(labels, y)
    if names:
        assert list(st.manifest.class_names) == names


def test_cifar10_binary(tmp_path):
    src = tmp_path / "cifar-10-batches-bin"
    src.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (src / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    xs, ys = [], []
    for i in range(1, 6):
        x, y = _images(4), RNG.integers(0, 10, 4)
        # record: 1 label byte, then the red, green and blue 32x32 planes
        np.concatenate([y[:, None].astype(np.uint8), x.reshape(4, -1)], axis=1).tofile(src / f"data_batch_{i}.bin")
        xs.append(x)
        ys.append(y)
    xt, yt = _images(3), RNG.integers(0, 10, 3)
    np.concatenate([yt[:, None].astype(np.uint8), xt.reshape(3, -1)], axis=1).tofile(src / "test_batch.bin")
    assert detect_kind(src) is SourceKind.CIFAR
    ingest(src, tmp_path / "c10", progress=False)
    _check(tmp_path / "c10", "train", np.concatenate(xs), np.concatenate(ys), names)
    _check(tmp_path / "c10", "test", xt, yt, names)


def test_cifar100_binary_fine_labels(tmp_path):
    src = tmp_path / "cifar-100-binary"
    src.mkdir()
    (src / "fine_label_names.txt").write_text("\n".join(f"f{i}" for i in range(100)))
    (src / "coarse_label_names.txt").write_text("\n".join(f"c{i}" for i in range(20)))
    for split, n in (("train", 6), ("test", 2)):
        x, fine, coarse = _images(n), RNG.integers(0, 100, n), RNG.integers(0, 20, n)
        np.concatenate([coarse[:, None].astype(np.uint8), fine[:, None].astype(np.uint8), x.reshape(n, -1)], axis=1).tofile(src / f"{split}.bin")
        if split == "train":
            want = (x, fine)
    ingest(src, tmp_path / "c100", progress=False)
    _check(tmp_path / "c100", "train", *want, [f"f{i}" for i in range(100)])


def test_cifar10_and_100_python_batches(tmp_path):
    src = tmp_path / "cifar-10-batches-py"
    src.mkdir()
    x, y = _images(5), RNG.integers(0, 10, 5)
    for name in ("data_batch_1", "test_batch"):  # protocol 2 with bytes keys, as the published files
        (src / name).write_bytes(pickle.dumps({b"batch_label": b"x", b"labels": y.tolist(), b"data": x.reshape(5, -1), b"filenames": []}, protocol=2))
    (src / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"n{i}".encode() for i in range(10)]}, protocol=2))
    ingest(src, tmp_path / "c10", progress=False)
    _check(tmp_path / "c10", "train", x, y, [f"n{i}" for i in range(10)])

    src100 = tmp_path / "cifar-100-python"
    src100.mkdir()
    fine = RNG.integers(0, 100, 5)
    for name in ("train", "test"):
        (src100 / name).write_bytes(pickle.dumps({b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist(), b"data": x.reshape(5, -1)}, protocol=2))
    (src100 / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, protocol=2))
    assert detect_kind(src100) is SourceKind.CIFAR
    ingest(src100, tmp_path / "c100", progress=False)
    _check(tmp_path / "c100", "test", x, fine)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_wants_more_than_an_array_is_refused(tmp_path, capsys):
    src = tmp_path / "cifar-10-batches-py"
    src.mkdir()
    (src / "data_batch_1").write_bytes(pickle.dumps({b"labels": [1], b"data": _Evil()}, protocol=2))
    with pytest.raises(IngestError, match=r"refusing to load (__builtin__|builtins)\.print"):
        ingest(src, tmp_path / "out", progress=False)
    assert "must never run" not in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_truncated_binary_batch_is_named(tmp_path):
    src = tmp_path / "cifar-10-batches-bin"
    src.mkdir()
    (src / "data_batch_1.bin").write_bytes(b"\0" * 3000)
    with pytest.raises(IngestError, match="not a whole number of 3073-byte CIFAR records"):
        ingest(src, tmp_path / "out", progress=False)


def test_svhn_mat_files_digit_ten_is_zero(tmp_path):
    src = tmp_path / "svhn"
    src.mkdir()
    x = _images(6)
    y = np.array([[10], [1], [2], [9], [10], [5]], dtype=np.uint8)
    savemat(src / "train_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y})  # X is (32, 32, 3, N)
    savemat(src / "test_32x32.mat", {"X": x[:2].transpose(2, 3, 1, 0), "y": y[:2]})
    assert detect_kind(src) is SourceKind.SVHN
    assert main(["ingest", str(src), str(tmp_path / "sv")]) == 0
    _check(tmp_path / "sv", "train", x, np.array([0, 1, 2, 9, 0, 5]), [str(d) for d in range(10)])
    _check(tmp_path / "sv", "test", x[:2], np.array([0, 1]))


def test_svhn_bad_labels_named(tmp_path):
    src = tmp_path / "svhn"
    src.mkdir()
    savemat(src / "train_32x32.mat", {"X": _images(2).transpose(2, 3, 1, 0), "y": np.array([[0], [3]], np.uint8)})
    with pytest.raises(IngestError, match=r"labels must be 1\.\.10"):
        ingest(src, tmp_path / "out", progress=False)
