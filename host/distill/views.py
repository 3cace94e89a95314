"""A teacher's label for every augmented view a training run will draw (issue #18).

Static soft labels give each distilled image one teacher probability vector; a trainer that
augments the image then trains every view against the label of the unaugmented one. The
trainer's augmentation is a pure function of (seed, epoch, sample id) (``host.augment``), so the
storage host, which holds the teacher and the images, can compute the teacher's label of exactly
the view run ``seed`` will train on in ``epoch``: ``softmax(teacher(view) / T)`` for every
(row, epoch) of the run ("patient and consistent" knowledge distillation, FKD-style relabelling,
without the teacher ever leaving the storage host). Measured on Fashion-MNIST in BENCHMARKS.md.

Storage (one embedding column per labelled seed, beside ``emb/soft-labels``)::

    name    emb/view-labels-s<seed>                      (``view_label_column``)
    values  float16 [rows, epochs * classes]; row r, epoch e: values[r, e*C:(e+1)*C], summing to 1
    source  "nessa-view-labels/1 epochs=<E> classes=<C> temperature=<T> augment=<a,b>"
            (``ViewSpec.source``: what a trainer checks its --augment / --epochs against; the
            distillation's manifest records the same under ``view_labels``)

A trainer that uses the column must augment with the same ``--augment`` names (sized by
``host.augment.augment_config`` for the data set's image side), the same seed, and train at most
``epochs`` epochs; ``trainer.distilled`` refuses anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from host.augment import Augmenter, augment_config, parse_augment

__all__ = ["VIEW_LABELS_FORMAT", "VIEW_LABELS_VERSION", "ViewSpec", "view_label_column", "seed_of_column",
           "view_labels"]

VIEW_LABELS_FORMAT = "nessa-view-labels"
VIEW_LABELS_VERSION = 1
_PREFIX = "emb/view-labels-s"
_COLUMN = re.compile(r"^emb/view-labels-s([0-9]{1,19})$")
_SOURCE = re.compile(r"^nessa-view-labels/(\d+) epochs=(\d+) classes=(\d+) temperature=([0-9.eE+-]+) augment=([a-z,]+)$")
_BATCH = 512


def view_label_column(seed: int) -> str:
    """The embedding column holding the view labels of training seed ``seed``."""
    return f"{_PREFIX}{int(seed)}"


def seed_of_column(name: str) -> int | None:
    """The training seed of a view-label column name, None for any other column."""
    m = _COLUMN.match(name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ViewSpec:
    """Which views a view-label column labels: ``epochs`` epochs of ``augment`` (``--augment``
    names, sorted) over ``classes`` classes, softmax temperature ``temperature``."""

    epochs: int
    classes: int
    temperature: float
    augment: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "augment", tuple(sorted(parse_augment(",".join(self.augment)))))
        if not self.augment:
            raise ValueError("--view-augment: per-view labels need an augmentation (e.g. crop,flip)")
        if self.epochs < 1 or self.classes < 2:
            raise ValueError(f"view labels: epochs {self.epochs} and classes {self.classes} must be >= 1 and >= 2")

    @property
    def width(self) -> int:
        return self.epochs * self.classes

    def source(self) -> str:
        return (f"{VIEW_LABELS_FORMAT}/{VIEW_LABELS_VERSION} epochs={self.epochs} classes={self.classes} "
                f"temperature={self.temperature:g} augment={','.join(self.augment)}")

    @classmethod
    def parse(cls, source: str) -> "ViewSpec":
        """The spec a column's ``source`` records; ValueError when it is not one (or a newer version)."""
        m = _SOURCE.match(source or "")
        if not m:
            raise ValueError(f"not a view-label column source: {source[:120]!r}")
        if int(m.group(1)) != VIEW_LABELS_VERSION:
            raise ValueError(f"view labels of version {m.group(1)}; this build reads version {VIEW_LABELS_VERSION}")
        return cls(int(m.group(2)), int(m.group(3)), float(m.group(4)), tuple(m.group(5).split(",")))


@torch.no_grad()
def view_labels(teacher: torch.nn.Module, images_chw: torch.Tensor, ids: Sequence[int], seed: int, spec: ViewSpec,
                sample_shape: Sequence[int], normalise) -> np.ndarray:
    """float16 [N, epochs * classes]: for row i and epoch e, ``softmax(teacher(normalise(view)) / T)``
    of the view the trainer draws for sample id ``ids[i]`` in epoch e with ``seed``.

    ``images_chw``: float32 (N, C, H, W) in the models' input space (what the trainer streams);
    ``sample_shape``: the stored samples' shape (sizes the transforms as the trainer does);
    ``normalise``: what the teacher's input needs on top (the distiller's mean/std)."""
    n, classes = len(images_chw), spec.classes
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) != n:
        raise ValueError(f"view labels: {len(ids)} ids for {n} images")
    augment = Augmenter(augment_config(spec.augment, sample_shape))
    out = np.empty((n, spec.width), dtype=np.float16)
    for epoch in range(spec.epochs):
        for a in range(0, n, _BATCH):
            view = augment(images_chw[a:a + _BATCH], ids[a:a + _BATCH], epoch=epoch, seed=seed)
            q = torch.softmax(teacher(normalise(view)) / spec.temperature, dim=1)
            out[a:a + _BATCH, epoch * classes:(epoch + 1) * classes] = q.numpy()
    return out
