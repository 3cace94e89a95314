"""``nessa embed``: in-process on a store root (a pushed model or a model file), through a running
service, resuming a killed run, and bad options refused by name with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from host.embedding import embed_images
from host.models import build_model
from nessa.cli import main
from storage_service.client import StorageClient
from storage_service.embed_jobs import _identity, check_options, job_dir
from storage_service.ingest import write_store
from storage_service.ingest.idx import read_idx
from storage_service.store import Store
from tests.service.helpers import running


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    return build_model("small_cnn", (28, 28), 10)


@pytest.fixture(scope="module")
def root(tmp_path_factory, fashion_mnist_dir, model):
    x = read_idx(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")[:200]
    y = read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")[:200].astype(np.int64)
    r = tmp_path_factory.mktemp("embed-cli")
    write_store(r / "fm", x, y, name="fm")
    torch.save({"arch": "small_cnn", "state": model.state_dict()}, r / "model.pt")
    with running(r) as (_, port), StorageClient(f"127.0.0.1:{port}") as c:
        c.push_model("small_cnn", model.state_dict(), 1, dataset="fm")
    return r


def _ref(root, model):
    x, _ = Store(root / "fm").take(np.arange(200))
    return embed_images(model, np.array(x), (28, 28), batch_size=200)


def test_embed_in_process_with_a_pushed_model_and_a_file(root, model, capsys):
    assert main(["embed", "fm", "--column", "emb/a", "--store", str(root), "--dtype", "float32", "--quiet"]) == 0
    assert "column emb/a written, 200 rows" in capsys.readouterr().out
    np.testing.assert_allclose(Store(root / "fm").embeddings("emb/a"), _ref(root, model), atol=1e-4)
    assert main(["embed", "fm", "--column", "emb/b", "--store", str(root), "--model-file", str(root / "model.pt"),
                 "--arch", "small_cnn", "--dtype", "float32", "--quiet"]) == 0
    np.testing.assert_allclose(Store(root / "fm").embeddings("emb/b"), _ref(root, model), atol=1e-4)
    assert Store(root / "fm").columns["emb/b"].source.startswith("embed:small_cnn@")
    assert main(["embed", "fm", "--column", "emb/b", "--store", str(root), "--quiet"]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_embed_through_a_running_service(root, model, capsys):
    with running(root) as (_, port):
        assert main(["embed", "fm", "--column", "emb/c", "--server", f"127.0.0.1:{port}", "--model", "1", "--quiet"]) == 0
        assert "column emb/c written" in capsys.readouterr().out
        assert main(["embed", "fm", "--column", "emb/d", "--server", f"127.0.0.1:{port}", "--tower", "text",
                     "--quiet"]) == 2
        assert "text" in capsys.readouterr().err
    got = Store(root / "fm").embeddings("emb/c")  # float16 by default
    np.testing.assert_allclose(got, _ref(root, model), rtol=2e-3, atol=2e-3)


def test_a_killed_run_resumes(root, model, capsys):
    import hashlib

    st = Store(root / "fm")
    sha = hashlib.sha256((root / "model.pt").read_bytes()).hexdigest()
    opts = check_options("emb/r", chunk_rows=8192)
    folder = job_dir(root, "fm", "emb/r")
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps(_identity(st, "fm", opts, sha)))
    ref = _ref(root, model)
    np.save(folder / "chunk-000000.npy", ref)  # the one chunk finished before the kill
    assert main(["embed", "fm", "--column", "emb/r", "--store", str(root), "--model-file", str(root / "model.pt"),
                 "--arch", "small_cnn", "--dtype", "float32", "--quiet"]) == 0
    assert "resumed after 200 rows" in capsys.readouterr().out
    np.testing.assert_array_equal(Store(root / "fm").embeddings("emb/r"), ref)


@pytest.mark.parametrize("extra, text", [
    (["--column", "proxy"], "--column"),
    (["--column", "emb/x", "--tower", "audio"], "--tower"),
    (["--column", "emb/x", "--dtype", "int8"], "--dtype"),
    (["--column", "emb/x", "--batch-size", "0"], "--batch-size"),
    (["--column", "emb/x", "--arch", "small_cnn"], "--model-file and --arch"),
    (["--column", "emb/x", "--model", "7"], "7"),
    (["--column", "emb/x", "--tower", "text"], "text"),
    (["--column", "emb/x", "--model-file", "/nonexistent.pt", "--arch", "small_cnn"], "--model-file"),
])
def test_bad_options_exit_2_naming_the_option(root, capsys, extra, text):
    assert main(["embed", "fm", "--store", str(root), "--quiet", *extra]) == 2
    assert text in capsys.readouterr().err
    assert "emb/x" not in Store(root / "fm").columns
