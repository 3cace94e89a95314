"""Evaluation of contrastive models: linear probe and zero-shot classification.

* ``linear_probe``: frozen ``encode_image`` features of a labelled train split, standardised,
  -> multinomial logistic regression (scikit-learn, L-BFGS) -> accuracy on the test split.
* ``zero_shot``: one prompt per (class, template) through ``encode_text``, averaged per class
  and renormalised (CLIP's prompt ensembling); a test image's class is the argmax cosine.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from host.models import to_input

__all__ = ["features", "linear_probe", "zero_shot", "class_text_embeddings"]


@torch.no_grad()
def features(model, samples: np.ndarray, sample_shape, *, batch_size: int = 512, device: str = "cpu") -> np.ndarray:
    """``model.encode_image`` of ``samples`` (uint8, as stored) in eval mode -> float32 (N, D)."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(samples), batch_size):
        x = to_input(samples[s:s + batch_size], sample_shape).to(device)
        out.append(model.encode_image(x).float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def linear_probe(model, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 sample_shape, *, c: float = 1.0, max_iter: int = 500, device: str = "cpu") -> float:
    """Test accuracy of a logistic regression on frozen features (see module docs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:
        raise ValueError("linear probe needs at least two classes in the train split")
    ftr = features(model, train_x, sample_shape, device=device)
    fte = features(model, test_x, sample_shape, device=device)
    scaler = StandardScaler().fit(ftr)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit(scaler.transform(ftr), np.asarray(train_y))
    return float((clf.predict(scaler.transform(fte)) == np.asarray(test_y)).mean())


@torch.no_grad()
def class_text_embeddings(model, class_names: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(C, D) normalised mean of ``encode_text(template.format(name))`` over templates."""
    if not templates or not class_names:
        raise ValueError("zero-shot needs at least one class name and one template")
    rows = []
    for name in class_names:
        prompts = [t.format(name) if "{" in t else f"{t} {name}" for t in templates]
        rows.append(F.normalize(model.encode_text(prompts).mean(0), dim=0))
    return torch.stack(rows)


@torch.no_grad()
def zero_shot(model, test_x: np.ndarray, test_y: np.ndarray, sample_shape, class_names: Sequence[str],
              templates: Sequence[str], *, device: str = "cpu") -> float:
    """Zero-shot test accuracy from caption templates (see module docs)."""
    was = model.training
    model.eval()
    cls = class_text_embeddings(model, class_names, templates).cpu().numpy()
    model.train(was)
    img = features(model, test_x, sample_shape, device=device)
    pred = (img @ cls.T).argmax(1)
    return float((pred == np.asarray(test_y)).mean())
