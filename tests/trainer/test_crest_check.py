"""CREST's drift check (trainer/rounds.py CrestCheck): anchors on the first visit, the quadratic
model is exact on a quadratic, an unpredicted loss is drift, a new round re-anchors; the
Hutchinson diagonal covers every parameter and is averaged across refreshes."""

from __future__ import annotations

import torch

from trainer.dataset import Batch
from trainer.rounds import CrestCheck


class _Quad(torch.nn.Module):
    """A model whose 'loss' path is a plain quadratic in its weights (for exact checks)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))


def _loss_and_grad(m: _Quad, a: torch.Tensor) -> float:
    m.zero_grad()
    loss = 0.5 * (a * m.w ** 2).sum() + 1.0
    loss.backward()
    return float(loss.detach())


def test_quadratic_model_is_exact_with_the_true_diagonal_and_flags_a_different_loss():
    m, a = _Quad(), torch.tensor([3.0, 0.5])
    check = CrestCheck(tau=0.01)
    check._h = a.clone()  # the true Hessian diagonal
    assert check.drifted(0, _loss_and_grad(m, a), m) is False  # first visit: the anchor
    with torch.no_grad():
        m.w.add_(torch.tensor([0.3, -0.4]))
    assert check.drifted(0, _loss_and_grad(m, a), m) is False and check.errors[-1] < 1e-6
    # The same parameters with a loss the model did not predict (the landscape moved): drift.
    assert check.drifted(0, 2.0 * _loss_and_grad(m, a), m) is True
    check.new_round()
    assert check.drifted(0, 5.0, m) is False  # a new round re-anchors


def test_hutchinson_diagonal_is_estimated_for_every_parameter_and_averaged():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randint(0, 255, (16, 2, 2), dtype=torch.uint8)
    batch = Batch(x=x, y=torch.randint(0, 3, (16,)), w=torch.ones(16), ids=torch.arange(16), offsets=(0,), nbytes=0)
    check = CrestCheck(tau=0.05, hessian_every=1)
    check.curvature(model, batch, (2, 2), True, 0)
    n = sum(p.numel() for p in model.parameters())
    assert check._h is not None and check._h.shape == (n,) and torch.isfinite(check._h).all()
    check.curvature(model, batch, (2, 2), True, 1)  # averaged, not replaced
    assert check._h_updates == 2
