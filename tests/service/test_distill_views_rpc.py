"""Per-view labels over real gRPC: Distill writes a column per training seed, a resumed stage
keeps the earlier rows' labels, the trainer trains each view on its own label, and a run that
would pair views with other views' labels is refused naming the option."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import torch

from storage_service.client import StorageClient, StorageError
from storage_service.ingest import write_store
from storage_service.store import Store
from tests.service.helpers import running

EPOCHS = 4


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the service's distillation shares this process
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * 255 / 16).round().astype(np.uint8)
    r = tmp_path_factory.mktemp("views-root")
    write_store(r / "digits" / "train", x[:1500], d.target[:1500])
    write_store(r / "digits" / "test", x[1500:], d.target[1500:])
    return r


def _wait(client: StorageClient, name: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    info = client.get_distillation(name)
    while info.state == 1 and time.monotonic() < deadline:  # RUNNING
        time.sleep(0.1)
        info = client.get_distillation(name)
    return info


def test_view_labels_are_written_resumed_and_trained_on(root):
    from host.distill import SOFT_LABEL_COLUMN, ViewSpec, view_label_column
    from storage_service._proto import nessa_pb2 as pb
    from trainer.config import ConfigError, TrainConfig
    from trainer.loop import train

    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as client:
        kw = dict(method="random", ipc=3, seed=2, labels="views", teacher_epochs=20, view_epochs=EPOCHS,
                  view_seeds=[0, 5], view_augment="crop,flip")
        one = _wait(client, client.distill("digits/train", "vl", stages=1, **kw).name)
        assert one.state == pb.DISTILL_STATE_DONE and one.soft_labels and one.view_epochs == EPOCHS, one
        q1 = Store(root / "vl" / "stage-01").embeddings(view_label_column(5))
        two = _wait(client, client.distill("digits/train", "vl", stages=2, **kw).name)
        assert two.state == pb.DISTILL_STATE_DONE and two.resumed_from == 1, two

        stage2 = Store(root / "vl" / "stage-02")
        doc = stage2.manifest.extra["distill"]
        assert doc["labels"] == "views"
        assert doc["view_labels"] == {"format": "nessa-view-labels", "format_version": 1, "epochs": EPOCHS,
                                      "augment": ["crop", "flip"], "temperature": 2.0,
                                      "columns": {"0": view_label_column(0), "5": view_label_column(5)}}
        col = stage2.columns[view_label_column(5)]
        assert (col.dtype, col.dim) == ("float16", EPOCHS * 10)
        assert ViewSpec.parse(col.source) == ViewSpec(EPOCHS, 10, 2.0, ("crop", "flip"))
        q = stage2.embeddings(view_label_column(5))
        assert q.shape == (60, EPOCHS * 10) and SOFT_LABEL_COLUMN in stage2.columns
        np.testing.assert_array_equal(q[:30], q1)  # stage 1's rows keep their ids, hence their views
        assert np.abs(stage2.embeddings(view_label_column(0)) - q).max() > 2e-3  # seeds draw other views

        common = dict(servers=f"127.0.0.1:{port}", dataset="", test_dataset="digits/test", strategy="pdd",
                      distilled="vl", epochs=EPOCHS, batch_size=16, progress=False, threads=1, seed=5)
        views = train(TrainConfig(**common, augment="flip,crop")).records
        hard = train(TrainConfig(**common, augment="crop,flip", hard_labels=True)).records
        # Each epoch's loss is a cross-entropy against that epoch's view labels: never below their
        # mean entropy (Gibbs). The last epoch trains on stage 2's 60 rows.
        last = q.reshape(60, EPOCHS, 10)[:, -1].astype(np.float64)
        entropy = float(-(last * np.log(last + 1e-12)).sum(axis=1).mean())
        assert views[-1]["train_loss"] >= entropy - 1e-3
        assert views[-1]["train_loss"] != pytest.approx(hard[-1]["train_loss"], abs=1e-3)
        # The labels are streamed once per stage and counted: more bytes than the hard-label run.
        assert views[-1]["bytes_received"] > hard[-1]["bytes_received"]

        for bad, text in [(dict(augment="crop"), "--augment: vl labels the views of --augment crop,flip, not crop"),
                          (dict(), "--augment: vl carries the teacher's label of each view"),
                          (dict(augment="crop,flip", seed=1), "--seed: vl has view labels for seeds 0, 5, not 1"),
                          (dict(augment="crop,flip", epochs=EPOCHS + 1), f"--epochs: vl labels the views of {EPOCHS} epochs"),
                          (dict(augment="crop,flip", augment_subset="random:0.5"), "--augment-subset: vl carries per-view")]:
            with pytest.raises(ConfigError) as err:
                train(TrainConfig(**{**common, **bad}))
            assert text in str(err.value)


def test_bad_view_requests_are_invalid_argument(root):
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as client:
        for kw, text in [(dict(view_epochs=3), "view-seeds: 1 to 16 training seeds"),
                         (dict(view_epochs=3, view_seeds=[0], view_augment="spin"), "view-augment: unknown augmentation")]:
            with pytest.raises(StorageError) as err:
                client.distill("digits/train", "bad", method="random", ipc=2, labels="views", **kw)
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and text in err.value.details
        assert not (root / "bad").exists()
