"""NeSSA: near-storage data selection — the public façade and the ``nessa`` command.

Everything here is imported lazily (``import nessa`` costs nothing; torch and grpc load on first use):

* ``nessa.select(features, labels, fraction, ...) -> Selection`` — per-class weighted coresets (``host``)
* ``nessa.gradient_features(model, samples, labels, ...)`` — gradient-proxy features (``host``)
* ``nessa.Store(path)``, ``nessa.ingest(source, dest)`` — the on-disk store (``storage_service``)
* ``nessa.serve(store_root, addr="127.0.0.1:50051", ...) -> (server, port)`` — the storage service
* ``nessa.StorageClient(target)`` — its client (no server code)
* ``nessa.train(TrainConfig(...))``, ``nessa.TrainConfig`` — the streaming trainer (``trainer``)
* ``nessa.Strategy``, ``nessa.Backend`` — the registries of strategy and backend names

Libraries (host, storage_service, trainer, sim) never import this package: it sits on top.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["select", "Selection", "gradient_features", "Store", "ingest", "serve", "StorageClient", "train",
           "TrainConfig", "Strategy", "Backend", "__version__"]

__version__ = "0.1.0"

_LAZY = {
    "select": ("host.selection", "select"),
    "Selection": ("host.selection", "Selection"),
    "gradient_features": ("host.features", "gradient_features"),
    "Store": ("storage_service.store", "Store"),
    "ingest": ("storage_service.ingest", "ingest"),
    "serve": ("storage_service.server", "create_server"),
    "StorageClient": ("storage_service.client", "StorageClient"),
    "train": ("trainer.loop", "train"),
    "TrainConfig": ("trainer.config", "TrainConfig"),
    "Strategy": ("host.strategies", "Strategy"),
    "Backend": ("host.backends", "Backend"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nessa' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
