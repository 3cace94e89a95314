"""StreamSamples with extra store columns (batch version 2) over real gRPC: the main port and
the data plane, text and embedding columns matching the store row for row, version 1 batches
when none is asked, and an unknown column refused naming it."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from storage_service._wire import BATCH_VERSION, BATCH_VERSION_COLUMNS, BatchEncoder, ExtraColumn, decode_sample_batch
from storage_service._proto import nessa_pb2 as pb
from storage_service.client import StorageClient, StorageError
from storage_service.columns import write_embedding_column, write_text_column
from storage_service.ingest import write_store
from storage_service.store import Store
from tests.service.helpers import running


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    rng = np.random.default_rng(7)
    r = tmp_path_factory.mktemp("cols-root")
    n = 257
    write_store(r / "pairs", rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), rng.integers(0, 3, n), name="pairs",
                shard_bytes=4 << 10)
    write_text_column(r / "pairs", [f"caption {i} é" for i in range(n)])
    write_embedding_column(r / "pairs", "emb/proxy", rng.standard_normal((n, 6)).astype(np.float32), dtype="float16")
    write_embedding_column(r / "pairs", "emb/wide", rng.standard_normal((n, 3)).astype(np.float32), dtype="float32")
    return r


@pytest.mark.parametrize("data_plane", [False, True])
def test_columns_arrive_row_for_row(root, data_plane):
    st = Store(root / "pairs")
    texts, proxy, wide = st.texts(), st.embeddings("emb/proxy"), st.embeddings("emb/wide")
    with running(root) as (server, port), StorageClient(f"127.0.0.1:{port}", data_plane=data_plane) as c:
        assert (server.data_port != 0) or not data_plane
        seen = []
        for b in c.stream_samples("pairs", epoch=1, seed=3, batch_bytes=1024, columns=("text", "emb/proxy", "emb/wide")):
            assert list(b.columns) == ["text", "emb/proxy", "emb/wide"]
            assert b.columns["text"] == [texts[i] for i in b.ids]
            np.testing.assert_array_equal(b.columns["emb/proxy"], proxy[b.ids])
            np.testing.assert_array_equal(b.columns["emb/wide"], wide[b.ids])
            assert b.columns["emb/proxy"].dtype == np.float32 and b.columns["emb/proxy"].shape == (b.count, 6)
            x, y = st.take(b.ids)
            np.testing.assert_array_equal(b.samples, x)
            np.testing.assert_array_equal(b.labels, y)
            seen.extend(b.ids.tolist())
        assert sorted(seen) == list(range(257)) and len(seen) > 0
        plain = next(iter(c.stream_samples("pairs", batch_bytes=1024)))
        assert plain.columns == {}


def test_version_1_without_columns_and_2_with(root):
    enc = BatchEncoder(4, (4,), np.uint8)
    d = decode_sample_batch(enc.encode(pb.BatchHeader(count=2), [0, 1], [0, 0], [1, 1], np.zeros((2, 4), np.uint8)))
    assert d.batch.schema.metadata[b"nessa.batch_version"] == str(BATCH_VERSION).encode() and d.columns == {}
    enc2 = BatchEncoder(4, (4,), np.uint8, (ExtraColumn("text", "text"), ExtraColumn("emb/e", "embedding", 2)))
    wire = enc2.encode(pb.BatchHeader(count=2), [0, 1], [0, 0], [1, 1], np.arange(8, dtype=np.uint8).reshape(2, 4),
                       {"text": ["a", "b"], "emb/e": np.array([[1, 2], [3, 4]], np.float32)})
    d = decode_sample_batch(wire)
    assert d.batch.schema.metadata[b"nessa.batch_version"] == str(BATCH_VERSION_COLUMNS).encode()
    assert d.columns["text"] == ["a", "b"] and d.columns["emb/e"].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="emb/e"):
        enc2.encode(pb.BatchHeader(count=2), [0, 1], [0, 0], [1, 1], np.zeros((2, 4), np.uint8),
                    {"text": ["a", "b"], "emb/e": np.zeros((2, 3), np.float32)})


@pytest.mark.parametrize("data_plane", [False, True])
def test_unknown_column_is_invalid_argument_naming_it(root, data_plane):
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", data_plane=data_plane) as c:
        with pytest.raises(StorageError) as e:
            next(iter(c.stream_samples("pairs", columns=("text", "emb/nothing"))))
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "emb/nothing" in e.value.details
        with pytest.raises(StorageError) as e:
            next(iter(c.stream_samples("pairs", columns=("text", "text"))))
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
