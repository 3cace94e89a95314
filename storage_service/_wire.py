"""``SampleBatch`` bytes built by hand, and read back without copying the body.

Why: a batch is megabytes of samples. Putting them in a protobuf ``bytes`` field and calling
``SerializeToString`` copies them twice more in Python. Instead the server writes the message's
wire bytes itself and registers an identity serializer for ``StreamSamples``:

    SampleBatch wire layout (protobuf encoding, valid for every protobuf parser)
    0x0a  varint(len(H))  H        field 1 `header`: a BatchHeader, serialized normally (small)
    0x12  varint(len(B))  B        field 2 `body`: an Arrow IPC stream, see below

``H`` carries a ``padding`` field (BatchHeader field 15, zero bytes, ignored by readers), sized
so that ``B`` starts at a multiple of 8 bytes from the start of the message: then every Arrow
buffer inside ``B`` is 8-byte aligned wherever the message lands (gRPC hands Python a fresh
``bytes`` whose data is 16-byte aligned), and the client can view them without copying.

``B`` = Arrow IPC stream: schema message, one record batch message, end-of-stream marker.
Columns: ``id`` int64, ``label`` int32, ``weight`` float32, ``sample`` fixed_size_binary(row
bytes). Schema metadata: ``nessa.batch_version``, ``nessa.sample_shape`` (JSON list),
``nessa.dtype`` (numpy dtype name). Built by ``pyarrow`` itself from the serialized schema and
record batch messages (never hand-rolled flatbuffers).

Batch versions: 1 = the four columns above (every stream that asks for no extra column, so
readers of version 1 keep working); 2 (``BATCH_VERSION_COLUMNS``) = those four, then one column
per extra store column the request named (``StreamSamplesRequest.columns``), in request order,
named after the store column: ``text`` as ``utf8``, an embedding column (``emb/...``) as
``fixed_size_list<float32>[dim]`` (float16 columns are widened on the server). Batches with
extra columns are built by pyarrow from arrays (one more copy of the samples than version 1's
in-place fill; extra columns are for selection and contrastive training, not the bulk path).

Copies of the sample bytes on the server: the gather from the memory-mapped store straight
into the message (``rows`` may be a function that fills the message's sample region), and
gRPC's own copy into its slice.
"""

from __future__ import annotations

import ctypes
import functools
import json
import platform
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from storage_service._proto import nessa_pb2 as pb

__all__ = [
    "BATCH_VERSION",
    "BATCH_VERSION_COLUMNS",
    "ExtraColumn",
    "batch_schema",
    "BatchEncoder",
    "DecodedBatch",
    "decode_sample_batch",
    "WireError",
]

#: Version of the Arrow body layout (columns and metadata keys above) without extra columns.
BATCH_VERSION = 1
#: Version of a body that carries extra store columns after ``sample`` (see module docs).
BATCH_VERSION_COLUMNS = 2
_READS = (str(BATCH_VERSION).encode(), str(BATCH_VERSION_COLUMNS).encode())
_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_HEADER_TAG = 0x0A  # field 1, wire type 2 (length-delimited)
_BODY_TAG = 0x12  # field 2, wire type 2
_PAD_TAG = b"\x7a"  # BatchHeader.padding: field 15, wire type 2
_ALIGN = 8
# No padding, then a padding field of 0, 1, ... 15 zero bytes (2 + k bytes on the wire).
_PADS = (b"",) + tuple(_PAD_TAG + bytes([k]) + bytes(k) for k in range(16))


class WireError(ValueError):
    """A SampleBatch that cannot be parsed (names what is wrong)."""


@dataclass(frozen=True)
class ExtraColumn:
    """An extra store column streamed after ``sample``: ``kind`` "text" or "embedding" (``dim`` wide)."""

    name: str
    kind: str
    dim: int = 0

    def arrow_type(self) -> pa.DataType:
        if self.kind == "text":
            return pa.utf8()
        if self.kind == "embedding" and self.dim > 0:
            return pa.list_(pa.float32(), int(self.dim))
        raise ValueError(f"column {self.name!r}: cannot stream kind {self.kind!r} (dim {self.dim})")


