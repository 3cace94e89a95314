"""Select with sas / clipcov over real gRPC on a small store with embedding columns."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from host.budget import class_budget
from host.sas import sas_select
from storage_service.client import StorageClient, StorageError
from storage_service.columns import write_embedding_column
from storage_service.ingest import write_store
from tests.service.helpers import running


def _root(tmp_path):
    rng = np.random.default_rng(5)
    n = 240
    y = np.arange(n) % 3
    write_store(tmp_path / "d", rng.integers(0, 256, (n, 1, 4, 4), dtype=np.uint8), y, name="d")
    centres = rng.normal(size=(3, 16))
    img = centres[y] + 0.2 * rng.normal(size=(n, 16))
    write_embedding_column(tmp_path / "d", "emb/proxy", img, dtype="float32")
    write_embedding_column(tmp_path / "d", "emb/text", img + 0.2 * rng.normal(size=(n, 16)), dtype="float32")
    write_embedding_column(tmp_path / "d", "emb/narrow", rng.normal(size=(n, 8)), dtype="float16")
    return tmp_path, img.astype(np.float32), y


def _client(port):
    c = StorageClient(f"127.0.0.1:{port}", timeout=30)
    c.wait_ready()
    return c


def test_sas_and_clipcov_select_per_class(tmp_path):
    root, img, y = _root(tmp_path)
    with running(root) as (server, port), _client(port) as c:
        sas = c.select("d", "sas", 0.1, embedding_column="emb/proxy", seed=2)
        ids, w = server.core.selections.arrays(sas.id)
        assert sas.state == "done" and len(ids) == 3 * class_budget(80, 0.1) and (w == 1).all()
        # the service runs host.sas on the stored column with the data set's labels as latent classes
        ref = sas_select(img, 0.1, labels=y, seed=2)
        assert np.array_equal(np.sort(ids), ref.ids)
        km = c.select("d", "sas", 0.1, embedding_column="emb/proxy", latent_classes=4, seed=2)
        assert km.id != sas.id  # latent_classes is part of the content-addressed id
        # GetSelection says what the selection read
        got = c.get_selection(km.id)
        assert (got.embedding_column, got.text_embedding_column, got.latent_classes) == ("emb/proxy", "", 4)
        again = c.select("d", "sas", 0.1, embedding_column="emb/proxy", seed=2)
        assert again.id == sas.id
        # sas-fl: facility location per pool on the backend's greedy (the emulated kernels here)
        fl = c.select("d", "sas-fl", 0.1, embedding_column="emb/proxy", seed=2, backend="emu")
        ids_fl, _ = server.core.selections.arrays(fl.id)
        ref_fl = sas_select(img, 0.1, labels=y, seed=2, backend="emu", objective="facility-location")
        assert fl.id != sas.id and np.array_equal(np.sort(ids_fl), ref_fl.ids)
        cc = c.select("d", "clipcov", 0.1, embedding_column="emb/proxy", text_embedding_column="emb/text")
        ids, _ = server.core.selections.arrays(cc.id)
        assert cc.state == "done" and len(np.unique(ids)) == len(ids) == 3 * class_budget(80, 0.1)
        # the global greedy splits the class-balanced total over classes by score; the counts say how
        assert list(cc.class_counts) == np.bincount(y[ids], minlength=3).tolist()
        assert (cc.embedding_column, cc.text_embedding_column) == ("emb/proxy", "emb/text")
    # ... and still after a restart (read back from the selection files' summaries)
    with running(root) as (server, port), _client(port) as c:
        again = c.get_selection(km.id)
        assert (again.state, again.embedding_column, again.latent_classes) == ("done", "emb/proxy", 4)


@pytest.mark.parametrize("kw, field", [
    (dict(strategy="sas"), "embedding_column is required"),
    (dict(strategy="sas", embedding_column="emb/nope"), "embedding_column: 'emb/nope' is not an embedding column"),
    (dict(strategy="sas", embedding_column="emb/proxy", latent_classes=241), "latent_classes"),
    (dict(strategy="clipcov", embedding_column="emb/proxy"), "text_embedding_column is required"),
    (dict(strategy="clipcov", embedding_column="emb/proxy", text_embedding_column="emb/narrow"),
     "text_embedding_column 'emb/narrow' has width 8 but embedding_column 'emb/proxy' has width 16"),
    (dict(strategy="random", embedding_column="emb/proxy"), "embedding_column is only for"),
])
def test_bad_embedding_options_are_invalid_argument(tmp_path, kw, field):
    root, _, _ = _root(tmp_path)
    with running(root) as (server, port), _client(port) as c:
        with pytest.raises(StorageError) as err:
            c.select("d", fraction=0.1, **kw)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and field in str(err.value)


# -- nessa select --strategy sas / clipcov (the CLI on the same store, no server) -------------
def test_cli_select_sas_and_clipcov(tmp_path, capsys):
    from nessa.cli import main
    from storage_service.selection_file import read_selection

    root, img, y = _root(tmp_path)
    out = tmp_path / "sas.arrow"
    assert main(["select", str(root / "d"), "--strategy", "sas", "--embedding-column", "emb/proxy",
                 "--latent-classes", "4", "--fraction", "0.1", "--out", str(out), "--quiet"]) == 0
    ids, w, summary = read_selection(out)
    assert summary["strategy"] == "sas" and summary["num_latent_classes"] == 4 and (w == 1).all()
    assert np.array_equal(ids, sas_select(img, 0.1, labels=y, latent=4).ids)
    out_fl = tmp_path / "sas_fl.arrow"
    assert main(["select", str(root / "d"), "--strategy", "sas-fl", "--embedding-column", "emb/proxy",
                 "--fraction", "0.1", "--out", str(out_fl), "--quiet"]) == 0
    ids_fl, _, summary_fl = read_selection(out_fl)
    assert summary_fl["strategy"] == "sas-fl"
    assert np.array_equal(ids_fl, sas_select(img, 0.1, labels=y, objective="facility-location").ids)
    out2 = tmp_path / "cc.arrow"
    assert main(["select", str(root / "d"), "--strategy", "clipcov", "--embedding-column", "emb/proxy",
                 "--text-embedding-column", "emb/text", "--fraction", "0.1", "--out", str(out2), "--quiet"]) == 0
    assert len(read_selection(out2)[0]) == 3 * class_budget(80, 0.1)
    capsys.readouterr()
    for argv, msg in ((["--strategy", "sas"], "needs --embedding-column"),
                      (["--strategy", "clipcov", "--embedding-column", "emb/proxy", "--text-embedding-column", "emb/narrow"],
                       "--text-embedding-column has width 8 but --embedding-column has width 16"),
                      (["--strategy", "sas", "--embedding-column", "emb/proxy", "--latent-classes", "999"], "--latent-classes"),
                      (["--strategy", "sas", "--embedding-column", "emb/none"], "emb/none")):
        rc = main(["select", str(root / "d"), "--fraction", "0.1", "--out", str(tmp_path / "x.arrow"), "--quiet", *argv])
        assert rc != 0 and msg in capsys.readouterr().err, argv
