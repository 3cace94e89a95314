"""Optional store columns (storage_service/columns.py): write, read, validate, atomicity, integrity."""

import json
import os

import numpy as np
import pytest

from storage_service.columns import (ColumnError, ColumnInfo, ColumnKind, write_embedding_chunks, write_embedding_column,
                                     write_text_column)
from storage_service.ingest import write_store
from storage_service.manifest import Manifest
from storage_service.store import Store, verify_store


@pytest.fixture
def store_dir(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (300, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 3, 300)
    dest = tmp_path / "s"
    write_store(dest, x, y, name="s", shard_bytes=16 * 100, batch_bytes=16 * 50)
    return dest


def test_v1_store_has_no_columns(store_dir):
    doc = json.loads((store_dir / "manifest.json").read_text())
    assert doc["format_version"] == 1 and "columns" not in doc
    assert Store(store_dir).columns == {}


def test_embedding_roundtrip_and_order(store_dir):
    rng = np.random.default_rng(1)
    v = rng.standard_normal((300, 8)).astype(np.float32)
    info = write_embedding_column(store_dir, "emb/proxy", v, dtype="float16", source="test")
    assert info == ColumnInfo("emb/proxy", ColumnKind.EMBEDDING, "float16", 8, 0, "test")
    s = Store(store_dir)
    assert s.manifest.format_version == 2 and s.columns == {"emb/proxy": info}
    allv = s.embeddings("emb/proxy")
    assert allv.dtype == np.float32 and allv.shape == (300, 8)
    np.testing.assert_allclose(allv, v.astype(np.float16).astype(np.float32))
    ids = np.array([299, 0, 150, 150, 7])
    np.testing.assert_array_equal(s.embeddings("emb/proxy", ids), allv[ids])
    assert verify_store(store_dir) == []


def test_float32_and_overwrite(store_dir):
    v = np.arange(600, dtype=np.float32).reshape(300, 2)
    write_embedding_column(store_dir, "emb/a", v, dtype="float32")
    with pytest.raises(ColumnError, match="exists"):
        write_embedding_column(store_dir, "emb/a", v, dtype="float32")
    old = {c.file for c in Manifest.load(store_dir).columns}
    write_embedding_column(store_dir, "emb/a", v * 2, dtype="float32", overwrite=True)
    new = {c.file for c in Manifest.load(store_dir).columns}
    assert old != new and not any((store_dir / f).exists() for f in old - new)
    np.testing.assert_array_equal(Store(store_dir).embeddings("emb/a"), v * 2)


def test_text_roundtrip(store_dir):
    texts = [f"caption {i} é" for i in range(300)]
    texts[5] = "bytes ok".encode()
    info = write_text_column(store_dir, texts, max_bytes=32)
    assert info.kind is ColumnKind.TEXT and info.max_bytes == 32 and info.source == "ingest"
    s = Store(store_dir)
    got = s.texts()
    assert got[0] == "caption 0 é" and got[5] == "bytes ok" and len(got) == 300
    assert s.texts([10, 2]) == ["caption 10 é", "caption 2 é"]
    with pytest.raises(ColumnError, match="text"):
        s.embeddings("text")


@pytest.mark.parametrize("values,match", [
    (np.zeros((300, 0)), "dim"),
    (np.zeros((299, 4)), "299 rows"),
    (np.zeros((301, 4)), "301 rows"),
    (np.r_[np.zeros((299, 4)), [[0, np.nan, 0, 0]]], "row 299 holds NaN"),
    (np.r_[np.zeros((299, 4)), [[0, np.inf, 0, 0]]], "NaN or inf"),
    (np.full((300, 4), 1e6), "overflows float16"),
    (np.zeros(300), "2-D"),
])
def test_embedding_validation(store_dir, values, match):
    before = sorted(os.listdir(store_dir))
    with pytest.raises(ColumnError, match=match) as exc:
        write_embedding_column(store_dir, "emb/x", values)
    assert "emb/x" in str(exc.value) and isinstance(exc.value, ValueError)
    assert sorted(os.listdir(store_dir)) == before  # nothing half-written


def test_chunked_write_streams_the_same_column(store_dir, monkeypatch):
    import storage_service.columns as columns

    monkeypatch.setattr(columns, "_BATCH_ROWS", 64)  # several slices per chunk and across chunks
    rng = np.random.default_rng(1)
    values = rng.normal(size=(300, 5)).astype(np.float32)
    seen = []

    def chunks(n):
        assert n == 300
        for lo in range(0, n, 70):  # chunks that do not line up with the slices
            seen.append(lo)
            yield values[lo:lo + 70]

    info = write_embedding_chunks(store_dir, "emb/c", chunks, dtype="float32")
    assert info.dim == 5 and seen == [0, 70, 140, 210, 280]
    np.testing.assert_array_equal(Store(store_dir).embeddings("emb/c"), values)


@pytest.mark.parametrize("make,match", [
    (lambda v: [v[:100], np.r_[v[100:199], [[0, np.nan, 0, 0, 0]]], v[200:]], "row 199 holds NaN"),
    (lambda v: [v[:100], v[100:, :4]], "rows from 100 have width 4"),
    (lambda v: [v[:100], v[100:299]], "299 rows, the data set has 300"),
    (lambda v: [v, v[:1]], "more than 300 rows"),
    (lambda v: [], "0 rows"),
])
def test_chunked_write_fails_whole_on_a_bad_chunk(store_dir, make, match):
    values = np.zeros((300, 5), np.float32)
    before = sorted(os.listdir(store_dir))
    with pytest.raises(ColumnError, match=match):
        write_embedding_chunks(store_dir, "emb/c", lambda n: make(values), dtype="float32")
    assert sorted(os.listdir(store_dir)) == before  # the temporary file is gone, the manifest untouched
    assert "emb/c" not in Store(store_dir).columns


@pytest.mark.parametrize("name", ["emb/", "emb/A", "image", "emb/a/b", "", "text"])
def test_bad_embedding_names(store_dir, name):
    with pytest.raises(ColumnError, match="name"):
        write_embedding_column(store_dir, name, np.zeros((300, 2)))


@pytest.mark.parametrize("texts,match", [
    (["a"] * 299, "299 rows"),
    (["a"] * 299 + [b"\xff\xfe"], "row 299 is not UTF-8"),
    (["a"] * 299 + ["x" * 17], "over the limit max_bytes=16"),
    (["a"] * 299 + [None], "row 299"),
    ("abc", "single"),
])
def test_text_validation(store_dir, texts, match):
    before = sorted(os.listdir(store_dir))
    with pytest.raises(ColumnError, match=match):
        write_text_column(store_dir, texts, max_bytes=16)
    assert sorted(os.listdir(store_dir)) == before


def test_unknown_column(store_dir):
    with pytest.raises(ColumnError, match="emb/nope"):
        Store(store_dir).embeddings("emb/nope")
    with pytest.raises(ColumnError, match="'text'"):
        Store(store_dir).texts()


def test_damaged_column_fails_verify(store_dir):
    write_embedding_column(store_dir, "emb/p", np.ones((300, 4)))
    f = store_dir / Manifest.load(store_dir).columns[0].file
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    problems = verify_store(store_dir)
    assert any("sha256" in p and f.name in p for p in problems)
    f.unlink()
    assert any(f.name in p for p in verify_store(store_dir))


def test_damaged_column_is_data_loss_on_read(store_dir):
    from storage_service._errors import DataLoss
    write_embedding_column(store_dir, "emb/p", np.ones((300, 4)))
    f = store_dir / Manifest.load(store_dir).columns[0].file
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(DataLoss, match="emb/p"):
        Store(store_dir).embeddings("emb/p")


def test_open_store_follows_new_manifest(store_dir):
    """The service reopens a store when its manifest's identity changes; a column write changes it."""
    from storage_service.manifest import manifest_identity
    s = Store(store_dir)
    write_text_column(store_dir, ["x"] * 300)
    assert manifest_identity(store_dir) != s.manifest_identity
    assert s.columns == {} and set(Store(store_dir).columns) == {"text"}
    np.testing.assert_array_equal(Store(store_dir).take([3])[0], s.take([3])[0])  # samples untouched


def test_leftovers_remove_orphan_column_files_only(store_dir):
    from storage_service.leftovers import find_leftovers, remove_leftovers
    write_embedding_column(store_dir, "emb/p", np.ones((300, 4)))
    listed = Manifest.load(store_dir).columns[0].file
    orphan = store_dir / "column-emb-q-0123456789ab.arrow"
    orphan.write_bytes(b"killed before the manifest")
    tmp = store_dir / f"column-emb-q.arrow.tmp{2**22 + 12345}"  # a pid that does not run
    tmp.write_bytes(b"x")
    assert find_leftovers(store_dir, min_age_s=3600) == [(tmp, f"its writer, process {2**22 + 12345}, is gone")]
    removed = {p for p, _ in remove_leftovers(store_dir, min_age_s=0)}
    assert removed == {orphan, tmp} and (store_dir / listed).exists()
    np.testing.assert_array_equal(Store(store_dir).embeddings("emb/p"), np.ones((300, 4)))


def test_served_data_set_shows_a_new_column(tmp_path):
    """A column written under a running server shows in GetDataset (the service reopens the store
    when the manifest's identity changes), over real gRPC on loopback."""
    from storage_service.client import StorageClient
    from storage_service.server import create_server
    rng = np.random.default_rng(2)
    write_store(tmp_path / "root" / "d", rng.integers(0, 255, (50, 2, 2), dtype=np.uint8), np.arange(50) % 2, name="d")
    server, port = create_server("127.0.0.1:0", tmp_path / "root")
    try:
        client = StorageClient(f"127.0.0.1:{port}")
        assert client.get_dataset("d").columns == []
        write_embedding_column(tmp_path / "root" / "d", "emb/proxy", rng.standard_normal((50, 3)), source="t")
        cols = client.get_dataset("d").columns
        assert [(c.name, c.kind, c.dtype, c.dim, c.source) for c in cols] == [("emb/proxy", "embedding", "float16", 3, "t")]
        client.close()
    finally:
        server.stop(grace=0.5)