def batch_schema(row_bytes: int, sample_shape, dtype, extra: tuple[ExtraColumn, ...] = ()) -> pa.Schema:
    """The Arrow schema of every body in a stream of rows of ``row_bytes`` bytes (and ``extra`` columns)."""
    meta = {
        b"nessa.batch_version": str(BATCH_VERSION_COLUMNS if extra else BATCH_VERSION).encode(),
        b"nessa.sample_shape": json.dumps([int(d) for d in sample_shape]).encode(),
        b"nessa.dtype": np.dtype(dtype).name.encode(),
    }
    return pa.schema(
        [
            ("id", pa.int64()),
            ("label", pa.int32()),
            ("weight", pa.float32()),
            ("sample", pa.binary(int(row_bytes))),
            *[(c.name, c.arrow_type()) for c in extra],
        ],
        metadata=meta,
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated or overlong varint in SampleBatch")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


# -- a bytes object we may fill before anyone sees it ------------------------------------
# CPython's C code creates bytes with PyBytes_FromStringAndSize(NULL, n) and fills them in
# place; doing the same through ctypes saves a full copy of every batch (gRPC wants `bytes`).
if platform.python_implementation() == "CPython":
    _new_bytes_c = ctypes.pythonapi.PyBytes_FromStringAndSize
    _new_bytes_c.restype = ctypes.py_object
    _new_bytes_c.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    _bytes_addr = ctypes.pythonapi.PyBytes_AsString
    _bytes_addr.restype = ctypes.c_void_p
    _bytes_addr.argtypes = (ctypes.py_object,)

    def _new_filled(n: int) -> tuple[bytes, np.ndarray]:
        out = _new_bytes_c(None, n)
        view = np.ctypeslib.as_array((ctypes.c_ubyte * n).from_address(_bytes_addr(out)))
        return out, view

    def _finish(out):
        return out

else:  # pragma: no cover - other interpreters: one more copy

    def _new_filled(n: int) -> tuple[bytearray, np.ndarray]:
        out = bytearray(n)
        return out, np.frombuffer(out, dtype=np.uint8)

    def _finish(out):
        return bytes(out)


@dataclass(frozen=True)
class _Layout:
    """Where each column's values sit inside the IPC stream for a batch of ``n`` rows."""

    template: bytes  # the whole IPC stream with zeroed values
    regions: tuple[tuple[int, int], ...]  # (start, nbytes) of id, label, weight, sample values


class BatchEncoder:
    """Builds SampleBatch wire bytes for one stream (fixed row size, shape and dtype)."""

    def __init__(self, row_bytes: int, sample_shape, dtype, extra: tuple[ExtraColumn, ...] = ()):
        if row_bytes <= 0:
            raise ValueError(f"row_bytes must be positive, got {row_bytes}")
        self.row_bytes = int(row_bytes)
        self.extra = tuple(extra)
        names = [c.name for c in self.extra]
        if len(set(names)) != len(names) or set(names) & {"id", "label", "weight", "sample"}:
            raise ValueError(f"extra columns must be distinct and not id/label/weight/sample, got {names}")
        self.schema = batch_schema(row_bytes, sample_shape, dtype, self.extra)
        self._schema_msg = self.schema.serialize().to_pybytes()
        self._layouts: dict[int, _Layout] = {}

    def _layout(self, n: int) -> _Layout:
        layout = self._layouts.get(n)
        if layout is not None:
            return layout
        zeros = pa.record_batch(
            [
                pa.array(np.zeros(n, np.int64)),
                pa.array(np.zeros(n, np.int32)),
                pa.array(np.zeros(n, np.float32)),
                pa.FixedSizeBinaryArray.from_buffers(
                    pa.binary(self.row_bytes), n, [None, pa.py_buffer(np.zeros(n * self.row_bytes, np.uint8))]
                ),
            ],
            schema=self.schema,
        )
        msg = zeros.serialize()
        # Read the message back (zero-copy) to learn where pyarrow put each value buffer.
        back = pa.ipc.read_record_batch(pa.ipc.read_message(msg), self.schema)
        base = len(self._schema_msg)
        regions = []
        for col, width in zip(back.columns, (8, 4, 4, self.row_bytes)):
            off = col.buffers()[1].address - msg.address
            if n and not 0 <= off <= msg.size - n * width:
                raise AssertionError("pyarrow did not read the IPC message in place")  # pragma: no cover
            regions.append((base + off, n * width))
        template = self._schema_msg + msg.to_pybytes() + _EOS
        if n == 0:  # empty buffers may live anywhere: nothing to fill, copy the template whole
            regions = [(len(template), 0)] * 4
        layout = _Layout(template, tuple(regions))
        if len(self._layouts) > 8:  # typically two sizes per stream: full batches and the last
            self._layouts.clear()
        self._layouts[n] = layout
        return layout

    @staticmethod
    def _frame(header: pb.BatchHeader, body: bytes) -> bytes:
        """``SampleBatch{header, body}`` around a finished body, the body 8-byte aligned."""
        head = header.SerializeToString()
        for pad in _PADS:
            h = head + pad
            if (1 + len(_varint(len(h))) + len(h) + 1 + len(_varint(len(body)))) % _ALIGN == 0:
                break
        return bytes([_HEADER_TAG]) + _varint(len(h)) + h + bytes([_BODY_TAG]) + _varint(len(body)) + body

    def _body_with_columns(self, ids, labels, weights, rows, columns: dict) -> bytes:
        """A version-2 body built by pyarrow from arrays (see module docs)."""
        n = len(ids)
        if callable(rows):
            buf = np.empty((n, self.row_bytes), np.uint8)
            rows(buf)
            rows = buf
        arrays = [pa.array(np.ascontiguousarray(ids, dtype=np.int64)), pa.array(np.ascontiguousarray(labels, dtype=np.int32)),
                  pa.array(np.ascontiguousarray(weights, dtype=np.float32)),
                  pa.FixedSizeBinaryArray.from_buffers(pa.binary(self.row_bytes), n,
                                                       [None, pa.py_buffer(np.ascontiguousarray(rows).reshape(-1))])]
        for c in self.extra:
            if c.name not in columns:
                raise ValueError(f"column {c.name!r} missing from the batch")
            v = columns[c.name]
            if c.kind == "text":
                if len(v) != n:
                    raise ValueError(f"column {c.name!r}: {len(v)} values for {n} rows")
                arrays.append(pa.array(list(v), type=pa.utf8()))
            else:
                v = np.ascontiguousarray(v, dtype=np.float32)
                if v.shape != (n, c.dim):
                    raise ValueError(f"column {c.name!r} must be [{n}, {c.dim}], got {list(v.shape)}")
                arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), int(c.dim)))
        batch = pa.record_batch(arrays, schema=self.schema)
        return self._schema_msg + batch.serialize().to_pybytes() + _EOS

    def encode(self, header: pb.BatchHeader, ids, labels, weights, rows, columns: dict | None = None) -> bytes:
        """Wire bytes of ``SampleBatch{header, body}``.

        ``rows``: the samples as a ``[n, row_bytes]`` uint8 array, or a function that writes
        them into the ``[n, row_bytes]`` array it is given (the message's own bytes: gathering
        straight from the store saves a copy of every sample). ``columns``: the values of the
        encoder's extra columns, by name (list of str for text, ``[n, dim]`` floats for embeddings).
        """
        n = len(ids)
        if not callable(rows) and rows.shape != (n, self.row_bytes):
            raise ValueError(f"rows must be [{n}, {self.row_bytes}], got {list(rows.shape)}")
        if self.extra:
            return self._frame(header, self._body_with_columns(ids, labels, weights, rows, columns or {}))
        layout = self._layout(n)
        body_len = len(layout.template)
        head = header.SerializeToString()
        # Pad the header so the body starts on an 8-byte boundary (see module docstring).
        for pad in _PADS:
            h = head + pad
            if (1 + len(_varint(len(h))) + len(h) + 1 + len(_varint(body_len))) % _ALIGN == 0:
                break
        else:  # pragma: no cover - 17 consecutive sizes always include a multiple of 8
            raise AssertionError("no padding aligns the body")
        prefix = bytes([_HEADER_TAG]) + _varint(len(h)) + h + bytes([_BODY_TAG]) + _varint(body_len)
        total = len(prefix) + body_len
        out, view = _new_filled(total)
        view[: len(prefix)] = np.frombuffer(prefix, np.uint8)
        body = view[len(prefix) :]
        tmpl = np.frombuffer(layout.template, np.uint8)
        pos = 0
        for (start, nbytes), values in zip(
            layout.regions,
            (
                np.ascontiguousarray(ids, dtype=np.int64),
                np.ascontiguousarray(labels, dtype=np.int32),
                np.ascontiguousarray(weights, dtype=np.float32),
                rows,
            ),
        ):
            body[pos:start] = tmpl[pos:start]  # IPC metadata and padding between buffers
            if callable(values):
                values(body[start : start + nbytes].reshape(n, self.row_bytes))
            else:
                body[start : start + nbytes] = values.reshape(-1).view(np.uint8)
            pos = start + nbytes
        body[pos:] = tmpl[pos:]
        return _finish(out)


