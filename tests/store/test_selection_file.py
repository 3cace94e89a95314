"""The selection file (storage_service/selection_file.py): one format for the service and
``nessa select``; atomic, versioned, aligned ids and weights."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from storage_service.selection_file import (SELECTION_FORMAT_VERSION, SelectionFileError, read_selection, read_summary,
                                            write_selection)


def test_round_trip_sorts_ids_and_keeps_weights_aligned(tmp_path):
    ids = np.array([9, 2, 5], np.int64)
    w = np.array([3.0, 1.0, 2.0], np.float32)
    path = write_selection(tmp_path / "s.arrow", ids, w, {"strategy": "craig", "extra": [1, 2]})
    got_ids, got_w, doc = read_selection(path)
    assert got_ids.tolist() == [2, 5, 9] and got_w.tolist() == [1.0, 2.0, 3.0]
    assert len(doc.pop("content_sha256")) == 64
    assert doc == {"format_version": SELECTION_FORMAT_VERSION, "strategy": "craig", "extra": [1, 2]}
    assert {k: v for k, v in read_summary(path).items() if k != "content_sha256"} == doc
    assert [p.name for p in tmp_path.iterdir()] == ["s.arrow"]  # no temporary file left


def test_bad_input_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="aligned"):
        write_selection(tmp_path / "a.arrow", np.arange(3), np.ones(2), {})
    with pytest.raises(ValueError, match="distinct"):
        write_selection(tmp_path / "b.arrow", np.array([1, 1]), np.ones(2), {})
    assert list(tmp_path.iterdir()) == []


def test_foreign_and_future_files_are_named_errors(tmp_path):
    (tmp_path / "junk.arrow").write_bytes(b"not arrow")
    with pytest.raises(SelectionFileError, match="junk.arrow: not an Arrow IPC file"):
        read_selection(tmp_path / "junk.arrow")
    schema = pa.schema([("id", pa.int64()), ("weight", pa.float32())],
                       metadata={b"nessa.selection": json.dumps({"format_version": 99}).encode()})
    with pa.OSFile(str(tmp_path / "v99.arrow"), "wb") as sink, pa.ipc.new_file(sink, schema) as wr:
        wr.write_table(pa.table([pa.array([1], pa.int64()), pa.array([1.0], pa.float32())], schema=schema))
    with pytest.raises(SelectionFileError, match="version 99"):
        read_summary(tmp_path / "v99.arrow")


def test_the_service_writes_the_same_format(tmp_path):
    """A selection the service computed and persisted reads back with the shared reader."""
    from host.strategies import Strategy
    from storage_service._core import StorageCore
    from storage_service.ingest import write_store

    rng = np.random.default_rng(0)
    write_store(tmp_path / "d", rng.integers(0, 255, (60, 4, 4), dtype=np.uint8), np.repeat(np.arange(3), 20), name="d")
    core = StorageCore(tmp_path)
    try:
        rec = core.selections.wait(core.select("d", Strategy.RANDOM, 0.25, seed=1).id, 30)
        assert rec.state == "done"
        ids, w, doc = read_selection(tmp_path / ".nessa" / "selections" / f"{rec.id}.arrow")
    finally:
        core.close()
    assert doc["id"] == rec.id and doc["strategy"] == "random" and doc["class_counts"] == [5, 5, 5]
    assert len(ids) == 15 and (w == 1).all()


def test_ordered_round_trip_keeps_training_order_and_repeats(tmp_path):
    """Mini-batch selections keep their rows as given (batch after batch); an id may repeat
    across mini-batches; the summary says ordered / batch_size / num_batches."""
    from storage_service.selection_file import is_ordered

    ids = np.array([9, 2, 5, 2, 7, 1], np.int64)  # 3 mini-batches of 2; id 2 twice
    w = np.array([1.5, 0.5, 1.0, 1.0, 0.25, 1.75], np.float32)
    path = write_selection(tmp_path / "o.arrow", ids, w, {"strategy": "nessa-pa", "ordered": False, "batch_size": 99},
                           ordered=True, batch_size=2)
    got_ids, got_w, doc = read_selection(path)
    assert got_ids.tolist() == ids.tolist() and got_w.tolist() == w.tolist()
    assert doc["ordered"] is True and doc["batch_size"] == 2 and doc["num_batches"] == 3 and is_ordered(doc)
    assert doc["format_version"] == SELECTION_FORMAT_VERSION == 1 and read_summary(path) == doc
    # An unordered write drops a stray "ordered" key and still sorts.
    plain = write_selection(tmp_path / "p.arrow", ids[:3], w[:3], {"ordered": True})
    p_ids, _, p_doc = read_selection(plain)
    assert p_ids.tolist() == [2, 5, 9] and "ordered" not in p_doc and not is_ordered(p_doc)
    # A reader that ignores the keys still sees every row (plain pyarrow).
    assert pa.ipc.open_file(pa.memory_map(str(path))).read_all().column("id").to_pylist() == ids.tolist()


def test_ordered_bad_layouts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        write_selection(tmp_path / "a.arrow", np.arange(5), np.ones(5), {}, ordered=True, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        write_selection(tmp_path / "b.arrow", np.arange(4), np.ones(4), {}, ordered=True)
    with pytest.raises(ValueError, match="within each mini-batch"):
        write_selection(tmp_path / "c.arrow", np.array([1, 1, 2, 3]), np.ones(4), {}, ordered=True, batch_size=2)
    assert list(tmp_path.iterdir()) == []
    # A file whose summary contradicts its rows is a named error.
    schema = pa.schema([("id", pa.int64()), ("weight", pa.float32())], metadata={b"nessa.selection": json.dumps(
        {"format_version": 1, "ordered": True, "batch_size": 2, "num_batches": 5}).encode()})
    with pa.OSFile(str(tmp_path / "bad.arrow"), "wb") as sink, pa.ipc.new_file(sink, schema) as wr:
        wr.write_table(pa.table([pa.array([1, 2], pa.int64()), pa.array([1.0, 1.0], pa.float32())], schema=schema))
    with pytest.raises(SelectionFileError, match="bad.arrow: 2 rows"):
        read_selection(tmp_path / "bad.arrow")


def _rewrite(path, ids, weights):
    """Rewrite a selection file's rows in place, keeping its summary (an edit by hand)."""
    with pa.memory_map(str(path)) as src:
        schema = pa.ipc.open_file(src).schema
    table = pa.table([pa.array(np.asarray(ids, np.int64)), pa.array(np.asarray(weights, np.float32))], schema=schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as w:
        w.write_table(table)


def test_edited_file_fails_its_checksum(tmp_path):
    path = write_selection(tmp_path / "s.arrow", np.array([1, 4, 7]), np.array([1.0, 1.0, 1.0]), {})
    _rewrite(path, [1, 4, 7], [1.0, 2.0, 1.0])  # a plausible value: only the checksum can tell
    with pytest.raises(SelectionFileError, match="s.arrow: contents do not match their recorded sha256"):
        read_selection(path)


@pytest.mark.parametrize("weights, ids, message", [
    ([1.0, float("nan"), 1.0], [1, 4, 7], r"row 1 \(id 4\) has weight nan: weights must be finite and >= 0"),
    ([1.0, 1.0, -2.0], [1, 4, 7], r"row 2 \(id 7\) has weight -2.0"),
    ([float("inf"), 1.0, 1.0], [1, 4, 7], r"row 0 \(id 1\) has weight inf"),
    ([1.0, 1.0, 1.0], [1, 4, 4], r"id 4 appears more than once"),
    ([1.0, 1.0, 1.0], [-1, 4, 7], r"row 0 has id -1"),
])
def test_bad_values_are_named_on_read_and_refused_on_write(tmp_path, weights, ids, message):
    with pytest.raises(ValueError, match=message):
        write_selection(tmp_path / "w.arrow", np.array(ids), np.array(weights, np.float32), {})
    # a file edited by hand (old files have no checksum: the value checks still apply)
    path = write_selection(tmp_path / "s.arrow", np.array([1, 4, 7]), np.ones(3, np.float32), {})
    with pa.memory_map(str(path)) as src:
        schema = pa.ipc.open_file(src).schema
    doc = json.loads(schema.metadata[b"nessa.selection"])
    del doc["content_sha256"]
    schema = schema.with_metadata({b"nessa.selection": json.dumps(doc).encode()})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as w:
        w.write_table(pa.table([pa.array(np.array(ids, np.int64)), pa.array(np.array(weights, np.float32))], schema=schema))
    with pytest.raises(SelectionFileError, match="s.arrow: " + message):
        read_selection(path)


def test_ids_past_the_data_set_are_named(tmp_path):
    path = write_selection(tmp_path / "s.arrow", np.array([1, 4, 70]), np.ones(3, np.float32), {})
    assert read_selection(path, num_samples=71)[0].tolist() == [1, 4, 70]
    with pytest.raises(SelectionFileError, match=r"row 2 has id 70, outside \[0, 70\)"):
        read_selection(path, num_samples=70)
