"""The store manifest (``manifest.json``): schema, validation, and (de)serialisation.

The schema is documented in storage_service/README.md; bump ``FORMAT_VERSION`` on any
incompatible change and keep reading older versions where possible.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["FORMAT", "FORMAT_VERSION", "READ_VERSIONS", "MANIFEST_NAME", "ShardInfo", "ColumnFile", "Manifest",
           "ManifestError", "manifest_identity", "SCHEMA_FIELDS"]

FORMAT = "nessa-store"
#: The newest manifest version. Version 2 adds ``columns`` (optional text / embedding columns in
#: files beside the shards); a store without columns is still written as version 1, so readers
#: that predate columns keep reading it.
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
#: Column names and types every shard carries, in order.
SCHEMA_FIELDS = (("id", pa.int64()), ("label", pa.int32()), ("sample", "fixed_size_binary"))


class ManifestError(ValueError):
    """The manifest is missing, malformed, or inconsistent."""


@dataclass(frozen=True)
class ShardInfo:
    file: str  # file name inside the store directory
    rows: int
    first_id: int  # global id of the shard's first row; shards hold consecutive ids
    sha256: str  # of the whole file


@dataclass(frozen=True)
class ColumnFile:
    """One optional column (manifest v2 ``columns`` entry): its own Arrow IPC file beside the
    shards, one row per sample in id order (see storage_service/columns.py)."""

    name: str  # "text" or "emb/<name>"
    kind: str  # "text" | "embedding"
    dtype: str  # "float16" | "float32" for embeddings; "" for text
    dim: int  # embedding width; 0 for text
    max_bytes: int  # text: longest value in UTF-8 bytes; 0 for embeddings
    source: str  # "ingest", "embed:<arch>@<sha prefix>", ...
    file: str  # file name inside the store directory
    sha256: str  # of the whole file


@dataclass(frozen=True)
class Manifest:
    name: str
    num_samples: int
    num_classes: int
    class_names: list[str]
    class_counts: list[int]
    sample_shape: tuple[int, ...]
    dtype: str
    shards: list[ShardInfo]
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)
    columns: list[ColumnFile] = field(default_factory=list)

    @property
    def sample_nbytes(self) -> int:
        return int(math.prod(self.sample_shape)) * np.dtype(self.dtype).itemsize

    def to_json(self) -> str:
        doc = asdict(self)
        doc["sample_shape"] = list(self.sample_shape)
        doc["sample_nbytes"] = self.sample_nbytes
        if self.columns:
            doc["format_version"] = 2
        else:  # no columns: a version-1 manifest, byte-compatible with readers that predate columns
            doc["format_version"] = 1
            del doc["columns"]
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_dict(cls, doc: dict, *, where: str = "manifest") -> "Manifest":
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        if doc.get("format") != FORMAT:
            raise ManifestError(f"{where}: not a NeSSA store (format={doc.get('format')!r})")
        version = doc.get("format_version")
        if version not in READ_VERSIONS:
            raise ManifestError(f"{where}: unsupported format_version {version!r} (this NeSSA reads {list(READ_VERSIONS)})")
        if version == 1 and "columns" in doc:
            raise ManifestError(f"{where}: format_version 1 has no columns (columns need version 2)")
        try:
            columns = [ColumnFile(str(c["name"]), str(c["kind"]), str(c.get("dtype", "")), int(c.get("dim", 0)),
                                  int(c.get("max_bytes", 0)), str(c.get("source", "")), str(c["file"]), str(c["sha256"]))
                       for c in doc.get("columns", [])]
            shards = [ShardInfo(str(s["file"]), int(s["rows"]), int(s["first_id"]), str(s["sha256"])) for s in doc["shards"]]
            m = cls(
                name=str(doc["name"]),
                num_samples=int(doc["num_samples"]),
                num_classes=int(doc["num_classes"]),
                class_names=[str(c) for c in doc["class_names"]],
                class_counts=[int(c) for c in doc["class_counts"]],
                sample_shape=tuple(int(s) for s in doc["sample_shape"]),
                dtype=str(np.dtype(doc["dtype"])),
                shards=shards,
                extra=dict(doc.get("extra", {})),
                format_version=int(version),
                columns=columns,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: malformed field: {exc}") from None
        m.check(where=where)
        return m

    def check(self, *, where: str = "manifest") -> None:
        """Internal consistency (counts add up, shards tile the id range)."""
        if len(self.class_names) != self.num_classes or len(self.class_counts) != self.num_classes:
            raise ManifestError(f"{where}: class_names/class_counts must have num_classes={self.num_classes} entries")
        if sum(self.class_counts) != self.num_samples:
            raise ManifestError(f"{where}: class_counts sum to {sum(self.class_counts)}, num_samples is {self.num_samples}")
        next_id = 0
        for s in self.shards:
            if s.first_id != next_id:
                raise ManifestError(f"{where}: shard {s.file} starts at id {s.first_id}, expected {next_id}")
            if "/" in s.file or s.file.startswith("."):
                raise ManifestError(f"{where}: shard file name {s.file!r} must be a plain file name")
            next_id += s.rows
        if next_id != self.num_samples:
            raise ManifestError(f"{where}: shards hold {next_id} rows, num_samples is {self.num_samples}")
        seen: set[str] = set()
        for c in self.columns:
            if c.name in seen:
                raise ManifestError(f"{where}: column {c.name!r} listed twice")
            seen.add(c.name)
            if "/" in c.file or c.file.startswith(".") or c.file in {s.file for s in self.shards}:
                raise ManifestError(f"{where}: column {c.name!r} file name {c.file!r} must be a plain file name of its own")
            if c.kind not in ("text", "embedding"):
                raise ManifestError(f"{where}: column {c.name!r} has unknown kind {c.kind!r}")
            if c.kind == "embedding" and (c.dtype not in ("float16", "float32") or c.dim < 1):
                raise ManifestError(f"{where}: column {c.name!r}: embedding needs dtype float16/float32 and dim >= 1")
            if c.kind == "text" and c.max_bytes < 1:
                raise ManifestError(f"{where}: column {c.name!r}: text needs max_bytes >= 1")

    @classmethod
    def load(cls, store_dir: str | Path) -> "Manifest":
        return cls.load_file(store_dir)[0]

    @classmethod
    def load_file(cls, store_dir: str | Path) -> tuple["Manifest", str, tuple[int, int, int, int]]:
        """``(manifest, sha256 of the file's bytes, identity)``; the identity (device, inode,
        size, mtime_ns) is the file's as read, so a re-ingest (a new manifest renamed into
        place) shows up as a different ``manifest_identity``."""
        path = Path(store_dir) / MANIFEST_NAME
        try:
            with open(path, "rb") as fh:
                identity = _identity(os.fstat(fh.fileno()))
                raw = fh.read()
            text = raw.decode()
        except (FileNotFoundError, NotADirectoryError):  # a missing path, or a file given as the store
            raise ManifestError(f"{store_dir}: no {MANIFEST_NAME} (not a NeSSA store)") from None
        except IsADirectoryError:
            raise ManifestError(f"{path}: cannot read: is a directory") from None
        except OSError as exc:  # e.g. permission denied
            raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ManifestError(f"{path}: invalid JSON: not UTF-8 text") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: invalid JSON: {exc}") from None
        return cls.from_dict(doc, where=str(path)), hashlib.sha256(raw).hexdigest(), identity


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def manifest_identity(store_dir: str | Path) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime_ns) of ``store_dir``'s manifest now; None when it is gone."""
    try:
        return _identity(os.stat(Path(store_dir) / MANIFEST_NAME))
    except OSError:
        return None
