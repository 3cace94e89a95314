"""``nessa export``: model state + store -> a loadable quantized model file; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.golden.qforward import qforward
from host.models import build_model
from host.quantize import load_qmodel
from nessa.cli import main


@pytest.fixture()
def store_and_model(tmp_path):
    from safetensors.torch import save_file

    from storage_service.ingest import write_store

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (80, 12, 12), dtype=np.uint8)
    write_store(tmp_path / "st", x, rng.integers(0, 3, 80), name="t")
    torch.manual_seed(0)
    save_file(build_model("small_cnn", (12, 12), 3).state_dict(), str(tmp_path / "m.safetensors"))
    return tmp_path, x


def test_export_writes_a_runnable_model(store_and_model, capsys):
    d, x = store_and_model
    assert main(["export", str(d / "m.safetensors"), "--arch", "small_cnn", "--store", str(d / "st"),
                 "--out", str(d / "m.nqm"), "--calib", "40"]) == 0
    qm = load_qmodel(d / "m.nqm")
    assert qm.info["arch"] == "small_cnn" and qm.info["calib_samples"] == 40 and qm.num_classes == 3
    assert qforward(qm, x[:5], np.zeros(5, np.int32)).features.shape == (5, 3)
    assert "MACs per sample" in capsys.readouterr().err


def test_export_errors(store_and_model, capsys):
    d, _ = store_and_model
    base = [str(d / "m.safetensors"), "--store", str(d / "st"), "--out", str(d / "x.nqm")]
    assert main(["export", *base, "--arch", "resnet20"]) == 2
    assert "does not fit arch 'resnet20'" in capsys.readouterr().err
    assert main(["export", *base, "--arch", "small_cnn", "--calib", "0"]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["export", str(d / "m.safetensors"), "--arch", "small_cnn", "--store", str(d / "none"), "--out", "x"]) == 2
    assert "cannot open store" in capsys.readouterr().err


def test_export_never_overwrites_the_model_and_names_an_unwritable_out(store_and_model, capsys):
    d, _ = store_and_model
    model = d / "m.safetensors"
    before = model.read_bytes()
    base = ["export", str(model), "--arch", "small_cnn", "--store", str(d / "st"), "--calib", "8"]
    assert main([*base, "--out", str(model)]) == 2
    assert "is the input model" in capsys.readouterr().err and model.read_bytes() == before
    (d / "afile").write_text("x")
    assert main([*base, "--out", str(d / "afile" / "m.nqm")]) == 2
    assert "cannot write --out" in capsys.readouterr().err
