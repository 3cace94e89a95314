"""AdaCore's curvature: the EMA of the squared logit-space Hessian diagonal, bias-corrected, and
the per-class preconditioning of gradient proxies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from host.curvature import CURVATURE_TENSOR, CurvatureEMA, precondition


def test_ema_is_the_bias_corrected_average_of_squared_p_one_minus_p():
    torch.manual_seed(0)
    batches = [torch.randn(16, 4) * 3 for _ in range(5)]
    ema = CurvatureEMA(4, beta=0.9)
    assert np.array_equal(ema.value(), np.ones(4, np.float32))  # nothing yet: no preconditioning
    v = np.zeros(4)
    for b in batches:
        ema.update(b)
        p = torch.softmax(b, 1).double().numpy()
        d = (p * (1 - p)).mean(0)
        v = 0.9 * v + 0.1 * d * d
    assert ema.steps == 5
    np.testing.assert_allclose(ema.value(), v / (1 - 0.9 ** 5), rtol=1e-6)
    t = ema.tensors()[CURVATURE_TENSOR]
    assert t.dtype == torch.float32 and t.shape == (4,)


def test_confident_classes_weigh_more_after_preconditioning():
    f = np.ones((3, 2), np.float32)
    out = precondition(f, np.array([0.04, 0.0001]))
    np.testing.assert_allclose(out[0], [1 / (0.2 + 1e-4), 1 / (0.01 + 1e-4)], rtol=1e-5)


@pytest.mark.parametrize("v,message", [(np.ones(3), "3 classes"), (np.array([1.0, np.nan]), "finite"),
                                       (np.array([1.0, -1.0]), ">= 0")])
def test_bad_curvature_named(v, message):
    with pytest.raises(ValueError, match=message):
        precondition(np.ones((2, 2), np.float32), v)


def test_beta_checked():
    with pytest.raises(ValueError, match="beta"):
        CurvatureEMA(3, beta=1.0)
