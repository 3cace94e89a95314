"""ViewLabelTable: a stage's view labels, streamed in any order, looked up by (sample id, epoch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from host.distill import ViewSpec
from trainer.view_labels import ViewLabelTable

SPEC = ViewSpec(3, 4, 2.0, ("crop", "flip"))
COLUMN = "emb/view-labels-s0"


@dataclass
class _Batch:  # the fields of a streamed SampleBatch the table reads
    ids: np.ndarray
    columns: dict
    nbytes: int


def _batches(q: np.ndarray, order: np.ndarray, size: int = 3):
    for a in range(0, len(order), size):
        ids = order[a:a + size]
        yield _Batch(ids, {COLUMN: q[ids].reshape(len(ids), -1).astype(np.float16)}, 100)


def test_lookup_by_id_and_epoch_whatever_the_stream_order():
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(4), size=(10, 3)).astype(np.float32)  # [rows, epochs, classes]
    table = ViewLabelTable(COLUMN, SPEC)
    assert table.load("d/stage-01", _batches(q, rng.permutation(10))) == 400
    assert table.dataset == "d/stage-01"
    ids = torch.tensor([7, 0, 7, 3])
    for epoch in range(3):
        got = table.targets(ids, epoch, "cpu")
        assert got.dtype == torch.float32 and got.shape == (4, 4)
        np.testing.assert_allclose(got.numpy(), q[ids.numpy(), epoch], atol=1e-3)  # float16 on the wire
    with pytest.raises(ValueError, match="--epochs: epoch 4 has no view labels"):
        table.targets(ids, 3, "cpu")


@pytest.mark.parametrize("order", [np.array([0, 1, 2, 4]), np.array([0, 1, 1, 2, 3])], ids=["missing", "twice"])
def test_a_stream_without_every_row_once_is_refused(order):
    q = np.full((5, 3, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match="did not stream every row exactly once"):
        ViewLabelTable(COLUMN, SPEC).load("d/stage-01", _batches(q, order))
