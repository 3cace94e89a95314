"""The EMU / XRT / PYNQ selection backends: :mod:`host.backends`' contract over the FPGA kernels.

``bind(Backend.EMU)`` returns an object with ``greedy`` and ``features``; the device is opened
lazily on first use (one :class:`~host.device.flow.DeviceFlow` per backend and process).

Float -> fixed point at the boundary (the host's only float work):

* ``greedy``: features are quantised to int16 with ``frac`` fractional bits -- 14 (Q1.14, exact
  for the features kernel's own output) unless the values or the distance bound need fewer bits;
  features that do not fit are centred on their mean first (distances do not change).
  ``max_dist=None`` -> ``maxd_q = 0``: the kernel uses the class's largest pairwise distance
  (the CPU backend's convention). The objective is reported as ``F_q / 2**frac``.
* ``features``: the torch model is exported (:func:`host.quantize.export.export_model`,
  calibrated on the first ``CALIB_SAMPLES`` samples) and cached per model and weights; the
  kernel's Q1.14 output is divided by ``2**14``. With ``embedding`` the host forms the outer
  product of that vector with the dequantised int8 embedding (``[N, C * E]``, index ``c * E + e``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from typing import Any

import numpy as np

from host.backends import Backend
from host.golden.similarity import FEAT_FRAC, MAX_DIM, SIM_MAX, maxd_to_q, quantize_features
from host.golden.stochastic import stochastic_sample_size

__all__ = ["bind", "DeviceBackend", "GREEDY_NMAX", "CALIB_SAMPLES", "choose_frac"]

#: Largest class the greedy kernel holds on chip (NESSA_GREEDY_NMAX in nessa_greedy.cpp).
GREEDY_NMAX = 32768
CALIB_SAMPLES = 512
_MODES = {"lazy": 0, "stochastic": 1, "naive": 2}
_RUNTIME = {Backend.EMU: "emu", Backend.XRT: "xrt", Backend.PYNQ: "pynq"}
_log = logging.getLogger(__name__)


def choose_frac(x: np.ndarray, max_dist: float | None) -> tuple[int, np.ndarray]:
    """(fractional bits, features to quantise) so that values fit int16 and distances uint16."""
    x = np.asarray(x, dtype=np.float64)
    if np.abs(x).max(initial=0.0) >= 2.0:
        x = x - x.mean(axis=0, keepdims=True)
    amax = float(np.abs(x).max(initial=0.0))
    # every pairwise distance is <= 2 * max_i ||x_i|| (triangle inequality through the origin)
    bound = 2.0 * float(np.sqrt((x * x).sum(axis=1)).max(initial=0.0))
    if max_dist is not None:  # similarities only need the given bound to fit uint16
        bound = float(max_dist)
    frac = FEAT_FRAC
    while frac > 0 and (amax * (1 << frac) > 32767 or bound * (1 << frac) > SIM_MAX):
        frac -= 1
    if amax * (1 << frac) > 32767 or bound * (1 << frac) > SIM_MAX:
        raise ValueError(f"features span {bound:.3g}, too wide for the kernel's 16-bit fixed point even at 0 fractional bits")
    return frac, x


class DeviceBackend:
    """Selection through the NeSSA kernels on one runtime (``emu``, ``xrt`` or ``pynq``)."""

    def __init__(self, runtime: str):
        self.runtime = runtime
        self._flow: Any = None
        self._paired: dict[int, Any] = {}  # card index -> flow, for stores read P2P (flow_for_path)
        self._lock = threading.Lock()
        self._models: dict[tuple[int, str], Any] = {}

    @property
    def flow(self) -> Any:
        with self._lock:
            if self._flow is None:
                from host.device.loader import open_flow

                self._flow = open_flow(self.runtime)
            return self._flow

    def flow_for_path(self, path: str, *, sysfs: str = "/sys") -> Any:
        """The flow of the FPGA on the same card as the drive holding ``path`` (host/device/pcie.py
        pairs them by PCIe topology under ``sysfs``); the default flow where no card pairs (and in
        emulation)."""
        if self.runtime != "xrt":
            return self.flow
        from host.device.pcie import paired_device

        pair = paired_device(path, sysfs)
        if pair is None:
            _log.warning("no FPGA shares a PCIe switch with the drive holding %s: device 0 reads it "
                         "(P2P then crosses the root complex)", path)
            return self.flow
        index, bdf = pair
        with self._lock:
            if index not in self._paired:
                from host.device.loader import open_flow

                _log.info("%s: read by XRT device %d (%s), the FPGA on the drive's card", path, index, bdf)
                self._paired[index] = open_flow(self.runtime, index, sysfs=sysfs)
            return self._paired[index]

    def greedy(self, features: np.ndarray, k: int, *, optimizer: Any = "lazy", seed: int = 0,
               epsilon: float = 0.01, max_dist: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"features must be a non-empty [n, d] array, got shape {x.shape}")
        n, d = x.shape
        if n > GREEDY_NMAX:
            raise ValueError(f"class of {n} members exceeds the greedy kernel's {GREEDY_NMAX}; "
                             "partition it (select(..., memory_budget_bytes=...) runs GreeDi)")
        if d > MAX_DIM:
            raise ValueError(f"feature dimension {d} exceeds the greedy kernel's {MAX_DIM}")
        if not 1 <= k <= n:
            raise ValueError(f"k must be in [1, {n}], got {k}")
        opt = str(getattr(optimizer, "value", optimizer))
        if opt not in _MODES:
            raise ValueError(f"unknown optimizer {opt!r}; known: {', '.join(_MODES)}")
        if max_dist is not None and not (math.isfinite(float(max_dist)) and float(max_dist) > 0):
            raise ValueError(f"max_dist must be a positive finite number or None, got {max_dist!r}")
        frac, xc = choose_frac(x, max_dist)
        q = quantize_features(xc, frac)
        maxd_q = 0 if max_dist is None else maxd_to_q(float(max_dist), frac)
        ss = stochastic_sample_size(n, k, epsilon) if opt == "stochastic" else 1
        run = self.flow.greedy(q, int(k), maxd_q=maxd_q, mode=_MODES[opt], seed=int(seed), sample_size=ss)
        r = run.result
        return r.ids.astype(np.int64), r.weights.astype(np.int64), r.objective / float(1 << frac)

    def _export(self, model: Any, samples: np.ndarray, sample_shape: tuple[int, ...]) -> Any:
        import torch

        from host.quantize.export import export_model

        h = hashlib.sha256(repr(sample_shape).encode())
        for t in model.state_dict().values():
            h.update(t.detach().cpu().numpy().tobytes())
        key = (id(model), h.hexdigest())
        if key not in self._models:
            # export_model moves the model to the CPU in eval mode; put it back as it was
            was_training = model.training
            device = next(model.parameters(), torch.empty(0)).device
            try:
                with torch.no_grad():
                    self._models = {key: export_model(model, samples[:CALIB_SAMPLES], sample_shape)}  # keep one
            finally:
                model.to(device).train(was_training)
        return self._models[key]

    def features(self, model: Any, samples: Any, labels: Any, *, sample_shape: Any = None, batch_size: int = 4096,
                 embedding: bool = False) -> np.ndarray:
        x = np.asarray(samples)
        if x.dtype != np.uint8:
            raise ValueError(f"the features kernel reads stored uint8 samples, got {x.dtype}")
        shape = tuple(int(s) for s in (sample_shape if sample_shape is not None else x.shape[1:]))
        y = np.asarray(labels)
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"labels must be [N] with N = {len(x)}, got shape {y.shape}")
        qm = self._export(model, x, shape)
        if len(y) and (y.min() < 0 or y.max() >= qm.num_classes):
            raise ValueError(f"labels must be in [0, {qm.num_classes}), got [{y.min()}, {y.max()}]")
        out = self.flow.features(qm, x.reshape(len(x), -1), y.astype(np.int32), embedding=embedding,
                                 batch_size=max(1, int(batch_size)))
        g = out.features.astype(np.float32) / np.float32(1 << FEAT_FRAC)
        if not embedding:
            return g
        e = out.embedding.astype(np.float32) * np.float32(qm.embed_scale)
        return (g[:, :, None] * e[:, None, :]).reshape(len(g), -1)


    def store_features(self, model: Any, store: Any, *, embedding: bool = False) -> np.ndarray:
        """Features of every sample of an opened store (id order), samples read P2P into the
        device (:func:`host.device.p2p.store_features`), float32 like :meth:`features`."""
        from host.device.p2p import store_features

        m = store.manifest
        calib, _ = store.take(np.arange(min(CALIB_SAMPLES, len(store))))
        qm = self._export(model, np.asarray(calib), tuple(int(s) for s in m.sample_shape))
        flow = self.flow_for_path(str(store.path))
        out = store_features(flow, qm, store, embedding=embedding, direct=self.runtime in ("xrt", "emu"))
        g = out.features.astype(np.float32) / np.float32(1 << FEAT_FRAC)
        if not embedding:
            return g
        e = out.embedding.astype(np.float32) * np.float32(qm.embed_scale)
        return (g[:, :, None] * e[:, None, :]).reshape(len(g), -1)


_BOUND: dict[Backend, DeviceBackend] = {}


def bind(backend: Backend) -> DeviceBackend:
    """The (process-wide) device backend for ``backend`` (EMU, XRT or PYNQ)."""
    if backend not in _RUNTIME:
        raise ValueError(f"host.device.backend serves {', '.join(b.value for b in _RUNTIME)}, not {backend.value}")
    if backend not in _BOUND:
        _BOUND[backend] = DeviceBackend(_RUNTIME[backend])
    return _BOUND[backend]
