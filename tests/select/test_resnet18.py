"""ResNet-18 (CIFAR style) beside ResNet-20 and the small CNN: its size against the literature,
any input size, gradient features through the fused-BatchNorm copy, the model registry's check,
and the int8 exporter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.features import gradient_features
from host.models import Arch, ResNet18, build_model, to_input


def test_registered_under_its_wire_name():
    assert Arch("resnet18") is Arch.RESNET18
    assert isinstance(build_model("resnet18", (32, 32, 3), 10), ResNet18)
    with pytest.raises(ValueError, match="resnet18"):  # the list of known archs names it
        build_model("resnet-18", (32, 32, 3), 10)


def test_size_matches_the_literature():
    from sim.perf.macs import model_macs

    model = build_model("resnet18", (3, 32, 32), 10)
    # The CIFAR ResNet-18 with 1x1-conv shortcuts (as in the CRAIG / CREST code): 11,173,962
    # parameters and ~0.56 G multiply-adds per 32x32 image.
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    macs_32 = model_macs("resnet18", (3, 32, 32), 10)
    assert 0.55e9 < macs_32 < 0.56e9
    # No max-pool, global average pool: cost scales with the pixels (64x64: 4x), same parameters.
    assert macs_32 == pytest.approx(4 * model_macs("resnet18", (3, 16, 16), 10), rel=1e-3)
    stem = model.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert [m.conv2.out_channels for m in model.layers] == [64, 64, 128, 128, 256, 256, 512, 512]


def test_any_image_size_gives_a_512_embedding():
    torch.manual_seed(0)
    for shape in [(32, 32, 3), (28, 28)]:  # colour and grey
        model = build_model("resnet18", shape, 7).eval()
        x = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
        with torch.no_grad():
            emb = model.embed(to_input(x, shape))
        assert emb.shape == (1, 512) and model.head(emb).shape == (1, 7) and torch.isfinite(emb).all()


def test_gradient_features_through_the_fused_copy_match_the_model():
    """host.features folds each Conv2d+BatchNorm2d pair of an nn.Sequential (the stem and the
    1x1-conv shortcuts here) and runs channels-last: same numbers as the eval model itself.
    The last-layer features (softmax - onehot) x embedding check both factors at once."""
    shape = (8, 8, 3)
    torch.manual_seed(0)
    model = build_model("resnet18", shape, 10)
    x = np.random.default_rng(0).integers(0, 256, (12, *shape), dtype=np.uint8)
    y = np.random.default_rng(1).integers(0, 10, 12)
    with torch.no_grad():
        model(to_input(x, shape))  # train mode: BatchNorm running statistics move off their defaults
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = gradient_features(model, x, y, sample_shape=shape, batch_size=8, embedding=True)  # two batches
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # caller's model untouched
    model.eval()
    with torch.no_grad():
        emb = model.embed(to_input(x, shape))
        g = torch.softmax(model.head(emb), 1).numpy()
    g[np.arange(12), y] -= 1.0
    assert feats.shape == (12, 10 * 512)
    np.testing.assert_allclose(feats, (g[:, :, None] * emb.numpy()[:, None, :]).reshape(12, -1), atol=1e-5)


def test_model_registry_accepts_resnet18_states_and_refuses_others():
    from storage_service._errors import InvalidArgument
    from storage_service.models_registry import check_state

    state = build_model("resnet18", (32, 32, 3), 100).state_dict()
    check_state("resnet18", state, (32, 32, 3), 100)
    with pytest.raises(InvalidArgument, match="resnet18 state does not match"):
        check_state("resnet18", build_model("resnet20", (32, 32, 3), 100).state_dict(), (32, 32, 3), 100)
    with pytest.raises(InvalidArgument, match="head"):
        check_state("resnet18", state, (32, 32, 3), 10)


def test_int8_export_traces_resnet18():
    from host.quantize.export import _float_run, _trace
    from host.quantize.format import Op

    shape = (8, 8, 3)
    torch.manual_seed(0)
    model = build_model("resnet18", shape, 5).eval()
    ops = _trace(model, (3, 8, 8))
    x = to_input(np.random.default_rng(0).integers(0, 256, (4, *shape), dtype=np.uint8), shape)
    with torch.no_grad():
        assert torch.allclose(model(x), _float_run(ops, x)[ops[-1].dst], atol=1e-4)
    codes = [o.code for o in ops]
    assert codes[-1] == Op.HEAD and codes.count(Op.ADD) == 8  # one residual add per BasicBlock
