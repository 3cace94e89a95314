"""``nessa select`` end to end on a real store: model and feature sources, the selection file, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nessa.cli import main
from storage_service.selection_file import read_selection


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from sklearn.datasets import load_digits

    from storage_service.ingest import write_store

    d = load_digits()
    x = (d.images[:400] * (255 / 16)).round().astype(np.uint8)
    return write_store(tmp_path_factory.mktemp("st") / "digits", x, d.target[:400], name="digits")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from safetensors.torch import save_file

    from host.models import build_model

    torch.manual_seed(1)
    m = build_model("small_cnn", (8, 8), 10)
    path = tmp_path_factory.mktemp("m") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    return path, m


def _run(capsys, *argv):
    rc = main(["select", *map(str, argv), "--quiet"])
    return rc, capsys.readouterr()


def test_select_with_model(tmp_path, store, model_file, capsys):
    path, m = model_file
    out = tmp_path / "sel.arrow"
    rc, _ = _run(capsys, store.path, "--fraction", 0.1, "--model", path, "--arch", "small_cnn", "--out", out)
    assert rc == 0
    ids, weights, doc = read_selection(out)
    counts = np.bincount(store.labels, minlength=10)
    assert len(ids) == sum(math.ceil(0.1 * c) for c in counts) == doc["num_selected"]
    assert (np.diff(ids) > 0).all()  # ascending, as the service writes them
    assert weights.sum() == pytest.approx(len(ids), rel=1e-5)
    assert doc["class_counts"] == np.bincount(store.labels[ids], minlength=10).tolist()
    assert doc["objective"] == pytest.approx(sum(c["objective"] for c in doc["per_class"]))
    assert doc["format_version"] == 1 and doc["optimizer"] == "lazy" and doc["strategy"] == "craig"
    # same as the library on the same features
    import host

    samples, labels = store.take(np.arange(len(store)))
    feats = host.gradient_features(m, samples, labels)
    sel = host.select(feats, labels, 0.1)
    np.testing.assert_array_equal(ids, np.sort(sel.ids))


def test_select_with_features_and_stochastic(tmp_path, store, capsys):
    feats = np.random.default_rng(0).normal(size=(len(store), 5)).astype(np.float32)
    np.save(tmp_path / "f.npy", feats)
    out = tmp_path / "nested" / "sel.arrow"
    rc, cap = _run(capsys, store.path, "--fraction", 0.2, "--features", tmp_path / "f.npy", "--out", out,
                   "--optimizer", "stochastic", "--seed", 3, "--raw-weights")
    assert rc == 0 and cap.out.strip() == str(out)
    _, weights, doc = read_selection(out)
    assert doc["optimizer"] == "stochastic" and doc["seed"] == 3 and doc["raw_weights"]
    assert weights.sum() == pytest.approx(len(store))


def _error(capsys, *argv):
    rc, cap = _run(capsys, *argv)
    assert rc == 2
    return cap.err


@pytest.mark.parametrize("fraction", ["0", "1.01", "-1", "nan"])
def test_bad_fraction(tmp_path, store, capsys, fraction):
    np.save(tmp_path / "f.npy", np.zeros((len(store), 2), np.float32))
    err = _error(capsys, store.path, "--fraction", fraction, "--features", tmp_path / "f.npy", "--out", tmp_path / "o.arrow")
    assert "--fraction must be in (0, 1]" in err


def test_bad_features(tmp_path, store, capsys):
    n = len(store)
    np.save(tmp_path / "short.npy", np.zeros((n - 1, 2), np.float32))
    err = _error(capsys, store.path, "--fraction", 0.1, "--features", tmp_path / "short.npy", "--out", tmp_path / "o.arrow")
    assert "length mismatch" in err and f"{n - 1} rows" in err
    bad = np.zeros((n, 2), np.float32)
    bad[5, 0] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    err = _error(capsys, store.path, "--fraction", 0.1, "--features", tmp_path / "inf.npy", "--out", tmp_path / "o.arrow")
    assert "NaN or infinite" in err and "row 5" in err
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    err = _error(capsys, store.path, "--fraction", 0.1, "--features", tmp_path / "junk.npy", "--out", tmp_path / "o.arrow")
    assert "cannot read features" in err
    assert not (tmp_path / "o.arrow").exists()


def test_bad_model(tmp_path, store, model_file, capsys):
    from safetensors.torch import save_file

    path, m = model_file
    out = tmp_path / "o.arrow"
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", path, "--arch", "vgg99", "--out", out)
    assert "unknown arch 'vgg99'" in err
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", path, "--out", out)
    assert "--model needs --arch" in err
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", path, "--arch", "resnet20", "--out", out)
    assert "does not fit arch 'resnet20'" in err and "key" in err
    state = {k: v.contiguous() for k, v in m.state_dict().items()}
    missing = dict(state)
    del missing["head.weight"]
    save_file(missing, str(tmp_path / "missing.safetensors"))
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", tmp_path / "missing.safetensors", "--arch", "small_cnn", "--out", out)
    assert "missing key 'head.weight'" in err
    shaped = dict(state, **{"head.weight": torch.zeros(10, 32)})
    save_file(shaped, str(tmp_path / "shape.safetensors"))
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", tmp_path / "shape.safetensors", "--arch", "small_cnn", "--out", out)
    assert "'head.weight' has shape [10, 32], expected [10, 64]" in err
    extra = dict(state, surprise=torch.zeros(1))
    save_file(extra, str(tmp_path / "extra.safetensors"))
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", tmp_path / "extra.safetensors", "--arch", "small_cnn", "--out", out)
    assert "unexpected key 'surprise'" in err
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    err = _error(capsys, store.path, "--fraction", 0.1, "--model", tmp_path / "junk.safetensors", "--arch", "small_cnn", "--out", out)
    assert "cannot read model state" in err
    err = _error(capsys, tmp_path / "nowhere", "--fraction", 0.1, "--model", path, "--arch", "small_cnn", "--out", out)
    assert "cannot open store" in err


def test_out_never_overwrites_an_input_and_names_an_unusable_folder(tmp_path, store, capsys):
    feats = tmp_path / "f.npy"
    np.save(feats, np.random.default_rng(0).random((len(store), 3), np.float32))
    before = feats.read_bytes()
    err = _error(capsys, store.path, "--fraction", 0.1, "--features", feats, "--out", feats)
    assert "is the input" in err and feats.read_bytes() == before
    (tmp_path / "afile").write_text("x")
    err = _error(capsys, store.path, "--fraction", 0.1, "--features", feats, "--out", tmp_path / "afile" / "s.arrow")
    assert "--out" in err and (tmp_path / "afile").read_text() == "x"


def test_embedding_needs_model(tmp_path, store, capsys):
    feats = tmp_path / "f.npy"
    np.save(feats, np.zeros((len(store), 3), np.float32))
    err = _error(capsys, store.path, "--fraction", 0.1, "--features", feats, "--embedding", "--out", tmp_path / "o.arrow")
    assert "--embedding goes with --model" in err and not (tmp_path / "o.arrow").exists()
