"""host/embedding.py: image embeddings from a real small CNN on Fashion-MNIST-shaped data; the
text-tower error path. (The Embed RPC tests join this file when storage_service/embed_jobs.py lands.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.embedding import EmbeddingError, embed_images, embed_texts, has_tower
from host.models import build_model, to_input


def _model():
    torch.manual_seed(0)
    return build_model("small_cnn", (28, 28), 10)


def test_embed_images_matches_model_embed_and_is_batch_invariant():
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(37, 28, 28), dtype=np.uint8)
    a = embed_images(model, x, (28, 28), batch_size=8)
    b = embed_images(model, x, (28, 28), batch_size=64)
    assert a.dtype == np.float32 and a.shape[0] == 37
    np.testing.assert_allclose(a, b, atol=1e-5)
    with torch.inference_mode():
        ref = model.eval().embed(to_input(x, (28, 28))).numpy()
    np.testing.assert_allclose(a, ref, atol=1e-4)
    x.setflags(write=False)  # store batches are read-only mmaps
    np.testing.assert_allclose(embed_images(model, x, (28, 28), batch_size=16), a, atol=1e-5)


def test_text_tower_missing_is_a_clear_error():
    model = _model()
    assert has_tower(model, "image") and not has_tower(model, "text")
    with pytest.raises(EmbeddingError, match="text tower"):
        embed_texts(model, ["a shirt"], batch_size=4)
    with pytest.raises(EmbeddingError, match="tower"):
        has_tower(model, "audio")
    with pytest.raises(EmbeddingError, match="batch_size"):
        embed_images(model, np.zeros((2, 28, 28), np.uint8), (28, 28), batch_size=0)


# -- the Embed / GetEmbedding RPCs over real gRPC ----------------------------------------------
import json  # noqa: E402

import grpc  # noqa: E402

from storage_service.client import StorageClient, StorageError  # noqa: E402
from storage_service.columns import write_text_column  # noqa: E402
from storage_service.embed_jobs import job_dir  # noqa: E402
from storage_service.ingest import write_store  # noqa: E402
from storage_service.ingest.idx import read_idx  # noqa: E402
from storage_service.store import Store  # noqa: E402
from tests.service.helpers import running  # noqa: E402

_CLASSES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


@pytest.fixture(scope="module")
def root(tmp_path_factory, fashion_mnist_dir):
    x = read_idx(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")[:300]
    y = read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")[:300].astype(np.int64)
    r = tmp_path_factory.mktemp("embed-root")
    write_store(r / "fm", x, y, name="fm")
    write_text_column(r / "fm", [f"a photo of a {_CLASSES[c]}" for c in y])
    write_store(r / "other", x[:50, :14, :14].copy(), y[:50], name="other")
    return r


def _client(port):
    c = StorageClient(f"127.0.0.1:{port}", timeout=30)
    c.wait_ready()
    return c


def test_embed_writes_the_column_equal_to_the_models_embeddings(root):
    model = _model()
    with running(root) as (server, port), _client(port) as c:
        server.core.embeds.chunk_rows = 64  # several chunks on 300 rows
        pushed = c.push_model("small_cnn", model.state_dict(), 1, dataset="fm")
        info = c.embed("fm", "emb/proxy", batch_size=50, dtype="float32")
        assert (info.state, info.rows_done, info.rows_total) == ("done", 300, 300) and info.dim > 0
        ds = c.get_dataset("fm")
        cols = {col.name: col for col in ds.columns}
        assert cols["emb/proxy"].kind == "embedding" and cols["emb/proxy"].dim == info.dim > 0
        assert cols["emb/proxy"].source == f"embed:small_cnn@{pushed.sha256[:12]}"
        assert cols["text"].kind == "text"
        got = Store(root / "fm").embeddings("emb/proxy")
        x, _ = Store(root / "fm").take(np.arange(300))
        np.testing.assert_allclose(got, embed_images(model, np.array(x), (28, 28), batch_size=300), atol=1e-4)
        assert not job_dir(root, "fm", "emb/proxy").exists()  # spent chunks removed
        assert c.get_embedding("fm", "emb/proxy").state == "done"
        with pytest.raises(StorageError) as e:
            c.embed("fm", "emb/proxy")
        assert e.value.code == grpc.StatusCode.ALREADY_EXISTS and "overwrite" in e.value.details
        again = c.embed("fm", "emb/proxy", overwrite=True)  # float16 now
        assert again.state == "done"
        assert {col.name: col for col in c.get_dataset("fm").columns}["emb/proxy"].dtype == "float16"


def test_a_killed_job_resumes_after_its_last_finished_chunk(root):
    model = _model()
    with running(root) as (server, port), _client(port) as c:
        server.core.embeds.chunk_rows = 64
        c.push_model("small_cnn", model.state_dict(), 2, dataset="fm")
        full = c.embed("fm", "emb/full", dtype="float32")
        ref = Store(root / "fm").embeddings("emb/full")
        assert full.state == "done"
    # A fresh server: the job registry is empty, only the disk knows.
    with running(root) as (server, port), _client(port) as c:
        server.core.embeds.chunk_rows = 64
        from storage_service.embed_jobs import _identity, check_options
        st = server.core.store("fm")
        rec = server.core.models.get(2)
        folder = job_dir(root, "fm", "emb/again")
        folder.mkdir(parents=True, exist_ok=True)
        opts = check_options("emb/again", chunk_rows=64)
        (folder / "job.json").write_text(json.dumps(_identity(st, "fm", opts, rec.sha256)))
        for k in range(2):  # chunks 0 and 1 hold marked rows: the resumed column must keep them
            np.save(folder / f"chunk-{k:06d}.npy", np.full((64, ref.shape[1]), 7.0, np.float32))
        (folder / "chunk-000002.npy.tmp999999").write_bytes(b"torn")
        stopped = c.get_embedding("fm", "emb/again")
        assert (stopped.state, stopped.rows_done) == ("stopped", 128)
        info = c.embed("fm", "emb/again", model_version=2, dtype="float32")
        assert info.resumed_from == 128 and info.state == "done"
        got = Store(root / "fm").embeddings("emb/again")
        assert np.all(got[:128] == 7.0)  # not recomputed
        np.testing.assert_allclose(got[128:], ref[128:], atol=1e-4)
        assert not folder.exists()


@pytest.mark.parametrize("kw, code, text", [
    (dict(column="proxy"), grpc.StatusCode.INVALID_ARGUMENT, "column"),
    (dict(column="emb/x", tower="audio"), grpc.StatusCode.INVALID_ARGUMENT, "tower"),
    (dict(column="emb/x", dtype="int8"), grpc.StatusCode.INVALID_ARGUMENT, "dtype"),
    (dict(column="emb/x", tower="text"), grpc.StatusCode.INVALID_ARGUMENT, "text tower"),
    (dict(column="emb/x", model_version=99), grpc.StatusCode.NOT_FOUND, "99"),
    (dict(dataset="nope", column="emb/x"), grpc.StatusCode.NOT_FOUND, "nope"),
])
def test_bad_requests_are_refused_with_the_right_code(root, kw, code, text):
    with running(root) as (server, port), _client(port) as c:
        c.push_model("small_cnn", _model().state_dict(), 3, dataset="fm")
        args = {"dataset": "fm", **kw}
        with pytest.raises(StorageError) as e:
            c.embed(args.pop("dataset"), args.pop("column"), **args)
        assert e.value.code == code and text in e.value.details
        with pytest.raises(StorageError) as e:
            c.get_embedding("fm", "emb/never")
        assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert not any(n.startswith("emb/x") for n in Store(root / "fm").columns)


def test_text_tower_needs_a_text_column_and_the_job_cap(root):
    with running(root) as (server, port), _client(port) as c:
        # no model fits 'other' (14x14) yet: NOT_FOUND naming model_version
        with pytest.raises(StorageError) as e:
            c.embed("other", "emb/x")
        assert e.value.code == grpc.StatusCode.NOT_FOUND and "model_version" in e.value.details
        server.core.embeds.max_jobs = 0
        c.push_model("small_cnn", _model().state_dict(), 4, dataset="fm")
        with pytest.raises(StorageError) as e:
            c.embed("fm", "emb/capped")
        assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_failing_job_reports_failed_and_writes_nothing(root, tmp_path):
    from storage_service.embed_jobs import EmbedError, check_options, run_embedding

    class NaNModel(torch.nn.Module):  # embeddings that are not finite: the job stops, writes nothing
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def embed(self, x):
            return torch.full((x.shape[0], 4), float("nan"))

    st = Store(root / "fm")
    folder = tmp_path / "job"
    with pytest.raises(EmbedError, match="not finite"):
        run_embedding(st, "fm", NaNModel(), check_options("emb/nan", chunk_rows=64), folder, model_sha="x")
    assert "emb/nan" not in Store(root / "fm").columns
    assert sorted(p.name for p in folder.iterdir()) == ["job.json"]  # no chunk of bad rows kept


def test_contrastive_models_push_and_embed_both_towers(root):
    from host.embedding import embed_texts

    torch.manual_seed(2)
    clip = build_model("clip_cnn", (28, 28), 10)
    with running(root) as (server, port), _client(port) as c:
        c.push_model("clip_cnn", clip.state_dict(), 10, dataset="fm")
        img = c.embed("fm", "emb/image", model_version=10, dtype="float32")
        txt = c.embed("fm", "emb/text", model_version=10, tower="text", dtype="float32")
        assert img.state == txt.state == "done" and img.dim == txt.dim > 0
    st = Store(root / "fm")
    np.testing.assert_allclose(st.embeddings("emb/text"), embed_texts(clip, st.texts(), batch_size=64), atol=1e-4)
    x, _ = st.take(np.arange(len(st)))
    np.testing.assert_allclose(st.embeddings("emb/image"), embed_images(clip, np.array(x), (28, 28)), atol=1e-4)
