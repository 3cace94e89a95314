"""Gradient-proxy features: ``softmax(model(x)) - onehot(y)`` per example (CRAIG / NeSSA).

With ``embedding=True`` the feature is the outer product of that vector with the model's
penultimate embedding, flattened row-major (``[C * E]``, index ``c * E + e``): exactly the
gradient of the cross-entropy loss with respect to the last Linear layer's weight.

Batched under ``torch.inference_mode`` (no autograd graph), on an eval-mode copy of the model
with BatchNorm folded into the convolutions before it (channels-last on the CPU; the caller's
model is not touched); memory is one batch of activations plus the ``[N, D]`` float32 output.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from host.backends import Backend, parse_backend
from host.backends import load as load_backend
from host.models import to_input

__all__ = ["gradient_features", "torch_features", "store_features", "feature_dim"]


def feature_dim(model: torch.nn.Module, embedding: bool) -> int:
    """Feature width: ``C`` or ``C * E`` for a model whose head is ``Linear(E, C)``."""
    head = model.head
    return head.out_features * (head.in_features if embedding else 1)


def _check_labels(labels: Any, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must be 1-D with one label per sample: {n} samples, labels shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {y.dtype}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64, copy=False)


def _batch_features(model, xb: torch.Tensor, yb: torch.Tensor, embedding: bool) -> torch.Tensor:
    emb = model.embed(xb)
    g = torch.softmax(model.head(emb), dim=1)
    g[torch.arange(g.shape[0]), yb] -= 1.0
    if embedding:
        g = (g.unsqueeze(2) * emb.unsqueeze(1)).reshape(g.shape[0], -1)
    return g


def _inference_copy(model: torch.nn.Module, *, cpu: bool) -> torch.nn.Module:
    """An eval-mode copy of ``model`` that computes the same outputs faster (the caller's model is
    left as it is): every Conv2d followed by a BatchNorm2d inside an ``nn.Sequential`` is fused
    into one convolution, every ReLU followed by a MaxPool2d swaps with it (max commutes with a
    non-decreasing function, so the output is the same bit for bit, and the ReLU touches a quarter
    of the values), and on the CPU convolutions run channels-last (oneDNN's fast path).
    Measured on the small CNN, 3,200 images of 28x28, one thread, 512-row batches: 0.76 s as it
    was, 0.48 s channels-last, 0.38 s fused too; with the pool first and 128-row batches
    (``_CPU_ROWS``) 0.11 s. Outputs equal to float rounding (6e-8; a test checks 1e-5)."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(model).eval()
    for seq in [m for m in net.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], torch.nn.Conv2d) and isinstance(seq[i + 1], torch.nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = torch.nn.Identity()
        _pool_before_relu(seq)
    if cpu and any(isinstance(m, torch.nn.Conv2d) for m in net.modules()):
        net = net.to(memory_format=torch.channels_last)
    return net


def _pool_before_relu(seq: torch.nn.Sequential) -> None:
    """Swap every ``ReLU, MaxPool2d`` pair of ``seq`` (Identity layers between them skipped) in
    place: ``relu(maxpool(x)) == maxpool(relu(x))`` exactly, padding included (-inf pads)."""
    layers = [i for i, m in enumerate(seq) if not isinstance(m, torch.nn.Identity)]
    for a, b in zip(layers, layers[1:]):
        if type(seq[a]) is torch.nn.ReLU and type(seq[b]) is torch.nn.MaxPool2d:
            seq[a], seq[b] = seq[b], torch.nn.ReLU(inplace=True)


# Rows per forward on the CPU: a small CNN's first activations of 128 images (~6 MB) stay near
# the core's caches; 512-row batches ran 2.2x slower per image (measured, one thread, 28x28).
_CPU_ROWS = 128


def _run(model, batches: Iterable[tuple[Any, np.ndarray]], n: int, sample_shape, embedding: bool, progress: bool):
    from tqdm.auto import tqdm

    num_classes = model.head.out_features
    out = np.empty((n, feature_dim(model, embedding)), dtype=np.float32)
    device = next(model.parameters()).device
    net = _inference_copy(model, cpu=device.type == "cpu")
    pos = 0
    with torch.inference_mode(), tqdm(total=n, disable=not progress, desc="features", unit="ex") as bar:
        for samples, labels in batches:
            y = _check_labels(labels, len(samples), num_classes)
            if isinstance(samples, np.ndarray) and not samples.flags.writeable:
                samples = np.array(samples)  # store batches are read-only mmaps; torch wants writable
            x = to_input(samples, sample_shape).to(device)
            yt = torch.as_tensor(y, device=device)
            rows = _CPU_ROWS if device.type == "cpu" else len(y)
            for r0 in range(0, len(y), max(rows, 1)):
                g = _batch_features(net, x[r0 : r0 + rows], yt[r0 : r0 + rows], embedding)
                out[pos + r0 : pos + r0 + len(g)] = g.cpu().numpy()
            pos += len(y)
            bar.update(len(y))
    if pos != n:
        raise ValueError(f"expected {n} samples, got {pos}")
    return out


def torch_features(
    model: torch.nn.Module,
    samples: Any,
    labels: Any,
    *,
    sample_shape: Sequence[int] | None = None,
    batch_size: int = 512,
    embedding: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """The CPU backend's feature extractor (same arguments as :func:`gradient_features`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(samples)
    y = _check_labels(labels, n, model.head.out_features)
    shape = tuple(sample_shape) if sample_shape is not None else tuple(samples.shape[1:])

    def batches() -> Iterator[tuple[Any, np.ndarray]]:
        for b0 in range(0, n, batch_size):
            yield samples[b0 : b0 + batch_size], y[b0 : b0 + batch_size]

    return _run(model, batches(), n, shape, embedding, progress)


def gradient_features(
    model: torch.nn.Module,
    samples: Any,
    labels: Any,
    *,
    sample_shape: Sequence[int] | None = None,
    batch_size: int = 512,
    embedding: bool = False,
    backend: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Per-example features ``[N, C]`` (or ``[N, C * E]`` with ``embedding``), float32.

    ``samples``: uint8 ``[N, *sample_shape]`` as stored (scaled to [0, 1] by
    :func:`host.models.to_input`) or float model inputs (array or tensor, used as they are);
    ``sample_shape`` defaults to ``samples.shape[1:]``. ``labels``: int ``[N]``.
    """
    key = parse_backend(backend)
    if key is Backend.CPU:  # the progress bar is a CPU-backend extra
        return torch_features(
            model, samples, labels, sample_shape=sample_shape, batch_size=batch_size, embedding=embedding, progress=progress
        )
    impl = load_backend(key)
    return impl.features(model, samples, labels, sample_shape=sample_shape, batch_size=batch_size, embedding=embedding)


def store_features(
    model: torch.nn.Module, store: Any, *, batch_size: int = 512, embedding: bool = False, progress: bool = False
) -> np.ndarray:
    """Features for every sample of a :class:`storage_service.store.Store`, in id order,
    streaming its batches (memory: one batch plus the output)."""
    m = store.manifest
    batches = ((s, l) for _, s, l in store.iter_batches(batch_size))
    return _run(model, batches, len(store), tuple(m.sample_shape), embedding, progress)
