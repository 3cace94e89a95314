"""Gradient-proxy features: equal to autograd's last-layer gradients, batch-invariant, no
autograd graph, mode restored, store streaming, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import host
from host.features import feature_dim, store_features
from host.models import build_model, to_input


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[:300] * (255 / 16)).round().astype(np.uint8)  # [300, 8, 8] like a stored image
    return x, d.target[:300].astype(np.int64)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("small_cnn", (8, 8), 10)
    with torch.no_grad():  # non-trivial BN statistics so eval mode matters
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m


def _autograd_reference(model, x, y):
    """Per-example d CE / d logits and d CE / d head.weight, by autograd."""
    model.eval()
    xs = to_input(x, (8, 8))
    g_logits, g_w = [], []
    for i in range(len(y)):
        model.zero_grad()
        logits = model(xs[i : i + 1]).requires_grad_(True)
        logits.retain_grad()
        torch.nn.functional.cross_entropy(logits, torch.tensor([y[i]])).backward()
        g_logits.append(logits.grad[0].clone())
        g_w.append(model.head.weight.grad.flatten().clone())
    return torch.stack(g_logits).numpy(), torch.stack(g_w).numpy()


def test_features_equal_last_layer_gradients(digits, model):
    x, y = digits
    g = host.gradient_features(model, x[:20], y[:20], batch_size=7)
    e = host.gradient_features(model, x[:20], y[:20], batch_size=7, embedding=True)
    ref_logits, ref_w = _autograd_reference(model, x[:20], y[:20])
    assert g.shape == (20, 10) and g.dtype == np.float32
    assert e.shape == (20, 10 * 64) == (20, feature_dim(model, True))
    np.testing.assert_allclose(g, ref_logits, atol=1e-6)
    np.testing.assert_allclose(e, ref_w, atol=1e-5)
    np.testing.assert_allclose(g.sum(1), 0, atol=1e-5)  # softmax - onehot sums to 0


def test_batch_size_invariant_and_mode_restored(digits, model):
    x, y = digits
    model.train()
    a = host.gradient_features(model, x, y, batch_size=300)
    b = host.gradient_features(model, x, y, batch_size=16)
    assert model.training  # restored
    np.testing.assert_allclose(a, b, atol=1e-6)
    model.eval()


def test_float_inputs_give_the_same_features(digits, model):
    x, y = digits
    a = host.gradient_features(model, x[:50], y[:50])
    xf = to_input(x[:50], (8, 8))  # float NCHW tensor, used as is
    b = host.gradient_features(model, xf, y[:50])
    np.testing.assert_allclose(a, b, atol=1e-6)
    flat = host.gradient_features(model, x[:50].reshape(50, 64), y[:50], sample_shape=(8, 8))
    np.testing.assert_allclose(a, flat, atol=1e-6)


def test_store_features_match_arrays(tmp_path, digits, model):
    from storage_service.ingest import write_store

    x, y = digits
    st = write_store(tmp_path / "digits", x, y, name="digits", shard_bytes=4096)
    a = store_features(model, st, batch_size=64)
    b = host.gradient_features(model, x, y)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_inputs(digits, model):
    x, y = digits
    with pytest.raises(ValueError, match="one label per sample"):
        host.gradient_features(model, x[:10], y[:9])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        host.gradient_features(model, x[:3], np.array([0, 10, 1]))
    with pytest.raises(ValueError, match="batch_size"):
        host.gradient_features(model, x[:3], y[:3], batch_size=0)
    with pytest.raises(ValueError, match="unknown backend"):
        host.gradient_features(model, x[:3], y[:3], backend="tpu")


@pytest.mark.parametrize("arch, shape", [("small_cnn", (28, 28)), ("resnet20", (32, 32, 3))])
def test_fused_channels_last_copy_gives_the_models_own_features_and_leaves_it_alone(arch, shape):
    """Features run on an eval copy with BatchNorm folded into the convolutions: the same numbers
    as the model itself (with real BatchNorm statistics), and the caller's model is untouched."""
    import torch

    from host.features import gradient_features
    from host.models import build_model, to_input

    torch.manual_seed(0)
    model = build_model(arch, shape, 10)
    x = np.random.default_rng(0).integers(0, 255, (48, *shape), dtype=np.uint8)
    y = np.random.default_rng(1).integers(0, 10, 48)
    with torch.no_grad():
        model(to_input(x, shape))  # train mode: BatchNorm running statistics move off their defaults
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = gradient_features(model, x, y, sample_shape=shape, batch_size=16)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.is_contiguous() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        want = torch.softmax(model(to_input(x, shape)), 1).numpy()
    want[np.arange(48), y] -= 1.0
    np.testing.assert_allclose(feats, want, atol=1e-5)


def test_inference_copy_pools_before_relu_and_cpu_rows_give_the_same_features():
    """The CPU copy runs max-pool before ReLU (they commute) and splits a read batch into
    cache-sized forwards: the features equal one row at a time, for a batch over ``_CPU_ROWS``."""
    import torch

    from host.features import _CPU_ROWS, _inference_copy, gradient_features
    from host.models import build_model

    torch.manual_seed(0)
    model = build_model("small_cnn", (28, 28), 10)
    kinds = [type(m).__name__ for m in _inference_copy(model, cpu=True).features if type(m).__name__ != "Identity"]
    assert kinds[:3] == ["Conv2d", "MaxPool2d", "ReLU"] and kinds[3:6] == ["Conv2d", "MaxPool2d", "ReLU"]
    n = _CPU_ROWS * 2 + 37
    x = np.random.default_rng(0).integers(0, 255, (n, 28, 28), dtype=np.uint8)
    y = np.random.default_rng(1).integers(0, 10, n)
    big = gradient_features(model, x, y, batch_size=n)
    one = np.concatenate([gradient_features(model, x[i : i + 1], y[i : i + 1]) for i in range(0, n, 41)])
    np.testing.assert_allclose(big[::41], one, atol=1e-6)
    assert np.isfinite(big).all() and big.shape == (n, 10)
