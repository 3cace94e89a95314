"""Real data through the emulated kernels: a SmallCNN trained briefly on Fashion-MNIST, exported to
int8, run by ``nessa_features`` over the whole test set, and selected by ``nessa_greedy``.

* quantized argmax agrees with the float model on >= 97 % of the 10,000 test images;
* the facility-location objective from the fixed-point features is within 1 % of the float CPU
  backend's on the same classes (max_dist = each class's largest distance for both), and the
  emulated selection scores within 1 % of the CPU selection under the *float* objective.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.backends import Backend
from host.device.backend import bind
from host.models import build_model, to_input
from storage_service.ingest.idx import read_idx


def _load(folder, split):
    stem = {"train": "train", "test": "t10k"}[split]
    x = read_idx(next(folder.glob(f"{stem}-images-idx3-ubyte*")))
    y = read_idx(next(folder.glob(f"{stem}-labels-idx1-ubyte*"))).astype(np.int64)
    return x, y


@pytest.fixture(scope="module")
def trained(fashion_mnist_dir):
    x, y = _load(fashion_mnist_dir, "train")
    rng = np.random.default_rng(0)
    sub = rng.permutation(len(x))[:4000]  # one pass over 4,000 images: ~80 % test accuracy, seconds of CPU
    torch.manual_seed(0)
    model = build_model("small_cnn", (28, 28), 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    xs, ys = to_input(x[sub], (28, 28)), torch.as_tensor(y[sub])
    for lo in range(0, len(sub), 50):
        loss = torch.nn.functional.cross_entropy(model(xs[lo:lo + 50]), ys[lo:lo + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt = _load(fashion_mnist_dir, "test")
    return model, xt, yt


@pytest.fixture(scope="module")
def emu_features(trained):
    model, xt, yt = trained
    return bind(Backend.EMU).features(model, xt, yt, sample_shape=(28, 28), batch_size=2500, embedding=False)


def test_quantized_argmax_agrees_with_float_model(trained, emu_features):
    model, xt, yt = trained
    with torch.no_grad():
        logits = torch.cat([model(to_input(xt[i:i + 2000], (28, 28))) for i in range(0, len(xt), 2000)])
    float_pred = logits.argmax(1).numpy()
    assert (float_pred == yt).mean() > 0.7  # the model did learn something
    p = emu_features.copy()
    p[np.arange(len(p)), yt] += 1.0  # softmax = feature + onehot
    agree = (p.argmax(1) == float_pred).mean()
    assert agree >= 0.97, f"quantized argmax agrees on {agree:.4f}"
    assert emu_features.shape == (10000, 10) and np.all(np.abs(emu_features) <= 1.0)


def test_fixed_point_objective_within_one_percent_of_cpu(trained, emu_features):
    from host.facility_location import objective
    from host.features import torch_features

    model, xt, yt = trained
    g_cpu = torch_features(model, xt, yt, sample_shape=(28, 28), batch_size=2000)
    from host import _cpu_backend as cpu

    dev = bind(Backend.EMU)
    for c in (0, 6):  # an easy class and the hardest (Shirt)
        rows = np.flatnonzero(yt == c)
        k = int(np.ceil(0.1 * len(rows)))
        ids_c, w_c, obj_c = cpu.greedy(g_cpu[rows], k, optimizer="lazy", seed=0, epsilon=0.01, max_dist=None)
        ids_e, w_e, obj_e = dev.greedy(emu_features[rows], k, optimizer="lazy", seed=0, epsilon=0.01, max_dist=None)
        assert abs(obj_e / obj_c - 1) < 0.01, (c, obj_e, obj_c)
        assert w_e.sum() == len(rows) and len(set(ids_e.tolist())) == k
        # the emulated selection, scored on the float features, is as good as the CPU's own
        dmax = float(np.sqrt(((g_cpu[rows][:, None, :] - g_cpu[rows][None, :, :]) ** 2).sum(-1)).max())
        f_e = objective(g_cpu[rows], ids_e, max_dist=dmax)
        f_c = objective(g_cpu[rows], ids_c, max_dist=dmax)
        assert f_e >= 0.99 * f_c, (c, f_e, f_c)
