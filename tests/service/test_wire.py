"""SampleBatch wire bytes: built by hand, valid for the generated class, read back in place."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from storage_service._proto import nessa_pb2 as pb
from storage_service._wire import BATCH_VERSION, BatchEncoder, WireError, decode_sample_batch
from storage_service.client import _decode_batch


def _batch(n, row_bytes, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 10**9, n), rng.integers(0, 10, n).astype(np.int32), rng.random(n, dtype=np.float32),
            rng.integers(0, 256, (n, row_bytes), dtype=np.uint8))


@pytest.mark.parametrize("n", [1, 7, 333])
@pytest.mark.parametrize("sel", ["", "full", "sel-" + "f" * 24, "x" * 300])
def test_generated_class_decodes_hand_built_bytes(n, sel):
    ids, labels, weights, rows = _batch(n, 48)
    enc = BatchEncoder(48, (3, 4, 4), "uint8")
    header = pb.BatchHeader(selection_id=sel, epoch=9, offset=2**40 + n, count=n, total=2**41)
    wire = enc.encode(header, ids, labels, weights, rows)
    msg = pb.SampleBatch.FromString(wire)
    assert msg.header.selection_id == sel and msg.header.offset == 2**40 + n and msg.header.count == n
    assert msg.header.total == 2**41 and msg.header.epoch == 9
    table = pa.ipc.open_stream(msg.body).read_all()
    assert table.schema.names == ["id", "label", "weight", "sample"]
    assert table.schema.metadata[b"nessa.batch_version"] == str(BATCH_VERSION).encode()
    assert table.column("id").to_numpy().tolist() == ids.tolist()
    assert np.array_equal(table.column("label").to_numpy(), labels)
    assert np.array_equal(table.column("weight").to_numpy(), weights)
    assert b"".join(table.column("sample").to_pylist()) == rows.tobytes()
    # Re-serializing the parsed message with protobuf gives the same bytes but the padding.
    msg.header.ClearField("padding")
    assert pb.SampleBatch.FromString(msg.SerializeToString()) == msg


def test_body_is_aligned_and_read_in_place():
    ids, labels, weights, rows = _batch(50, 784)
    enc = BatchEncoder(784, (1, 28, 28), "uint8")
    for sel_len in range(0, 40):
        wire = enc.encode(pb.BatchHeader(selection_id="s" * sel_len, count=50), ids, labels, weights, rows)
        b = _decode_batch(wire)
        start = np.frombuffer(wire, np.uint8).ctypes.data
        for arr in (b.ids, b.labels, b.weights, b.samples):
            assert arr.ctypes.data % 8 == 0
            assert start <= arr.ctypes.data < start + len(wire)  # a view of the message, not a copy
        assert not b.samples.flags.writeable
        assert b.samples.shape == (50, 1, 28, 28)
        assert np.array_equal(b.samples.reshape(50, -1), rows)
        assert b.nbytes == len(wire)


def test_plain_protobuf_message_decodes_too():
    """A SampleBatch made the ordinary way (any gRPC server) decodes with the client's reader."""
    ids, labels, weights, rows = _batch(5, 12)
    enc = BatchEncoder(12, (12,), "uint8")
    body = pb.SampleBatch.FromString(enc.encode(pb.BatchHeader(count=5), ids, labels, weights, rows)).body
    wire = pb.SampleBatch(header=pb.BatchHeader(count=5, offset=3), body=body).SerializeToString()
    b = _decode_batch(wire)
    assert b.offset == 3 and b.ids.tolist() == ids.tolist() and np.array_equal(b.samples, rows)


def test_zero_rows_and_rows_shape_checked():
    enc = BatchEncoder(4, (4,), "uint8")
    wire = enc.encode(pb.BatchHeader(count=0), np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros((0, 4), np.uint8))
    assert decode_sample_batch(wire).batch.num_rows == 0
    with pytest.raises(ValueError, match="rows must be"):
        enc.encode(pb.BatchHeader(count=1), [1], [1], [1.0], np.zeros((1, 5), np.uint8))


@pytest.mark.parametrize(
    "wire,match",
    [
        (b"", "no body"),
        (b"\x12\x05abc", "past the end"),
        (b"\x12\x03abc", "not an Arrow IPC stream"),
        (b"\x0a\xff", "truncated"),
        (b"\x0b", "unsupported wire type"),
    ],
)
def test_malformed_batches_are_named(wire, match):
    with pytest.raises(WireError, match=match):
        decode_sample_batch(wire)


def test_other_batch_version_refused():
    schema = pa.schema([("id", pa.int64())], metadata={b"nessa.batch_version": b"99"})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        w.write_batch(pa.record_batch([pa.array([1], pa.int64())], schema=schema))
    with pytest.raises(WireError, match="batch version"):
        decode_sample_batch(pb.SampleBatch(body=sink.getvalue().to_pybytes()).SerializeToString())


def _body_only(schema, batches=()):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as w:
        for b in batches:
            w.write_batch(b)
    return pb.SampleBatch(body=sink.getvalue().to_pybytes()).SerializeToString()


def test_schema_without_batch_or_with_bad_length_is_named():
    enc = BatchEncoder(4, (4,), "uint8")
    with pytest.raises(WireError, match="not an Arrow IPC stream with a batch"):
        decode_sample_batch(_body_only(enc.schema))  # schema message and end of stream only
    with pytest.raises(WireError, match="bad schema message length"):
        decode_sample_batch(pb.SampleBatch(body=b"\xff\xff\xff\xff\x00\x10\x00\x00" + bytes(16)).SerializeToString())
    bad = enc.schema.with_metadata({b"nessa.batch_version": str(BATCH_VERSION).encode(), b"nessa.dtype": b"uint8"})
    with pytest.raises(WireError, match="sample shape or dtype"):
        decode_sample_batch(_body_only(bad, [pa.record_batch([pa.array([], t.type) for t in bad], schema=bad)]))


def test_streams_of_different_rows_decode_interleaved():
    """The client caches each stream's parsed schema: batches of two streams must not mix it up."""
    encs = {(1, 28, 28): BatchEncoder(784, (1, 28, 28), "uint8"), (3, 32, 32): BatchEncoder(3072, (3, 32, 32), "uint8"),
            (2, 6): BatchEncoder(48, (2, 6), "float32")}
    for rep in range(3):
        for shape, enc in encs.items():
            ids, labels, weights, rows = _batch(5 + rep, enc.row_bytes, seed=rep)
            b = _decode_batch(enc.encode(pb.BatchHeader(count=5 + rep), ids, labels, weights, rows))
            assert b.samples.shape == (5 + rep, *shape) and b.ids.tolist() == ids.tolist()
            assert b.samples.dtype == (np.float32 if shape == (2, 6) else np.uint8)
            assert b.samples.tobytes() == rows.tobytes()