@dataclass
class DecodedBatch:
    """A parsed SampleBatch: the header message and the Arrow record batch (views of the input)."""

    header: pb.BatchHeader
    batch: pa.RecordBatch
    sample_shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    #: Extra store columns (batch version 2), by name: text as list[str], embeddings as
    #: read-only float32 ``[n, dim]`` views of the message.
    columns: dict = field(default_factory=dict)


def decode_sample_batch(data) -> DecodedBatch:
    """Parse SampleBatch wire bytes (any encoder's) without copying the body."""
    mv = memoryview(data)
    header = pb.BatchHeader()
    body = None
    pos = 0
    while pos < len(mv):
        tag, pos = _read_varint(mv, pos)
        field, wtype = tag >> 3, tag & 7
        if wtype == 2:
            length, pos = _read_varint(mv, pos)
            if pos + length > len(mv):
                raise WireError(f"SampleBatch field {field} runs past the end of the message")
            if field == 1:
                header.MergeFromString(mv[pos : pos + length].tobytes())
            elif field == 2:
                body = mv[pos : pos + length]
            pos += length
        elif wtype == 0:
            _, pos = _read_varint(mv, pos)
        elif wtype in (1, 5):
            pos += 8 if wtype == 1 else 4
        else:
            raise WireError(f"SampleBatch has unsupported wire type {wtype} for field {field}")
    if body is None:
        raise WireError("SampleBatch has no body")
    schema_len = _schema_message_length(body)
    try:
        schema, shape, dtype = _stream_schema(body[:schema_len].tobytes())
        batch = pa.ipc.read_record_batch(pa.py_buffer(body)[schema_len:], schema)
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise WireError(f"SampleBatch body is not an Arrow IPC stream with a batch: {exc}") from None
    return DecodedBatch(header, batch, shape, dtype, len(mv), _extra_columns(batch))


