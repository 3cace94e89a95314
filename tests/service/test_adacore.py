"""adacore / adacore-pa over real loopback gRPC: the curvature travels inside the model's
safetensors file, the service selects on preconditioned proxies exactly as a local run of the
same steps does, and a model without (or with a malformed) curvature is refused by name."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import torch
from safetensors.torch import save

import host
from host.curvature import CURVATURE_TENSOR, precondition
from host.models import build_model
from storage_service.client import SelectionFailed, StorageClient, StorageError
from storage_service.selection_file import read_selection
from storage_service.store import Store
from tests.service.helpers import make_root, running

CURV = np.array([0.2, 0.01, 0.05, 0.0004], np.float32)


def _blob(model, **extra) -> bytes:
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state.update(extra)
    return save(state)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("adacore"))
    torch.manual_seed(11)
    model = build_model("small_cnn", (1, 8, 8), 4).eval()
    with running(root) as (_, port), StorageClient(f"127.0.0.1:{port}", timeout=120, retries=0) as c:
        c.push_model("small_cnn", _blob(model, **{CURVATURE_TENSOR: torch.from_numpy(CURV)}), 1, dataset="a")
        c.push_model("small_cnn", _blob(model), 2, dataset="a")
        yield root, c, model


def _ids(root, info) -> np.ndarray:
    return read_selection(next((root / ".nessa" / "selections").glob(f"{info.id}*.arrow")))[0]


def test_adacore_is_craig_on_preconditioned_proxies(setup):
    root, c, model = setup
    st = Store(root / "a")
    x, y = st.take(np.arange(len(st)))
    feats = host.gradient_features(model, x, y, sample_shape=(1, 8, 8))
    want = host.select(precondition(feats, CURV), y, 0.1, optimizer="lazy", seed=3)
    got = c.select("a", "adacore", 0.1, seed=3, model_version=1)
    assert np.array_equal(np.sort(_ids(root, got)), np.sort(np.asarray(want.ids)))
    craig = c.select("a", "craig", 0.1, seed=3, model_version=1)
    assert not np.array_equal(_ids(root, craig), _ids(root, got))  # the curvature changes the geometry


def test_adacore_pa_gives_ordered_minibatch_coresets(setup):
    root, c, _ = setup
    info = c.select("a", "adacore-pa", 0.25, seed=1, model_version=1, batch_size=16, num_batches=3)
    assert info.num_selected == 48 and info.batch_size == 16 and info.num_batches == 3


def test_a_model_without_curvature_is_refused_by_name(setup):
    _, c, _ = setup
    with pytest.raises(SelectionFailed, match=CURVATURE_TENSOR.replace(".", r"\.")):
        c.select("a", "adacore", 0.1, seed=3, model_version=2)


@pytest.mark.parametrize("extra,message", [
    ({CURVATURE_TENSOR: torch.ones(3)}, "one value per class"),
    ({"nessa.other": torch.ones(4)}, "unexpected"),
    ({CURVATURE_TENSOR: torch.tensor([1.0, float("nan"), 1.0, 1.0])}, "non-finite"),
])
def test_malformed_curvature_refused_at_push(setup, extra, message):
    _, c, model = setup
    with pytest.raises(StorageError) as info:
        c.push_model("small_cnn", _blob(model, **extra), 9, dataset="a")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and message in info.value.details


def test_adacore_on_the_emulated_kernels_matches_the_golden_path(setup):
    """The preconditioning is a per-class scale between the feature pass and the greedy kernel,
    so it carries to the fixed-point kernels unchanged: the service's adacore function on the
    emu backend selects what the emulated kernels select from the same preconditioned features."""
    from host.strategies import Strategy
    from storage_service._strategies import STRATEGIES, SelectionParams

    root, _, model = setup
    st = Store(root / "a")
    x, y = st.take(np.arange(len(st)))
    model.nessa_curvature = CURV.astype(np.float64)
    try:
        got = STRATEGIES[Strategy.ADACORE](st, SelectionParams("a", Strategy.ADACORE, 0.1, 3, "emu", 1, "sha"), model)
    finally:
        del model.nessa_curvature
    feats = host.gradient_features(model, x, y, sample_shape=(1, 8, 8), backend="emu")
    want = host.select(precondition(feats, CURV), y, 0.1, optimizer="lazy", seed=3, backend="emu")
    plain = host.select(feats, y, 0.1, optimizer="lazy", seed=3, backend="emu")
    assert np.array_equal(np.sort(got.ids), np.sort(np.asarray(want.ids)))
    assert not np.array_equal(np.sort(got.ids), np.sort(np.asarray(plain.ids)))
