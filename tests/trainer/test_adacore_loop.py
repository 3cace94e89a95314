"""adacore / adacore-pa in the training loop (digits over loopback gRPC): the trainer keeps its
curvature estimate as it trains and pushes it inside the model file it selects with."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from host.curvature import CURVATURE_TENSOR
from trainer.config import ConfigError, TrainConfig
from trainer.loop import train


def config(target, tmp_path, **kw) -> TrainConfig:
    base = dict(servers=target, dataset="digits/train", test_dataset="digits/test", epochs=3, batch_size=32,
                lr=0.05, progress=False, threads=1, out_dir=tmp_path, fraction=0.3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("strategy", ["adacore", "adacore-pa"])
def test_trains_and_pushes_its_curvature_with_the_model(service, tmp_path, strategy):
    target, store = service
    models = store.path.parents[1] / ".nessa" / "models"
    before = set(models.glob("*.safetensors")) if models.exists() else set()
    recs = train(config(target, tmp_path, strategy=strategy, curvature_beta=0.9)).records
    assert recs[-1]["test_acc"] > 0.5 and recs[-1]["model_bytes"] > 0
    pushed = sorted(set(models.glob("*.safetensors")) - before)
    assert pushed
    curv = [load_file(str(p))[CURVATURE_TENSOR] for p in pushed]
    assert all(c.shape == (10,) and np.all(np.isfinite(c)) and np.all(c >= 0) for c in curv)
    assert not np.allclose(curv[-1], 1.0)  # an estimate from training, not the neutral start


def test_curvature_beta_checked():
    with pytest.raises(ConfigError, match="--curvature-beta"):
        TrainConfig(servers="127.0.0.1:1", dataset="d", strategy="adacore", curvature_beta=1.0)
