"""NeSSA's selection engine on the storage host.

Public entry points (imported lazily so that ``import host.golden`` needs no torch):

* ``host.select(features, labels, fraction, *, optimizer="lazy", seed=0, ...) -> Selection``
* ``host.gradient_features(model, samples, labels, ...) -> np.ndarray``
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["select", "Selection", "gradient_features", "build_model", "Arch"]

_LAZY = {
    "select": "host.selection",
    "Selection": "host.selection",
    "gradient_features": "host.features",
    "build_model": "host.models",
    "Arch": "host.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'host' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
