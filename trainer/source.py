"""What the trainer needs from a storage service, as a protocol.

``storage_service.client.StorageClient`` satisfies it; the trainer only ever calls these four
methods, so a different transport (or several services, see ``trainer.multi``) plugs in here.
``connect`` opens the real gRPC client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

__all__ = ["SampleSource", "connect"]


@runtime_checkable
class SampleSource(Protocol):
    """The four storage-service calls the trainer makes."""

    def get_dataset(self, name: str) -> Any:
        """-> DatasetInfo(name, num_samples, num_classes, class_names, class_counts, sample_shape, dtype)."""

    def push_model(self, arch: str, state: bytes, version: int, *, dataset: str | None = None) -> Any:
        """Upload a safetensors blob of the model state under ``version``."""

    def select(self, dataset: str, strategy: str, fraction: float, *, seed: int, model_version: int | None,
               backend: str, wait: bool = True, **options: Any) -> Any:
        """-> SelectionInfo(id, num_selected, class_counts, objective, seconds, num_forwarded, ...).
        ``options``: batch_size, num_batches, pool_size, run, drop_threshold, watch, min_keep."""

    def stream_samples(self, dataset: str, *, selection: str, epoch: int, seed: int, rank: int,
                       world_size: int, start_offset: int, batch_bytes: int) -> Iterator[Any]:
        """-> SampleBatch(offset, count, ids, labels, weights, samples, nbytes), in stream order."""


def connect(target: str, *, token: str | None = None, tls_ca: Path | None = None,
            timeout: float = 3600.0, stream_idle_timeout: float | None = 60.0) -> SampleSource:
    """Open a gRPC client to the storage service at ``target`` (HOST:PORT); ``timeout`` bounds
    each call, ``stream_idle_timeout`` each wait for a streamed batch."""
    from storage_service.client import StorageClient

    root_cert = Path(tls_ca).read_bytes() if tls_ca is not None else None
    return StorageClient(target, token=token, root_cert=root_cert, timeout=timeout, stream_idle_timeout=stream_idle_timeout)
