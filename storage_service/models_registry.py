"""Models pushed by trainers: checked, kept on disk, and loaded for model-based selection.

Accepted only as safetensors (never pickle): the blob must parse, name a known architecture
(``host.models.Arch``), carry exactly the model's tensor names with matching shapes and
dtypes for every data set it is used with, hold only finite values, and stay under a size cap.

On-disk format (``<store root>/.nessa/models/``, version ``MODEL_FORMAT_VERSION``):

    v<version>.safetensors    the blob exactly as pushed
    v<version>.json           {"format_version": 1, "arch", "version", "size", "sha256",
                               "datasets": [names it fits]}   (written last, atomically)

Pushing a version that exists replaces it (the selection ids of a model include its sha256,
so old selections stay consistent); pushing identical bytes again is a no-op (safe retries).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from storage_service._errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted

__all__ = ["ModelRecord", "ModelRegistry", "MODEL_FORMAT_VERSION", "DEFAULT_MAX_MODEL_BYTES", "check_state"]

MODEL_FORMAT_VERSION = 1
DEFAULT_MAX_MODEL_BYTES = 256 << 20


@dataclass(frozen=True)
class ModelRecord:
    arch: str
    version: int
    size: int
    sha256: str
    datasets: list[str] = field(default_factory=list)


def _known_arch(arch: str) -> str:
    from host.models import Arch

    names = [a.value for a in Arch]
    if arch not in names:
        raise InvalidArgument(f"unknown model arch {arch!r}; known: {', '.join(names)}")
    return arch


def _parse(blob: bytes) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(blob)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise InvalidArgument(f"model is not a valid safetensors blob: {exc}") from None


def check_state(arch: str, state: dict, sample_shape, num_classes: int) -> None:
    """Raise InvalidArgument unless ``state`` loads into ``build_model(arch, ...)`` exactly."""
    import torch

    from host.models import build_model

    try:
        expected = build_model(arch, tuple(sample_shape), int(num_classes)).state_dict()
    except ValueError as exc:
        raise InvalidArgument(f"arch {arch!r} cannot model samples of shape {list(sample_shape)}: {exc}") from None
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise InvalidArgument(f"{arch} state does not match: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, want in expected.items():
        got = state[name]
        if tuple(got.shape) != tuple(want.shape):
            raise InvalidArgument(f"{arch} tensor {name!r} has shape {list(got.shape)}, expected {list(want.shape)}")
        if got.dtype.is_floating_point != want.dtype.is_floating_point:
            raise InvalidArgument(f"{arch} tensor {name!r} has dtype {got.dtype}, expected {want.dtype}")
        if got.dtype.is_floating_point and not bool(torch.isfinite(got).all()):
            raise InvalidArgument(f"{arch} tensor {name!r} holds non-finite values")


class ModelRegistry:
    """Thread-safe set of pushed models, persisted under ``directory``.

    ``datasets()`` returns ``{name: (sample_shape, num_classes)}`` of the data sets models may be
    checked against; ``load_state(version)`` returns the tensors for selection.
    """

    def __init__(self, directory: str | os.PathLike, datasets: Callable[[], dict], *, max_bytes: int = DEFAULT_MAX_MODEL_BYTES):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._datasets = datasets
        self._lock = threading.Lock()
        self._records: dict[int, ModelRecord] = {}
        self._load_existing()

    def _load_existing(self) -> None:
        if not self.directory.is_dir():
            return
        for meta in sorted(self.directory.glob("v*.json")):
            try:
                doc = json.loads(meta.read_text())
                if doc.get("format_version") != MODEL_FORMAT_VERSION:
                    continue  # a newer server's file: leave it alone
                rec = ModelRecord(doc["arch"], int(doc["version"]), int(doc["size"]), doc["sha256"], list(doc["datasets"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a half-written or foreign file is not a model
            if (self.directory / f"v{rec.version}.safetensors").is_file():
                self._records[rec.version] = rec

    # -- push ------------------------------------------------------------------------------
    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise ResourceExhausted(f"model of {size} bytes exceeds the server's cap of {self.max_bytes} bytes")

    def push(self, arch: str, version: int, blob: bytes, *, sha256: str = "", dataset: str = "") -> ModelRecord:
        """Check and store a model; returns its record (see module docstring for the checks)."""
        self.check_size(len(blob))
        if version <= 0:
            raise InvalidArgument(f"model version must be > 0, got {version}")
        _known_arch(arch)
        digest = hashlib.sha256(blob).hexdigest()
        if sha256 and sha256.lower() != digest:
            raise InvalidArgument(f"model checksum mismatch: header says {sha256}, bytes hash to {digest}")
        with self._lock:
            old = self._records.get(version)
        if old is not None and old.sha256 == digest and old.arch == arch and (not dataset or dataset in old.datasets):
            return old
        state = _parse(blob)
        known = self._datasets()
        if dataset:
            if dataset not in known:
                raise NotFound(f"data set {dataset!r} not found")
            shape, classes = known[dataset]
            check_state(arch, state, shape, classes)
            fits = [dataset]
        else:
            fits, reasons = [], []
            for name, (shape, classes) in sorted(known.items()):
                try:
                    check_state(arch, state, shape, classes)
                    fits.append(name)
                except InvalidArgument as exc:
                    reasons.append(f"{name}: {exc}")
            if not fits:
                raise InvalidArgument("model fits no data set: " + ("; ".join(reasons[:3]) or "the store has none"))
        rec = ModelRecord(arch, int(version), len(blob), digest, fits)
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            _atomic_write(self.directory / f"v{version}.safetensors", blob)
            _atomic_write(self.directory / f"v{version}.json", json.dumps({"format_version": MODEL_FORMAT_VERSION, **asdict(rec)}).encode())
            self._records[rec.version] = rec
        return rec

    # -- lookup ----------------------------------------------------------------------------
    def get(self, version: int) -> ModelRecord:
        with self._lock:
            rec = self._records.get(int(version))
        if rec is None:
            raise NotFound(f"model version {version} not found")
        return rec

    def resolve(self, dataset: str, version: int = 0) -> ModelRecord:
        """The model to select ``dataset`` with: ``version``, or the newest that fits it."""
        with self._lock:
            records = dict(self._records)
        if not records:
            raise FailedPrecondition("this strategy needs a model: push one with PushModel first")
        if version:
            rec = self.get(version)
            if dataset not in rec.datasets:
                raise FailedPrecondition(f"model version {version} does not fit data set {dataset!r} (fits {rec.datasets})")
            return rec
        fitting = [r for r in records.values() if dataset in r.datasets]
        if not fitting:
            raise FailedPrecondition(f"no pushed model fits data set {dataset!r}; push one with dataset={dataset!r}")
        return max(fitting, key=lambda r: r.version)

    def load_state(self, version: int) -> dict:
        rec = self.get(version)
        blob = (self.directory / f"v{rec.version}.safetensors").read_bytes()
        return _parse(blob)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
