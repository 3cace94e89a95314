"""Several storage services at once: each holds and selects its own part; the trainer interleaves them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from storage_service.ingest import write_store
from storage_service.store import Store
from trainer.config import TrainConfig
from trainer.dataset import SampleStream
from storage_service.server import serve_local as local_service
from trainer.loop import train
from trainer.multi import IncompatibleParts, open_cluster


@pytest.fixture(scope="module")
def two_services(tmp_path_factory):
    """Digits split in two halves, each on its own server (train and test parts alike)."""
    d = load_digits()
    x = np.clip(d.images * 16, 0, 255).astype(np.uint8)
    y = d.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, train_ids = order[:360], order[360:]
    roots = []
    for part in range(2):
        root = tmp_path_factory.mktemp(f"host{part}")
        write_store(root / "digits" / "train", x[train_ids[part::2]], y[train_ids[part::2]], name="digits/train")
        write_store(root / "digits" / "test", x[test[part::2]], y[test[part::2]], name="digits/test")
        roots.append(root)
    odd = tmp_path_factory.mktemp("odd")
    write_store(odd / "digits" / "train", np.zeros((20, 4, 4), np.uint8), np.arange(20) % 10, name="digits/train")
    with local_service(roots[0]) as a, local_service(roots[1]) as b, local_service(odd) as c:
        yield [a, b], [Store(r / "digits" / "train") for r in roots], c


def test_full_stream_interleaves_every_part(two_services):
    targets, stores, _ = two_services
    cluster = open_cluster(targets, "digits/train")
    try:
        assert cluster.num_samples == sum(len(s) for s in stores)
        batches = list(SampleStream(cluster.parts("digits/train"), epoch=0, seed=0, batch_size=40))
    finally:
        cluster.close()
    assert sum(len(b) for b in batches) == cluster.num_samples
    assert batches[-1].offsets == tuple(len(s) for s in stores)


def test_each_server_selects_its_own_part(two_services, tmp_path):
    targets, stores, _ = two_services
    cfg = TrainConfig(servers=",".join(targets), dataset="digits/train", test_dataset="digits/test",
                      strategy="nessa", fraction=0.1, epochs=2, reselect_every=1, batch_size=32, threads=1,
                      progress=False, out_dir=tmp_path, warm_start=0, overlap_selection=False)
    recs = train(cfg).records
    budgets = [sum(math.ceil(0.1 * n - 1e-9) for n in s.manifest.class_counts) for s in stores]
    assert all(r["num_selected"] == sum(budgets) for r in recs)
    assert all(len(r["selection"].split(",")) == 2 for r in recs)
    assert recs[-1]["samples_seen"] == 2 * sum(budgets)
    assert recs[-1]["model_bytes"] == 2 * recs[0]["model_bytes"] > 0  # the model went to both hosts, twice
    assert recs[-1]["test_acc"] is not None


def test_incompatible_parts_are_named(two_services):
    targets, _, odd = two_services
    with pytest.raises(IncompatibleParts, match="sample_shape"):
        open_cluster([targets[0], odd], "digits/train")
