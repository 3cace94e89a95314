"""int8 exporter and quantized model file: supported layers, refusals, format checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from host.models import build_model, to_input
from host.quantize import load_qmodel, save_qmodel
from host.quantize.export import UnsupportedLayerError, _float_run, _trace, export_model, requant_params
from host.quantize.format import HEADER_WORDS, Op, QModel


class _Net(nn.Module):
    def __init__(self, body: nn.Module, flat: int, classes: int = 3):
        super().__init__()
        self.body, self.flat, self.head = body, nn.Flatten(), nn.Linear(flat, classes)

    def forward(self, x):
        return self.head(self.flat(self.body(x)))


def _x(n=8, shape=(8, 8)):
    return np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("arch,shape", [("small_cnn", (28, 28)), ("resnet20", (12, 12, 3))])
def test_folded_program_equals_model_and_quantized_logits_close(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, shape, 10).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    x = _x(32, shape)
    from host.models import input_chw

    ops = _trace(model, input_chw(shape))
    with torch.no_grad():
        ref = model(to_input(x, shape))
        folded = _float_run(ops, to_input(x, shape))[ops[-1].dst]
    assert torch.allclose(ref, folded, atol=1e-5)
    codes = [o.code for o in ops]
    assert codes[-1] == Op.HEAD and (Op.ADD in codes) == (arch == "resnet20")
    from host.golden.qforward import qforward

    qm = export_model(model, x, shape)
    logits = qforward(qm, x, np.zeros(32, np.int32)).logits / 1024.0
    assert np.abs(logits - ref.numpy()).max() < 0.05 * max(1.0, float(ref.abs().max()))


@pytest.mark.parametrize(
    "body,flat,match",
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Sigmoid()), 128, r"'body\.1' \(Sigmoid\)"),
        (nn.Sequential(nn.Conv2d(1, 2, 7, padding=3)), 128, r"'body\.0' \(Conv2d\): kernel size 7"),
        (nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, groups=2)), 128, r"'body\.0' \(Conv2d\): groups"),
        (nn.Sequential(nn.Conv2d(1, 2, (3, 1))), 2 * 6 * 8, r"non-square kernel_size"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.GELU()), 128, r"'body\.1' \(GELU\)"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(2)), 8, r"only output size 1"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2, padding=1)), 2 * 25, r"AvgPool2d.*padding"),
        (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(2)), 32, r"must follow a Conv2d"),
    ],
)
def test_unsupported_layers_are_refused_by_name(body, flat, match):
    in_c = 2 if any(isinstance(m, nn.Conv2d) and m.groups == 2 for m in body.modules()) else 1
    shape = (in_c, 8, 8) if in_c == 2 else (8, 8)
    with pytest.raises(UnsupportedLayerError, match=match):
        export_model(_Net(body, flat).eval(), _x(4, shape), shape)


def test_output_must_be_a_linear_head_and_relu_needs_sole_producer():
    with pytest.raises(UnsupportedLayerError, match="head"):
        export_model(nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten()), _x(), (8, 8))
    with pytest.raises(UnsupportedLayerError, match="head"):  # a ReLU after the last Linear
        export_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.ReLU()), _x(), (8, 8))

    class Shared(nn.Module):  # conv output used twice: ReLU cannot be fused into it
        def __init__(self):
            super().__init__()
            self.conv, self.head = nn.Conv2d(1, 1, 1), nn.Linear(64, 2)

        def forward(self, x):
            y = self.conv(x)
            return self.head((torch.relu(y) + y).flatten(1))

    with pytest.raises(UnsupportedLayerError, match="ReLU"):
        export_model(Shared(), _x(), (8, 8))


def test_identity_and_dropout_are_no_ops():
    body = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Identity(), nn.ReLU(), nn.Dropout(0.5))
    qm = export_model(_Net(body, 128).eval(), _x(), (8, 8))
    assert [int(op[0]) for op in qm.ops()] == [Op.CONV, Op.HEAD] and int(qm.ops()[0][13]) == 1


def test_requant_params():
    for m in (1e-6, 0.0031, 0.5, 0.75, 1.0, 3.7, 1234.5):
        mult, shift = requant_params(m)
        assert 2**30 <= mult < 2**31 and 1 <= shift <= 62
        assert abs(mult / 2.0**shift - m) <= m * 2**-30
    assert requant_params(0.0) == (0, 1)
    with pytest.raises(ValueError):
        requant_params(float("nan"))


def test_file_round_trip_and_format_checks(tmp_path):
    torch.manual_seed(1)
    qm = export_model(build_model("small_cnn", (8, 8), 4).eval(), _x(), (8, 8), arch="small_cnn")
    p = save_qmodel(qm, tmp_path / "m.nqm")
    back = load_qmodel(p)
    assert np.array_equal(back.program, qm.program) and np.array_equal(back.weights, qm.weights)
    assert back.info["arch"] == "small_cnn" and back.embed_scale == qm.embed_scale
    bad = qm.program.copy()
    bad[1] = 99
    with pytest.raises(ValueError, match="version 99"):
        QModel(program=bad, weights=qm.weights)
    bad = qm.program.copy()
    bad[0] = 0
    with pytest.raises(ValueError, match="magic"):
        QModel(program=bad, weights=qm.weights)
    with pytest.raises(ValueError, match="weight bytes"):
        QModel(program=qm.program, weights=qm.weights[:-1])
    bad = qm.program.copy()
    bad[HEADER_WORDS] = 42
    with pytest.raises(ValueError, match="opcode"):
        QModel(program=bad, weights=qm.weights)
    from safetensors.numpy import save_file

    save_file({"program": qm.program}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="not a NeSSA quantized model"):
        load_qmodel(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_qmodel(tmp_path / "missing.nqm")


def test_calibration_input_checks():
    model = build_model("small_cnn", (8, 8), 4).eval()
    with pytest.raises(ValueError, match="uint8"):
        export_model(model, np.zeros((2, 8, 8), np.float32), (8, 8))
    with pytest.raises(ValueError, match="at least one"):
        export_model(model, np.zeros((0, 8, 8), np.uint8), (8, 8))
