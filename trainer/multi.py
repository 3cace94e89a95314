"""Several storage services at once: one per storage host, each holding its own part of the data.

Each server selects from its own part (its CRAIG coreset covers its own examples, weights
relative to them), so selection work scales out with the hosts; the trainer streams every
server's selection and interleaves the streams (``trainer.dataset.SampleStream``). Pushes and
selections go to all servers in parallel, so a reselection costs the slowest host, not the sum.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from trainer.dataset import StreamPart
from trainer.source import SampleSource, connect
from storage_service.client import FULL_SELECTION

__all__ = ["Cluster", "open_cluster", "IncompatibleParts"]


class IncompatibleParts(ValueError):
    """The servers' parts of a data set do not describe the same kind of samples."""


@dataclass
class Cluster:
    """The storage services of one training run, and what each holds of a data set."""

    servers: tuple[str, ...]
    sources: list[SampleSource]
    dataset: str
    infos: list[Any]  # DatasetInfo per server
    _pool: ThreadPoolExecutor = field(repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.sources)), thread_name_prefix="nessa-rpc")

    # -- facts ---------------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        return sum(int(i.num_samples) for i in self.infos)

    @property
    def num_classes(self) -> int:
        return int(self.infos[0].num_classes)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.infos[0].sample_shape)

    def describe(self, name: str) -> list[Any]:
        """``get_dataset(name)`` on every server (e.g. the test set), checked to agree with training."""
        infos = self._all(lambda s: s.get_dataset(name))
        _check_compatible(self.servers, infos, name, like=self.infos[0])
        return infos

    # -- calls on every server, in parallel ----------------------------------------------
    def _all(self, fn: Callable[[SampleSource], Any]) -> list[Any]:
        return list(self._pool.map(fn, self.sources))

    def push_model(self, arch: str, blob: bytes, version: int) -> None:
        self._all(lambda s: s.push_model(arch, blob, version, dataset=self.dataset))

    def select(self, strategy: str, fraction: float, *, seed: int, model_version: int | None,
               backend: str, **options: Any) -> list[Any]:
        """Each server selects from its own part; returns the SelectionInfo of each. ``options``:
        the mini-batch and loss-history fields of ``StorageClient.select`` (batch_size, run, ...)."""
        return self._all(lambda s: s.select(self.dataset, strategy, fraction, seed=seed,
                                            model_version=model_version, backend=backend, wait=True, **options))

    def parts(self, dataset: str, selections: Sequence[str] | None = None,
              offsets: Sequence[int] | None = None) -> list[StreamPart]:
        """One stream per server of ``selections`` (default: all of ``dataset``) from ``offsets``."""
        sels = list(selections) if selections is not None else [FULL_SELECTION] * len(self.sources)
        offs = list(offsets) if offsets is not None else [0] * len(self.sources)
        return [StreamPart(src, dataset, sel, off) for src, sel, off in zip(self.sources, sels, offs)]

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        for s in self.sources:
            close = getattr(s, "close", None)
            if close is not None:
                close()


#: Sample dtypes the trainer reads: uint8 pixels (/255) and float32 model inputs (distilled sets,
#: ``host.models.to_input``); a float32 training set and a uint8 test set are the same kind of input.
_READABLE = ("uint8", "float32")


def _check_compatible(servers: Sequence[str], infos: Sequence[Any], name: str, like: Any) -> None:
    for server, info in zip(servers, infos):
        for attr in ("sample_shape", "num_classes", "dtype"):
            a, b = getattr(info, attr), getattr(like, attr)
            if attr == "dtype" and str(a) in _READABLE and str(b) in _READABLE:
                continue
            if (tuple(a) if attr == "sample_shape" else a) != (tuple(b) if attr == "sample_shape" else b):
                raise IncompatibleParts(f"data set {name!r} on {server} has {attr}={a!r}, "
                                        f"but the first server's training set has {b!r}")
    if str(infos[0].dtype) not in _READABLE:
        raise IncompatibleParts(f"data set {name!r}: the trainer reads uint8 or float32 samples, got {infos[0].dtype}")


def open_cluster(servers: Sequence[str], dataset: str, *, token: str | None = None,
                 tls_ca: Path | None = None, timeout: float = 3600.0, stream_idle_timeout: float | None = 60.0) -> Cluster:
    """Connect to every server and look up its part of ``dataset``."""
    sources = [connect(s, token=token, tls_ca=tls_ca, timeout=timeout, stream_idle_timeout=stream_idle_timeout)
               for s in servers]
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(sources))) as pool:
            infos = list(pool.map(lambda s: s.get_dataset(dataset), sources))
        _check_compatible(servers, infos, dataset, like=infos[0])
    except BaseException:
        for s in sources:
            s.close()
        raise
    return Cluster(tuple(servers), sources, dataset, infos)
