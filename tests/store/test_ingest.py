"""Ingest from every source kind, and every bad input the issue lists."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage_service.ingest import IngestError, ingest
from storage_service.store import Store


def _idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def _write_idx(folder, x, y, xt=None, yt=None, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    op = gzip.compress if gz else (lambda b: b)
    (folder / f"train-images-idx3-ubyte{suffix}").write_bytes(op(_idx_bytes(x)))
    (folder / f"train-labels-idx1-ubyte{suffix}").write_bytes(op(_idx_bytes(y)))
    if xt is not None:
        (folder / f"t10k-images-idx3-ubyte{suffix}").write_bytes(op(_idx_bytes(xt)))
        (folder / f"t10k-labels-idx1-ubyte{suffix}").write_bytes(op(_idx_bytes(yt)))


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (50, 6, 4), dtype=np.uint8), rng.integers(0, 3, 50).astype(np.uint8)


def _assert_store(path, x, y):
    st = Store(path)
    samples, labels = st.take(np.arange(len(y)))
    np.testing.assert_array_equal(samples, x)
    np.testing.assert_array_equal(labels, y)
    assert st.verify() == []
    return st


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, data, gz):
    x, y = data
    _write_idx(tmp_path / "src", x, y, x[:10], y[:10], gz=gz)
    made = ingest(tmp_path / "src", tmp_path / "out", progress=False)
    assert sorted(made) == ["test", "train"]
    _assert_store(tmp_path / "out" / "train", x, y)
    _assert_store(tmp_path / "out" / "test", x[:10], y[:10])


def test_npz_and_npy_folder(tmp_path, data):
    x, y = data
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ingest(tmp_path / "d.npz", tmp_path / "a", progress=False)
    _assert_store(tmp_path / "a", x, y)
    (tmp_path / "np").mkdir()
    np.save(tmp_path / "np" / "x.npy", x.astype(np.float32))
    np.save(tmp_path / "np" / "y.npy", y.astype(np.int64))
    st = _assert_store_float(tmp_path, x, y)
    assert st.manifest.dtype == "float32"


def _assert_store_float(tmp_path, x, y):
    ingest(tmp_path / "np", tmp_path / "b", progress=False)
    st = Store(tmp_path / "b")
    samples, labels = st.take(np.arange(len(y)))
    np.testing.assert_array_equal(samples, x.astype(np.float32))
    np.testing.assert_array_equal(labels, y)
    return st


def test_image_folder(tmp_path, data):
    from PIL import Image

    x, y = data
    for i, (img, lbl) in enumerate(zip(x, y)):
        d = tmp_path / "imgs" / f"class_{lbl}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:04d}.png")
    ingest(tmp_path / "imgs", tmp_path / "out", progress=False)
    st = Store(tmp_path / "out")
    assert st.manifest.class_names == ["class_0", "class_1", "class_2"]
    # files are read class by class, in name order
    order = np.lexsort((np.arange(len(y)), y))
    samples, labels = st.take(np.arange(len(y)))
    np.testing.assert_array_equal(samples, x[order])
    np.testing.assert_array_equal(labels, y[order])


def test_image_folder_mismatched_sizes(tmp_path):
    from PIL import Image

    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "imgs" / "a" / "1.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "imgs" / "a" / "2.png")
    with pytest.raises(IngestError, match=r"2\.png: image shape \[5, 4\] differs"):
        ingest(tmp_path / "imgs", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_table(tmp_path, data, fmt):
    x, y = data
    table = pa.table({"image": pa.array([r.tobytes() for r in x], pa.binary(24)), "target": pa.array(y.astype(np.int64))})
    path = tmp_path / f"t.{fmt}"
    if fmt == "arrow":
        with pa.ipc.new_file(str(path), table.schema) as w:
            w.write_table(table)
    else:
        pq.write_table(table, path)
    ingest(path, tmp_path / "out", shape=(6, 4), progress=False)
    _assert_store(tmp_path / "out", x, y)


def test_table_string_labels_and_lists(tmp_path):
    table = pa.table({"x": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.uint8())), "label": ["cat", "dog", "cat"]})
    pq.write_table(table, tmp_path / "t.parquet")
    ingest(tmp_path / "t.parquet", tmp_path / "out", progress=False)
    st = Store(tmp_path / "out")
    assert st.manifest.class_names == ["cat", "dog"]
    assert st.labels.tolist() == [0, 1, 0]
    assert st.take([2])[0].tolist() == [[5, 6]]


# ---- bad input ---------------------------------------------------------------------------

def test_bad_magic(tmp_path, data):
    x, y = data
    _write_idx(tmp_path / "src", x, y, gz=False)
    p = tmp_path / "src" / "train-images-idx3-ubyte"
    p.write_bytes(b"\x12\x34" + p.read_bytes()[2:])
    with pytest.raises(IngestError, match="train-images-idx3-ubyte: bad magic number 0x1234"):
        ingest(tmp_path / "src", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_truncated_file(tmp_path, data):
    x, y = data
    _write_idx(tmp_path / "src", x, y, gz=False)
    p = tmp_path / "src" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(IngestError, match="train-images-idx3-ubyte: truncated file"):
        ingest(tmp_path / "src", tmp_path / "out", progress=False)


def test_truncated_gzip(tmp_path, data):
    x, y = data
    _write_idx(tmp_path / "src", x, y, gz=True)
    p = tmp_path / "src" / "train-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-12])
    with pytest.raises(IngestError, match="train-labels-idx1-ubyte.gz: truncated or corrupt gzip"):
        ingest(tmp_path / "src", tmp_path / "out", progress=False)


def test_count_mismatch(tmp_path, data):
    x, y = data
    _write_idx(tmp_path / "src", x, y[:-1])
    with pytest.raises(IngestError, match="50 images but .* 49 labels"):
        ingest(tmp_path / "src", tmp_path / "out", progress=False)
    np.savez(tmp_path / "d.npz", x=x, y=y[:-3])
    with pytest.raises(IngestError, match="count mismatch"):
        ingest(tmp_path / "d.npz", tmp_path / "out", progress=False)


def test_non_integer_labels(tmp_path, data):
    x, _ = data
    np.savez(tmp_path / "d.npz", x=x, y=np.full(len(x), 0.5))
    with pytest.raises(IngestError, match="d.npz: non-integer label 0.5"):
        ingest(tmp_path / "d.npz", tmp_path / "out", progress=False)
    np.savez(tmp_path / "n.npz", x=x, y=-np.ones(len(x), np.int64))
    with pytest.raises(IngestError, match="negative label"):
        ingest(tmp_path / "n.npz", tmp_path / "out", progress=False)


def test_empty_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="empty input"):
        ingest(tmp_path / "empty", tmp_path / "out", progress=False)
    np.savez(tmp_path / "e.npz", x=np.zeros((0, 3), np.uint8), y=np.zeros(0, np.int64))
    with pytest.raises(IngestError, match="empty input"):
        ingest(tmp_path / "e.npz", tmp_path / "out", progress=False)
    pq.write_table(pa.table({"sample": pa.array([], pa.binary(2)), "label": pa.array([], pa.int32())}), tmp_path / "e.parquet")
    with pytest.raises(IngestError, match="empty input"):
        ingest(tmp_path / "e.parquet", tmp_path / "out", progress=False)


def test_existing_destination(tmp_path, data):
    x, y = data
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ingest(tmp_path / "d.npz", tmp_path / "out", progress=False)
    with pytest.raises(IngestError, match="destination exists .*--overwrite"):
        ingest(tmp_path / "d.npz", tmp_path / "out", progress=False)
    np.savez(tmp_path / "d2.npz", x=x[:5], y=y[:5])
    ingest(tmp_path / "d2.npz", tmp_path / "out", overwrite=True, progress=False)
    assert len(Store(tmp_path / "out")) == 5


def test_failed_overwrite_keeps_old_store(tmp_path, data):
    x, y = data
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ingest(tmp_path / "d.npz", tmp_path / "out", progress=False)
    np.savez(tmp_path / "bad.npz", x=x, y=np.full(len(x), 0.5))
    with pytest.raises(IngestError):
        ingest(tmp_path / "bad.npz", tmp_path / "out", overwrite=True, progress=False)
    _assert_store(tmp_path / "out", x, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "d.npz", "out"]  # no temp folders left


def test_pickled_npz_refused(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([object(), object()], dtype=object), y=np.array([0, 1]))
    with pytest.raises(IngestError, match="without pickle"):
        ingest(tmp_path / "o.npz", tmp_path / "out", progress=False)


def test_missing_npz_keys_and_unknown_type(tmp_path, data):
    x, y = data
    np.savez(tmp_path / "k.npz", images=x, y=y)
    with pytest.raises(IngestError, match=r"missing array\(s\) \['x'\]; found \['images', 'y'\]"):
        ingest(tmp_path / "k.npz", tmp_path / "out", progress=False)
    (tmp_path / "f.txt").write_text("hi")
    with pytest.raises(IngestError, match="unknown input file type '.txt'"):
        ingest(tmp_path / "f.txt", tmp_path / "out", progress=False)
    with pytest.raises(IngestError, match="no such file"):
        ingest(tmp_path / "nope", tmp_path / "out", progress=False)


def test_single_npy_has_no_labels(tmp_path, data):
    x, _ = data
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(IngestError, match="a single .npy holds no labels"):
        ingest(tmp_path / "x.npy", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_uncreatable_destination(tmp_path, data):
    x, y = data
    np.savez(tmp_path / "d.npz", x=x, y=y)
    (tmp_path / "afile").write_text("keep")  # a file where the destination's parent folder belongs
    with pytest.raises(IngestError, match="cannot create the destination"):
        ingest(tmp_path / "d.npz", tmp_path / "afile" / "store", progress=False)
    assert (tmp_path / "afile").read_text() == "keep"
