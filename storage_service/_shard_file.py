"""One shard opened for serving, without ever touching a memory map outside the SIGBUS guard.

``ShardFile(path, row_bytes)`` opens the file once (the server reads that inode until it
closes it, whatever happens to the path), records its identity (device, inode, size, mtime),
reads the Arrow IPC *file* layout with ``os.pread`` (footer, then each record batch's message
header: where its label and sample buffers lie), reads the labels with ``os.pread``, and maps
the file read-only for the guarded C gather (``_gather``). Nothing here reads through the map:
Arrow's own reader would touch the footer and message pages of a map that may shrink under it.

The layout is the Arrow columnar format's (``File.fbs``, ``Message.fbs``; flatbuffers, little
endian): ``ARROW1`` + padding, encapsulated messages, the ``Footer`` flatbuffer, its int32
length, ``ARROW1``. A ``Block`` (offset: long, metaDataLength: int, bodyLength: long) per
record batch locates its message; the message's ``RecordBatch`` header lists ``length`` (rows)
and ``buffers`` (offset, length) relative to the body, which follows the metadata. Our shards
(``SCHEMA_FIELDS`` in store.py) have three columns, two buffers each: id validity, id values,
label validity, label values, sample validity, sample values. Compressed bodies and nulls are
refused (``StoreWriter`` writes neither).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storage_service import _gather

__all__: list[str] = []  # internal module

_MAGIC = b"ARROW1"
_RECORD_BATCH = 3  # MessageHeader union tag
_LABEL_VALUES, _SAMPLE_VALUES = 3, 5  # buffer indices (see the module docstring)


class ShardLayoutError(ValueError):
    """The file is not (or no longer) a readable shard; the message says why, not where."""


@dataclass(frozen=True)
class BatchLayout:
    rows: int
    label_offset: int  # file offset of ``rows`` int32 labels
    sample_offset: int  # file offset of ``rows * row_bytes`` sample bytes


@dataclass(frozen=True)
class Identity:
    """What must not change while a shard is served (a write changes size or mtime; a rename
    over the path changes the inode the path names)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Identity":
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Flat:
    """Just enough of a flatbuffers reader for the Arrow footer and message headers; every read
    is bounds-checked (a damaged file raises ShardLayoutError, never reads elsewhere)."""

    def __init__(self, buf: bytes):
        self.buf = buf

    def unpack(self, fmt: str, pos: int):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.buf):
            raise ShardLayoutError("damaged Arrow metadata (offset out of bounds)")
        return struct.unpack_from(fmt, self.buf, pos)

    def root(self, pos: int = 0) -> int:
        return pos + self.unpack("<I", pos)[0]

    def field(self, table: int, index: int) -> int:
        """Absolute position of field ``index`` of the table at ``table``, 0 when absent."""
        vtable = table - self.unpack("<i", table)[0]
        vt_len = self.unpack("<H", vtable)[0]
        slot = 4 + 2 * index
        if slot + 2 > vt_len:
            return 0
        off = self.unpack("<H", vtable + slot)[0]
        return table + off if off else 0

    def scalar(self, table: int, index: int, fmt: str, default=0):
        pos = self.field(table, index)
        return self.unpack(fmt, pos)[0] if pos else default

    def table(self, table: int, index: int) -> int:
        pos = self.field(table, index)
        return pos + self.unpack("<I", pos)[0] if pos else 0

    def structs(self, table: int, index: int, fmt: str) -> list[tuple]:
        pos = self.field(table, index)
        if not pos:
            return []
        vec = pos + self.unpack("<I", pos)[0]
        n = self.unpack("<I", vec)[0]
        size = struct.calcsize(fmt)
        return [self.unpack(fmt, vec + 4 + i * size) for i in range(n)]


def _pread(fd: int, offset: int, n: int, size: int) -> bytes:
    if offset < 0 or n < 0 or offset + n > size:
        raise ShardLayoutError(f"needs bytes {offset}..{offset + n} but the file has {size} (truncated?)")
    data = os.pread(fd, n, offset)
    if len(data) != n:
        raise ShardLayoutError(f"short read at {offset} ({len(data)} of {n} bytes; the file shrank)")
    return data


