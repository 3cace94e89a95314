"""Distill / GetDistillation over real gRPC: stages written as data sets, streamed like any
other, trained on by the trainer (``--strategy pdd``; soft and per-view labels), resumed, and bad
requests refused."""

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
    y = d.target
    r = tmp_path_factory.mktemp("distill-root")
    write_store(r / "digits" / "train", x[:1500], y[:1500])
    write_store(r / "digits" / "test", x[1500:], y[1500:])
    write_store(r / "tab", np.zeros((40, 5), np.float32), np.arange(40) % 2)
    return r


def _wait(client: StorageClient, name: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_distillation(name)
        if info.state != 1 or time.monotonic() > deadline:  # not RUNNING
            return info
        time.sleep(0.1)


def test_distill_writes_stages_the_trainer_streams_cumulatively(root):
    from storage_service._proto import nessa_pb2 as pb
    from trainer.config import TrainConfig
    from trainer.loop import train

    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as client:
        first = client.distill("digits/train", "dd", method="dm", stages=1, ipc=2, iterations=3, seed=5)
        assert first.name == "dd" and first.steps_total == 3
        one = _wait(client, "dd")
        assert one.state == pb.DISTILL_STATE_DONE, one.error
        stage1 = Store(root / "dd" / "stage-01")
        before = stage1.take(np.arange(len(stage1)))[0].copy()
        # More stages later: resumes after stage 1, which stays as it was.
        client.distill("digits/train", "dd", method="dm", stages=2, ipc=2, iterations=3, seed=5)
        info = _wait(client, "dd")
        assert info.state == pb.DISTILL_STATE_DONE and info.resumed_from == 1, info
        assert list(info.stage_datasets) == ["dd/stage-01", "dd/stage-02"] and info.step == info.steps_total == 6
        assert info.cpu_seconds > 0

        ds = client.get_dataset("dd/stage-02")
        assert ds.num_samples == 40 and ds.dtype == "float32" and list(ds.class_counts) == [4] * 10
        streamed = list(client.stream_samples("dd/stage-02", selection="full"))
        ids = np.concatenate([b.ids for b in streamed])
        samples = np.concatenate([b.samples for b in streamed])[np.argsort(ids)]
        np.testing.assert_array_equal(samples[:20], before)  # the union starts with stage 1
        manifest = Store(root / "dd" / "stage-02").manifest.extra["distill"]
        assert (manifest["source"], manifest["method"], manifest["stage"], manifest["seed"]) == ("digits/train", "dm", 2, 5)
        assert manifest["stage_rows"] == [[0, 20], [20, 40]] and manifest["labels"] == "hard"

        res = train(TrainConfig(servers=f"127.0.0.1:{port}", dataset="", test_dataset="digits/test", strategy="pdd",
                                distilled="dd", epochs=4, batch_size=16, progress=False, threads=1))
        assert [r["selection"] for r in res.records] == ["dd/stage-01"] * 2 + ["dd/stage-02"] * 2
        assert res.records[-1]["samples_seen"] == 20 + 20 + 40 + 40
        assert res.records[-1]["bytes_received"] >= 120 * 64 * 4  # float32 8x8 images
        assert res.records[-1]["test_acc"] > 0.1


def test_soft_labels_are_written_resumed_streamed_and_trained_on(root):
    """A soft-labelled distillation (the random control, so the test is about the labels): every
    stage carries the teacher's probabilities in emb/soft-labels, a resumed stage keeps the
    earlier ones byte for byte, the stream cuts them in step with the samples, and pdd trains on
    them (its loss is then a cross-entropy against q, never below q's entropy)."""
    from host.distill import SOFT_LABEL_COLUMN
    from storage_service._proto import nessa_pb2 as pb
    from trainer.config import TrainConfig
    from trainer.dataset import SampleStream, StreamPart
    from trainer.loop import train

    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as client:
        kw = dict(method="random", ipc=3, seed=2, labels="soft", teacher_epochs=20)
        one = _wait(client, client.distill("digits/train", "sl", stages=1, **kw).name)
        assert one.state == pb.DISTILL_STATE_DONE and one.soft_labels, one
        q1 = Store(root / "sl" / "stage-01").embeddings(SOFT_LABEL_COLUMN)
        two = _wait(client, client.distill("digits/train", "sl", stages=2, **kw).name)
        assert two.state == pb.DISTILL_STATE_DONE and two.resumed_from == 1, two
        stage2 = Store(root / "sl" / "stage-02")
        doc = stage2.manifest.extra["distill"]
        assert (doc["labels"], doc["soft_label_column"], doc["label_temperature"]) == ("soft", SOFT_LABEL_COLUMN, 2.0)
        assert doc["teacher_cpu_s"] > 0
        q = stage2.embeddings(SOFT_LABEL_COLUMN)
        assert q.shape == (60, 10) and stage2.columns[SOFT_LABEL_COLUMN].dtype == "float32"
        np.testing.assert_array_equal(q[:30], q1)  # stage 1's labels, read back, not recomputed
        np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
        assert (q.argmax(axis=1) == stage2.take(np.arange(60))[1]).mean() >= 0.7

        stream = SampleStream([StreamPart(client, "sl/stage-02", "full")], epoch=0, seed=1, batch_size=16,
                              soft_column=SOFT_LABEL_COLUMN)
        batches = list(stream)
        assert sum(len(b) for b in batches) == 60
        for b in batches:  # each row's soft label is its own sample's, across straddled stream batches
            np.testing.assert_array_equal(b.soft.numpy(), q[b.ids.numpy()])

        common = dict(servers=f"127.0.0.1:{port}", dataset="", test_dataset="digits/test", strategy="pdd",
                      distilled="sl", epochs=2, batch_size=16, progress=False, threads=1, seed=3)
        soft = train(TrainConfig(**common)).records
        hard = train(TrainConfig(**common, hard_labels=True)).records
        entropy = float(-(q * np.log(q)).sum(axis=1).mean())
        assert soft[-1]["train_loss"] >= entropy - 1e-4  # Gibbs: CE(q, p) >= H(q)
        assert soft[-1]["train_loss"] != pytest.approx(hard[-1]["train_loss"], abs=1e-3)
        assert soft[-1]["test_acc"] > 0.1 and hard[-1]["test_acc"] > 0.1


@pytest.mark.parametrize("kw, code, text", [
    (dict(dataset="digits/train", stages=0), grpc.StatusCode.INVALID_ARGUMENT, "stages: must be at least 1"),
    (dict(dataset="digits/train", ipc=500), grpc.StatusCode.INVALID_ARGUMENT, "--ipc: 500 images per class is larger"),
    (dict(dataset="tab"), grpc.StatusCode.INVALID_ARGUMENT, "tab: samples of shape [5] are not images"),
    (dict(dataset="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    (dict(dataset="digits/train", out="../x"), grpc.StatusCode.INVALID_ARGUMENT, "--out"),
    (dict(dataset="digits/train", out="digits/test/x"), grpc.StatusCode.INVALID_ARGUMENT, "is or lies inside an existing data set"),
])
def test_bad_requests_are_refused_with_the_right_code(root, kw, code, text):
    args = dict(out="bad", method="dm", stages=1, ipc=2, iterations=2)
    args.update(kw)
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as client:
        with pytest.raises(StorageError) as err:
            client.distill(args.pop("dataset"), args.pop("out"), **args)
        assert err.value.code == code and text in err.value.details


def test_unknown_distillation_and_selecting_pdd(root):
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", retries=0) as client:
        with pytest.raises(StorageError) as err:
            client.get_distillation("never")
        assert err.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(StorageError) as err:
            client.select("digits/train", "pdd", 0.1, seed=0, model_version=None, backend="")
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "selects nothing" in err.value.details


VIEW_EPOCHS = 4


def test_view_labels_are_written_resumed_and_trained_on(root):
    from host.distill import SOFT_LABEL_COLUMN, ViewSpec, view_label_column
    from storage_service._proto import nessa_pb2 as pb
    from trainer.config import ConfigError, TrainConfig
    from trainer.loop import train

    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}") as client:
        kw = dict(method="random", ipc=3, seed=2, labels="views", teacher_epochs=20, view_epochs=VIEW_EPOCHS,
                  view_seeds=[0, 5], view_augment="crop,flip")
        one = _wait(client, client.distill("digits/train", "vl", stages=1, **kw).name)
        assert one.state == pb.DISTILL_STATE_DONE and one.soft_labels and one.view_epochs == VIEW_EPOCHS, one
        q1 = Store(root / "vl" / "stage-01").embeddings(view_label_column(5))
        two = _wait(client, client.distill("digits/train", "vl", stages=2, **kw).name)
        assert two.state == pb.DISTILL_STATE_DONE and two.resumed_from == 1, two

        stage2 = Store(root / "vl" / "stage-02")
        doc = stage2.manifest.extra["distill"]
        assert doc["labels"] == "views"
        assert doc["view_labels"] == {"format": "nessa-view-labels", "format_version": 1, "epochs": VIEW_EPOCHS,
                                      "augment": ["crop", "flip"], "temperature": 2.0,
                                      "columns": {"0": view_label_column(0), "5": view_label_column(5)}}
        col = stage2.columns[view_label_column(5)]
        assert (col.dtype, col.dim) == ("float16", VIEW_EPOCHS * 10)
        assert ViewSpec.parse(col.source) == ViewSpec(VIEW_EPOCHS, 10, 2.0, ("crop", "flip"))
        q = stage2.embeddings(view_label_column(5))
        assert q.shape == (60, VIEW_EPOCHS * 10) and SOFT_LABEL_COLUMN in stage2.columns
        np.testing.assert_array_equal(q[:30], q1)  # stage 1's rows keep their ids, hence their views
        assert np.abs(stage2.embeddings(view_label_column(0)) - q).max() > 2e-3  # seeds draw other views

        common = dict(servers=f"127.0.0.1:{port}", dataset="", test_dataset="digits/test", strategy="pdd",
                      distilled="vl", epochs=VIEW_EPOCHS, batch_size=16, progress=False, threads=1, seed=5)
        views = train(TrainConfig(**common, augment="flip,crop")).records
        hard = train(TrainConfig(**common, augment="crop,flip", hard_labels=True)).records
        # Each epoch's loss is a cross-entropy against that epoch's view labels: never below their
        # mean entropy (Gibbs). The last epoch trains on stage 2's 60 rows.
        last = q.reshape(60, VIEW_EPOCHS, 10)[:, -1].astype(np.float64)
        entropy = float(-(last * np.log(last + 1e-12)).sum(axis=1).mean())
        assert views[-1]["train_loss"] >= entropy - 1e-3
        assert views[-1]["train_loss"] != pytest.approx(hard[-1]["train_loss"], abs=1e-3)
        # The labels are streamed once per stage and counted: more bytes than the hard-label run.
        assert views[-1]["bytes_received"] > hard[-1]["bytes_received"]

        for bad, text in [(dict(augment="crop"), "--augment: vl labels the views of --augment crop,flip, not crop"),
                          (dict(), "--augment: vl carries the teacher's label of each view"),
                          (dict(augment="crop,flip", seed=1), "--seed: vl has view labels for seeds 0, 5, not 1"),
                          (dict(augment="crop,flip", epochs=VIEW_EPOCHS + 1), f"--epochs: vl labels the views of {VIEW_EPOCHS} epochs"),
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
