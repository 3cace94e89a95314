"""Selection backends: where per-class greedy and feature extraction run.

A backend is a module, imported lazily (so the CPU path never imports the device layer),
that provides::

    greedy(features: np.ndarray float32 [n, d], k: int, *, optimizer, seed, epsilon, max_dist)
        -> (local_ids np.int64 [k] in selection order, weights np.int64 [k] member counts
            aligned with local_ids, objective: float)
    features(model, samples, labels, *, sample_shape, batch_size, embedding) -> np.float32 [N, D]

A module that serves several backends (the device layer serves emu, xrt and pynq) may also
define ``bind(backend: Backend) -> object`` returning an object with the same two functions;
:func:`load` uses it when present. The per-class driver (budgets, GreeDi, id mapping, weight
normalisation) lives in :mod:`host.selection` and is shared by every backend.
"""

from __future__ import annotations

import enum
import importlib
from typing import Any

__all__ = ["Backend", "SERVED_BACKENDS", "load", "parse_backend", "backend_names"]


class Backend(str, enum.Enum):
    """Registered backends (the value is the API / CLI name)."""

    CPU = "cpu"  # numpy / C kernels / torch, float (host._cpu_backend)
    EMU = "emu"  # FPGA kernels compiled for x86 behind the pyxrt-compatible emulator
    XRT = "xrt"  # FPGA kernels on a SmartSSD through pyxrt
    PYNQ = "pynq"  # FPGA kernels through PYNQ <= 3.0.1


#: Backends a storage service (and ``nessa train --backend``) can be asked for. PYNQ is a
#: runtime the device layer can use locally; the wire protocol does not name it.
SERVED_BACKENDS: tuple[Backend, ...] = (Backend.CPU, Backend.EMU, Backend.XRT)

_REGISTRY: dict[Backend, str] = {
    Backend.CPU: "host._cpu_backend",
    Backend.EMU: "host.device.backend",
    Backend.XRT: "host.device.backend",
    Backend.PYNQ: "host.device.backend",
}


def parse_backend(backend: str | Backend) -> Backend:
    try:
        return Backend(backend)
    except ValueError:
        names = ", ".join(b.value for b in Backend)
        raise ValueError(f"unknown backend {backend!r}; known: {names}") from None


def backend_names(*, served: bool = False) -> list[str]:
    """Backend names, in registry order (``served``: only those a storage service takes)."""
    return [b.value for b in (SERVED_BACKENDS if served else Backend)]


def load(backend: str | Backend) -> Any:
    """The module (or bound object) implementing ``backend``."""
    key = parse_backend(backend)
    path = _REGISTRY[key]
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise RuntimeError(f"backend {key.value!r} is unavailable: cannot import {path} ({exc})") from exc
    bind = getattr(module, "bind", None)
    return bind(key) if callable(bind) else module