def read_layout(fd: int, size: int, row_bytes: int) -> list[BatchLayout]:
    """Each record batch's rows and buffer offsets, read with pread (see the module docstring)."""
    if size < 2 * len(_MAGIC) + 4 or _pread(fd, 0, 6, size) != _MAGIC:
        raise ShardLayoutError("not an Arrow IPC file (no ARROW1 magic at the start)")
    tail = _pread(fd, size - 10, 10, size)
    if tail[4:] != _MAGIC:
        raise ShardLayoutError("no Arrow footer at the end (the file was truncated or is still being written)")
    footer_len = struct.unpack("<i", tail[:4])[0]
    footer = _Flat(_pread(fd, size - 10 - footer_len, footer_len, size))
    blocks = footer.structs(footer.root(), 3, "<qi4xq")  # Footer.recordBatches: [Block]
    out = []
    for offset, meta_len, body_len in blocks:
        meta = _pread(fd, offset, meta_len, size)
        start = 8 if meta[:4] == b"\xff\xff\xff\xff" else 4  # continuation marker (Arrow >= 0.15) or not
        msg = _Flat(meta)
        root = msg.root(start)
        if msg.scalar(root, 1, "<B") != _RECORD_BATCH:
            raise ShardLayoutError(f"the block at {offset} is not a record batch")
        batch = msg.table(root, 2)
        if not batch:
            raise ShardLayoutError(f"the record batch at {offset} has no header")
        if msg.table(batch, 3):
            raise ShardLayoutError("compressed record batches are not supported")
        rows = msg.scalar(batch, 0, "<q")
        nodes = msg.structs(batch, 1, "<qq")
        buffers = msg.structs(batch, 2, "<qq")
        if len(nodes) != 3 or len(buffers) != 6:
            raise ShardLayoutError(f"record batch at {offset}: {len(nodes)} columns / {len(buffers)} buffers, expected 3 / 6")
        if any(length != rows or nulls != 0 for length, nulls in nodes):
            raise ShardLayoutError(f"record batch at {offset}: a column with nulls or a length other than {rows}")
        for index, need in ((_LABEL_VALUES, rows * 4), (_SAMPLE_VALUES, rows * row_bytes)):
            b_off, b_len = buffers[index]
            if b_off < 0 or b_len < need or b_off + b_len > body_len:
                raise ShardLayoutError(f"record batch at {offset}: buffer {index} does not hold {need} bytes inside the body")
        body = offset + meta_len
        if body + body_len > size:
            raise ShardLayoutError(f"record batch at {offset} ends past the end of the file (truncated?)")
        out.append(BatchLayout(int(rows), body + buffers[_LABEL_VALUES][0], body + buffers[_SAMPLE_VALUES][0]))
    return out


def read_schema(fd: int) -> pa.Schema:
    """The shard's Arrow schema, read through a file object (pread-based), never a map."""
    with os.fdopen(os.dup(fd), "rb", buffering=0) as fh:
        return pa.ipc.open_file(fh).schema


class ShardFile:
    """An open shard: ``fd``, ``identity``, ``batches``, ``views`` (per batch ``[rows, row_bytes]``
    uint8 over the map, for the guarded gather only; empty when ``map_file`` is false)."""

    def __init__(self, path: str | os.PathLike, row_bytes: int, *, map_file: bool = True):
        self.path = os.fspath(path)
        self.row_bytes = row_bytes
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(self.fd)
            self.identity = Identity.of(st)
            self.batches = read_layout(self.fd, st.st_size, row_bytes)
            self.schema = read_schema(self.fd)
            self.views: list[np.ndarray] = []
            self._map = None
            if map_file:
                self._map = mmap.mmap(self.fd, st.st_size, prot=mmap.PROT_READ)
                base = np.frombuffer(self._map, dtype=np.uint8)
                self.views = [base[b.sample_offset : b.sample_offset + b.rows * row_bytes].reshape(b.rows, row_bytes)
                              for b in self.batches]
        except BaseException:
            self.close()
            raise

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

    def read(self, offset: int, n: int) -> bytes:
        return _pread(self.fd, offset, n, self.identity.size)

    def labels(self) -> np.ndarray:
        """All labels of the shard (int32), read with pread."""
        parts = [np.frombuffer(self.read(b.label_offset, b.rows * 4), dtype="<i4") for b in self.batches]
        return np.concatenate(parts) if parts else np.empty(0, np.int32)

    def change(self) -> str | None:
        """How the file differs from when it was opened (None: it does not)."""
        try:
            now = Identity.of(os.fstat(self.fd))
        except OSError as exc:
            return f"cannot stat: {exc.strerror}"
        was = self.identity
        if now.size != was.size:
            return f"is now {now.size} bytes, was {was.size} when opened (truncated or rewritten)"
        if now.mtime_ns != was.mtime_ns:
            return "was modified after it was opened (rewritten in place)"
        try:
            at_path = os.stat(self.path)
        except OSError as exc:
            return f"path no longer readable: {exc.strerror}"
        if (at_path.st_dev, at_path.st_ino) != (was.dev, was.ino):
            return "was replaced by another file"
        return None

    def copy_rows(self, batch: int, lo: int, out: np.ndarray) -> bool:
        """Rows ``lo .. lo + len(out)`` of record batch ``batch`` into ``out``; False on a fault."""
        if self.views:
            return _gather.copy_from(self.views[batch][lo:].ctypes.data, out)
        b = self.batches[batch]
        try:
            data = self.read(b.sample_offset + lo * self.row_bytes, out.nbytes)
        except (OSError, ShardLayoutError):
            return False
        out.reshape(-1)[:] = np.frombuffer(data, np.uint8)
        return True

    def __del__(self) -> None:  # the descriptor is a plain int: close it with the object
        self.close()

    def close(self) -> None:
        self.views = []
        m, self._map = getattr(self, "_map", None), None
        if m is not None:
            try:
                m.close()
            except BufferError:  # a view still exported: the map goes when its last view does
                pass
        fd, self.fd = getattr(self, "fd", -1), -1
        if fd >= 0:
            os.close(fd)
