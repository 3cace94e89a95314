"""Image–caption shards (storage_service/ingest/captions.py) and the synthetic Fashion-MNIST set."""

import io
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from storage_service.columns import ColumnKind
from storage_service.ingest import IngestError, ingest
from storage_service.ingest.synthetic_captions import (FASHION_MNIST_CLASS_NAMES, TEMPLATES, captions_for,
                                                       make_synthetic_captions, write_caption_shards)
from storage_service.store import Store, verify_store

FM = "/work/shared/data/fashion-mnist"


def _png(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture
def shards(tmp_path):
    """Two LAION-style shards: JPEG bytes, caption, a precomputed image embedding, no label."""
    rng = np.random.default_rng(0)
    ramp = np.add.outer(np.arange(12), np.arange(10))[None, :, :, None] * 8  # smooth: JPEG keeps it close
    imgs = np.clip(ramp + rng.integers(0, 60, (40, 1, 1, 3)), 0, 255).astype(np.uint8)
    emb = rng.standard_normal((40, 6)).astype(np.float32)
    src = tmp_path / "shards"
    src.mkdir()
    for k in range(2):
        sl = slice(20 * k, 20 * k + 20)
        pq.write_table(pa.table({"jpg": [_jpeg(a) for a in imgs[sl]], "txt": [f"caption {i}" for i in range(40)][sl],
                                 "clip_img": [list(map(float, e)) for e in emb[sl]]}), src / f"{k:05d}.parquet")
    return src, imgs, emb


def test_laion_style_shards(shards, tmp_path):
    src, imgs, emb = shards
    m = ingest(src, tmp_path / "st", caption_column="txt", image_column="jpg", embedding_columns=["clip_img=emb/image"],
               progress=False)["."]
    s = Store(tmp_path / "st")
    assert m.class_names == ["unlabelled"] and (s.labels == 0).all() and m.sample_shape == (12, 10, 3)
    assert s.texts() == [f"caption {i}" for i in range(40)]
    assert s.columns["emb/image"].kind is ColumnKind.EMBEDDING and s.columns["emb/image"].source == "ingest:clip_img"
    np.testing.assert_allclose(s.embeddings("emb/image", [39, 0]), emb[[39, 0]], rtol=1e-3, atol=1e-3)
    x, _ = s.take([0, 25])
    assert np.abs(x.astype(int) - imgs[[0, 25]].astype(int)).mean() < 4  # JPEG decoded, close to the original
    assert verify_store(tmp_path / "st") == []


def test_png_with_labels_and_image_size(tmp_path):
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (8 + i % 3, 9), dtype=np.uint8) for i in range(12)]
    pq.write_table(pa.table({"png": [_png(a) for a in imgs], "caption": ["a"] * 12, "label": ["cat", "dog"] * 6}),
                   tmp_path / "a.parquet")
    with pytest.raises(IngestError, match="--image-size"):
        ingest(tmp_path / "a.parquet", tmp_path / "s0", kind="captions", progress=False)
    m = ingest(tmp_path / "a.parquet", tmp_path / "s", kind="captions", image_size=6, progress=False)["."]
    assert m.sample_shape == (6, 6) and m.class_names == ["cat", "dog"] and m.class_counts == [6, 6]


@pytest.mark.parametrize("mutate,match", [
    (lambda t: t.set_column(1, "txt", pa.array(["ok"] * 19 + [None])), "row 19 is missing"),
    (lambda t: t.set_column(1, "txt", pa.array(["ok"] * 19 + ["x" * 2000])), "over the limit max_bytes=1024"),
    (lambda t: t.set_column(1, "txt", pa.array([b"ok"] * 19 + [b"\xff\xfe"], pa.binary())), "not UTF-8"),
    (lambda t: t.set_column(2, "clip_img", pa.array([[1.0] * 6] * 19 + [[1.0] * 5])), "row 19 has width 5"),
    (lambda t: t.set_column(2, "clip_img", pa.array([[1.0] * 6] * 19 + [[float("nan")] * 6])), "NaN"),
    (lambda t: t.set_column(2, "clip_img", pa.array([[1.0] * 6] * 19 + [None], pa.list_(pa.float64()))), "row 19 is missing"),
])
def test_bad_rows_name_the_column_and_leave_nothing(shards, tmp_path, mutate, match):
    src, _, _ = shards
    f = src / "00001.parquet"
    pq.write_table(mutate(pq.read_table(f)), f)
    with pytest.raises(IngestError, match=match) as exc:
        ingest(src, tmp_path / "st", caption_column="txt", embedding_columns=["clip_img=emb/image"], progress=False)
    assert "txt" in str(exc.value) or "clip_img" in str(exc.value) or "emb/image" in str(exc.value) or "text" in str(exc.value)
    assert not (tmp_path / "st").exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".st")]


