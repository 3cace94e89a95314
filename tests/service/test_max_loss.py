"""max-loss over real loopback gRPC: per class the ceil(f * n_c) highest-loss examples under the
pushed model, exactly as a local forward pass ranks them, weight 1."""

from __future__ import annotations

import numpy as np
import torch

import host
from host.budget import class_budget
from host.minibatch import losses_from_features
from host.models import build_model
from storage_service.client import StorageClient
from storage_service.selection_file import read_selection
from storage_service.store import Store
from tests.service.helpers import make_root, running


def test_max_loss_picks_each_classes_hardest_examples(tmp_path):
    root = make_root(tmp_path)
    torch.manual_seed(5)
    model = build_model("small_cnn", (1, 8, 8), 4)
    st = Store(root / "a")
    samples, labels = st.take(np.arange(len(st)))
    losses = losses_from_features(host.gradient_features(model.eval(), samples, labels, sample_shape=(1, 8, 8)), labels)
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", timeout=120) as c:
        c.push_model("small_cnn", model, 1, dataset="a")
        info = c.select("a", "max-loss", 0.2, model_version=1)
    ids, weights = read_selection(next((root / ".nessa" / "selections").glob(f"{info.id}*.arrow")))[:2]
    assert info.num_selected == len(ids) and np.all(weights == 1)
    for cls in range(4):
        members = np.flatnonzero(labels == cls)
        got = np.intersect1d(ids, members)
        assert len(got) == class_budget(len(members), 0.2)
        # every chosen example is at least as hard as every one left out (up to float noise)
        rest = np.setdiff1d(members, got)
        assert losses[got].min() >= losses[rest].max() - 1e-5
