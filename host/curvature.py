"""AdaCore's curvature: the trainer's running estimate of the loss's diagonal Hessian at the
logits, and the Hessian-preconditioned gradient features the storage host selects on.

AdaCore (Pooladzandi, Davini & Mirzasoleiman, ICML 2022) chooses the coreset whose weighted
gradients approximate the full gradient *preconditioned* by the curvature, as AdaHessian steps
do: g / sqrt(v), with v the exponential moving average of the squared Hessian diagonal. NeSSA's
gradient proxies live in logit space (``softmax(z) - onehot(y)``, one number per class), where
cross-entropy's Hessian is ``diag(p) - p p^T``; its diagonal ``p (1 - p)`` is exact there, so no
Hutchinson probe is needed (the Gauss-Newton form the issue names). Per batch the trainer takes
``D = mean_i p_i (1 - p_i)`` (a vector over classes) and keeps

    v_t = beta v_{t-1} + (1 - beta) D^2          bias-corrected: v_t / (1 - beta^t)

It travels to the storage host inside the model's safetensors file, as the float32 tensor
``CURVATURE_TENSOR`` of shape (num_classes,) beside the model's own tensors (wire version 1 of
that name; the server refuses any other ``nessa.`` tensor). There each example's feature is
scaled per class: ``g / (sqrt(v) + eps)``, so classes the model is still unsure of (large
curvature) weigh less in the facility-location distances and confident ones more, which is the
preconditioned geometry AdaCore's coreset must cover.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CURVATURE_TENSOR", "AUX_PREFIX", "EPS", "CurvatureEMA", "precondition"]

#: The tensor carrying the estimate in a pushed model file (``.v1``: its wire version).
CURVATURE_TENSOR = "nessa.curvature.v1"
#: Names of tensors in a model file that are NeSSA's, not the model's.
AUX_PREFIX = "nessa."
#: Keeps the scale finite where a class's curvature is ~0 (a model certain of it).
EPS = 1e-4


def precondition(features: np.ndarray, curvature: np.ndarray, eps: float = EPS) -> np.ndarray:
    """``features / (sqrt(curvature) + eps)`` per class column, float32 (features: (N, C))."""
    v = np.asarray(curvature, dtype=np.float64).reshape(-1)
    if v.shape[0] != features.shape[1]:
        raise ValueError(f"curvature has {v.shape[0]} classes, the features {features.shape[1]}")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError("curvature must be finite and >= 0")
    return (features / (np.sqrt(v) + eps)).astype(np.float32)


class CurvatureEMA:
    """The trainer's side: ``update(logits)`` per step, ``tensors()`` to push with the model."""

    def __init__(self, num_classes: int, beta: float = 0.99):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"curvature beta must be in [0, 1), got {beta}")
        self.beta = float(beta)
        self._v = np.zeros(int(num_classes), np.float64)
        self._steps = 0

    def update(self, logits) -> None:
        """Fold one batch's logits (a torch tensor (B, C), no gradient needed) into the average."""
        import torch

        with torch.no_grad():
            p = torch.softmax(logits.detach().float(), dim=1)
            d = (p * (1.0 - p)).mean(0).double().cpu().numpy()
        self._v = self.beta * self._v + (1.0 - self.beta) * d * d
        self._steps += 1

    @property
    def steps(self) -> int:
        return self._steps

    def value(self) -> np.ndarray:
        """The bias-corrected estimate (ones before any update: no preconditioning yet)."""
        if self._steps == 0:
            return np.ones_like(self._v, dtype=np.float32)
        return (self._v / (1.0 - self.beta ** self._steps)).astype(np.float32)

    def tensors(self) -> dict:
        """``{CURVATURE_TENSOR: torch float32 (C,)}`` to save beside the model's state."""
        import torch

        return {CURVATURE_TENSOR: torch.from_numpy(self.value().copy())}
