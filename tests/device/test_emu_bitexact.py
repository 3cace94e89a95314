"""The emulated HLS kernels equal the golden model bit for bit on >= 10,000 random vectors.

Many small random cases in one process: random classes (sizes, dimensions, ties, duplicates,
bounds, modes, seeds) for ``nessa_greedy``; random int8 models (layer mixes, kernel sizes,
strides, paddings, pools, residual adds, channel layouts, class counts, saturating inputs)
for ``nessa_features``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from host.device.flow import DeviceFlow
from host.golden import nessa_greedy_ref
from host.golden.qforward import qforward
from host.quantize.export import export_model


@pytest.fixture(scope="module")
def flow():
    from host.device import emu

    return DeviceFlow(emu, emu.default_xclbin())


def _class(rng: np.random.Generator) -> np.ndarray:
    n, d = int(rng.integers(1, 70)), int(rng.integers(1, 17))
    kind = rng.integers(0, 4)
    if kind == 0:  # softmax - onehot, the real feature
        p = rng.dirichlet(np.ones(d) * rng.uniform(0.1, 2), n)
        p[:, rng.integers(0, d)] -= 1
        return np.rint(p * 16384).astype(np.int16)
    if kind == 1:  # coarse grid: many exact ties and duplicate members
        return (rng.integers(-3, 4, (n, d)) * 1000).astype(np.int16)
    if kind == 2:  # narrow spread
        return rng.integers(-200, 200, (n, d)).astype(np.int16)
    return rng.integers(-4000, 4000, (n, d)).astype(np.int16)


def test_greedy_bit_exact_on_random_classes(flow):
    rng = np.random.default_rng(12345)
    vectors = cases = 0
    while vectors < 10_000:
        q = _class(rng)
        n = len(q)
        k = int(rng.integers(1, n + 1))
        mode = int(rng.integers(0, 3))
        maxd = 0 if rng.random() < 0.5 else int(rng.integers(1, 65536))
        seed, ss = int(rng.integers(0, 2**32)), int(rng.integers(1, n + 1))
        run = flow.greedy(q, k, maxd_q=maxd, mode=mode, seed=seed, sample_size=ss)
        ref, m = nessa_greedy_ref(q, k, maxd, mode, seed, ss)
        where = f"case {cases}: n={n} d={q.shape[1]} k={k} mode={mode} maxd={maxd}"
        assert np.array_equal(run.result.ids, ref.ids), where
        assert np.array_equal(run.result.gains, ref.gains), where
        assert np.array_equal(run.result.weights, ref.weights), where
        assert run.result.objective == ref.objective and run.maxd_q == m, where
        vectors += n
        cases += 1
    assert cases >= 100


class _RandomNet(nn.Module):
    """A random stack in the exporter's supported set; ``forward = head(embed(x))``."""

    def __init__(self, rng: np.random.Generator, in_c: int, hw: int, classes: int):
        super().__init__()
        self.layers = nn.ModuleList()
        self.kinds: list[str] = []
        c, h = in_c, hw
        for _ in range(int(rng.integers(1, 5))):
            kind = str(rng.choice(["conv", "conv", "res", "maxpool", "avgpool"]))
            if kind in ("maxpool", "avgpool") and h < 4:
                kind = "conv"
            if kind == "conv":
                k = int(rng.choice([1, 3, 5]))
                s = int(rng.choice([1, 1, 2])) if h >= 6 else 1
                p = int(rng.integers(0, k // 2 + 1))
                if (h + 2 * p - k) // s + 1 < 1:
                    p = k // 2
                co = int(rng.integers(1, 9))
                self.layers.append(nn.Sequential(nn.Conv2d(c, co, k, s, p, bias=bool(rng.random() < 0.5)),
                                                 nn.BatchNorm2d(co), nn.ReLU() if rng.random() < 0.7 else nn.Identity()))
                c, h = co, (h + 2 * p - k) // s + 1
            elif kind == "res":
                self.layers.append(nn.ModuleList([nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]))
            elif kind == "maxpool":
                k, p = (3, 1) if rng.random() < 0.5 else (2, 0)
                self.layers.append(nn.MaxPool2d(k, 2, p))
                h = (h + 2 * p - k) // 2 + 1
            else:
                self.layers.append(nn.AvgPool2d(2))
                h = h // 2
            self.kinds.append(kind)
        self.gap = bool(rng.random() < 0.4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        flat = c if self.gap else c * h * h
        self.mid = nn.Linear(flat, int(rng.integers(2, 17))) if rng.random() < 0.6 else None
        self.relu = nn.ReLU()
        self.head = nn.Linear(self.mid.out_features if self.mid is not None else flat, classes)
        for prm in self.parameters():
            nn.init.normal_(prm, 0.0, float(rng.uniform(0.05, 0.8)))
        for mod in self.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.3, 2.0)

    def embed(self, x):
        for kind, layer in zip(self.kinds, self.layers):
            if kind == "res":
                conv, bn, relu = layer
                x = relu(bn(conv(x)) + x)
            else:
                x = layer(x)
        x = self.flat(self.pool(x) if self.gap else x)
        return self.relu(self.mid(x)) if self.mid is not None else x

    def forward(self, x):
        return self.head(self.embed(x))


def test_features_bit_exact_on_random_models(flow):
    rng = np.random.default_rng(777)
    torch.manual_seed(0)
    vectors = models = 0
    while vectors < 10_000:
        hw, in_c, classes = int(rng.integers(4, 13)), int(rng.choice([1, 3])), int(rng.integers(2, 13))
        shape = (hw, hw) if in_c == 1 else ((hw, hw, 3) if rng.random() < 0.5 else (3, hw, hw))
        net = _RandomNet(rng, in_c, hw, classes).eval()
        n = int(rng.integers(100, 400))
        x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        y = rng.integers(0, classes, n).astype(np.int32)
        # calibrating on a few samples makes the rest saturate: the clamps get exercised too
        qm = export_model(net, x, shape, calib_limit=int(rng.choice([4, 64, 400])))
        ref = qforward(qm, x, y)
        got = flow.features(qm, x, y, embedding=True, batch_size=int(rng.integers(50, 400)))
        assert np.array_equal(got.features, ref.features), f"model {models}: {net.kinds} gap={net.gap} shape={shape}"
        assert np.array_equal(got.embedding, ref.embedding), f"model {models}: embedding"
        vectors += n
        models += 1
    assert models >= 20


def test_square_roots_are_exact(flow):
    """The kernel's multiplier-free square roots are what HLS synthesises and what the emulator
    runs (no float fast path any more): isqrt32 on clamped d2 and isqrt64 for phase 0's maximum,
    against Python's exact integer root on edges, perfect squares +- 1 and random values."""
    import ctypes
    import math

    from host.device import emu

    lib = ctypes.CDLL(emu.default_xclbin())
    f32, f64 = lib.nessa_greedy__isqrt32, lib.nessa_greedy__isqrt64
    f32.restype, f32.argtypes = ctypes.c_uint32, [ctypes.c_uint32]
    f64.restype, f64.argtypes = ctypes.c_uint32, [ctypes.c_uint64]
    rng = np.random.default_rng(5)
    v32 = [0, 1, 2, 3, 2**32 - 1, 65535**2 - 1, 65535**2, 65535**2 + 1] + [int(v) for v in rng.integers(0, 2**32, 20000)]
    v32 += [r * r + e for r in range(0, 65536, 41) for e in (-1, 0, 1) if 0 <= r * r + e < 2**32]
    assert [f32(v) for v in v32] == [math.isqrt(v) for v in v32]
    v64 = [0, 1, 2**44 - 1, 2**44, 2**63, 2**64 - 1] + [int(v) for v in rng.integers(0, 2**62, 5000)]
    assert [f64(v) for v in v64] == [math.isqrt(v) for v in v64]
    # d2 near 2**44 (the largest the kernel sees) and d2 >= 2**32 (clamped: similarity 0)
    big = np.array([[32767] * 4096, [-32768] * 4096, [0] * 4096], np.int16)
    for maxd in (65535, 0):
        if maxd == 0:
            with pytest.raises(Exception, match="status 4"):  # largest distance > 65535
                flow.greedy(big, 1, maxd_q=0, mode=0)
            continue
        run = flow.greedy(big, 2, maxd_q=maxd, mode=0)
        ref, _ = nessa_greedy_ref(big, 2, maxd)
        assert np.array_equal(run.result.ids, ref.ids) and run.result.objective == ref.objective