def _extra_columns(batch: pa.RecordBatch) -> dict:
    out = {}
    for i in range(4, batch.num_columns):
        name, col = batch.schema.field(i).name, batch.column(i)
        if pa.types.is_string(col.type):
            out[name] = col.to_pylist()
        elif pa.types.is_fixed_size_list(col.type) and pa.types.is_float32(col.type.value_type):
            dim = col.type.list_size
            flat = col.flatten()  # honours the list array's offset
            vals = np.frombuffer(flat.buffers()[1], dtype=np.float32, count=flat.offset + len(flat))[flat.offset :]
            out[name] = vals.reshape(len(col), dim)
        else:
            raise WireError(f"SampleBatch column {name!r} has type {col.type}, not utf8 or fixed_size_list<float32>")
    return out


def _schema_message_length(body) -> int:
    """Bytes of the schema message that opens an IPC stream: 0xFFFFFFFF, int32 length, flatbuffer."""
    if len(body) < 8 or body[:4] != b"\xff\xff\xff\xff":
        raise WireError("SampleBatch body is not an Arrow IPC stream (no schema message)")
    length = int.from_bytes(body[4:8], "little", signed=True)
    if length <= 0 or 8 + length > len(body):
        raise WireError("SampleBatch body is not an Arrow IPC stream (bad schema message length)")
    return 8 + length


@functools.lru_cache(maxsize=16)
def _stream_schema(message: bytes) -> tuple[pa.Schema, tuple[int, ...], np.dtype]:
    """The checked schema, sample shape and dtype of a body's schema message.

    Cached: every batch of a stream repeats the same schema message; parsing it (and its JSON
    metadata) again per batch was over half of this function's time (15 -> 6.5 us a batch).
    """
    try:
        schema = pa.ipc.read_schema(pa.py_buffer(message))
    except (pa.ArrowInvalid, OSError) as exc:
        raise WireError(f"SampleBatch body is not an Arrow IPC stream with a batch: {exc}") from None
    meta = schema.metadata or {}
    version = meta.get(b"nessa.batch_version")
    if version not in _READS:
        raise WireError(f"SampleBatch body has batch version {version!r}, this client reads {BATCH_VERSION} and "
                        f"{BATCH_VERSION_COLUMNS}")
    if version == _READS[0] and len(schema) != 4:
        raise WireError(f"SampleBatch body of batch version 1 has {len(schema)} columns, not 4")
    try:
        shape = tuple(int(d) for d in json.loads(meta[b"nessa.sample_shape"]))
        dtype = np.dtype(meta[b"nessa.dtype"].decode())
    except (KeyError, ValueError, TypeError) as exc:
        raise WireError(f"SampleBatch body has bad sample shape or dtype metadata: {exc}") from None
    return schema, shape, dtype