@pytest.mark.parametrize("kw,match", [
    ({"caption_column": "nope"}, "'nope'"),
    ({"caption_column": "txt", "embedding_columns": ["clip_img=image"]}, "emb/NAME|bad column name"),
    ({"caption_column": "txt", "embedding_columns": ["clip_img"]}, "SOURCE_COLUMN=emb/NAME"),
    ({"caption_column": "txt", "embedding_columns": ["gone=emb/x"]}, "'gone'"),
])
def test_bad_options(shards, tmp_path, kw, match):
    with pytest.raises(IngestError, match=match):
        ingest(shards[0], tmp_path / "st", progress=False, **kw)


def test_caption_options_rejected_for_other_kinds(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 2), np.uint8), y=np.zeros(4, int))
    with pytest.raises(IngestError, match="--kind captions"):
        ingest(tmp_path / "a.npz", tmp_path / "s", kind="arrays", image_column="x", progress=False)


def test_captions_for_is_seeded_with_the_mismatch_share():
    y = np.arange(2000) % 10
    a, wrong = captions_for(y, seed=3, return_mismatched=True)
    assert a == captions_for(y, seed=3) and a != captions_for(y, seed=4)
    assert 0.08 < wrong.mean() < 0.12
    names = [n.lower() for n in FASHION_MNIST_CLASS_NAMES]
    for cap, c, w in zip(a, y, wrong):
        said = [k for k, n in enumerate(names) if n in cap and not (n == "shirt" and "t-shirt" in cap)]
        assert (c not in said) == bool(w), cap
    assert all(any(t.split("{}")[0] in cap for t in TEMPLATES) for cap in a[:50])
    assert not captions_for(y, mismatch=0.0, return_mismatched=True)[1].any()
    with pytest.raises(ValueError, match="mismatch"):
        captions_for(y, mismatch=1.5)


@pytest.mark.parametrize("fmt", ["png", "array"])
def test_synthetic_fashion_mnist_round_trip(tmp_path, fmt):
    doc = make_synthetic_captions(FM, tmp_path / "cap", split="test", limit=300, rows_per_shard=128, image_format=fmt, seed=5)
    assert doc["rows"] == 300 and len(doc["shards"]) == 3 and doc["image_format"] == fmt
    t = pq.read_table(tmp_path / "cap")
    assert json.loads(t.schema.metadata[b"nessa.class_names"]) == list(FASHION_MNIST_CLASS_NAMES)
    m = ingest(tmp_path / "cap", tmp_path / "st", kind="captions", progress=False)["."]
    s = Store(tmp_path / "st")
    assert m.class_names == list(FASHION_MNIST_CLASS_NAMES) and m.sample_shape == (28, 28)
    from storage_service.ingest.idx import find_idx_pairs, load_idx_pair
    from pathlib import Path
    x, y = load_idx_pair(*find_idx_pairs(Path(FM))["test"])
    got, labels = s.take(np.arange(300))
    np.testing.assert_array_equal(got, x[:300])  # PNG is lossless
    np.testing.assert_array_equal(labels, y[:300])
    assert s.texts() == t.column("caption").to_pylist() == captions_for(y[:300], seed=5, images=x[:300])
    with pytest.raises(IngestError, match="exists"):
        write_caption_shards(tmp_path / "cap", x[:5], y[:5])
