"""The teacher's label of each augmented view, looked up by (sample id, epoch) while training.

A distillation made with ``--labels views`` (``host.distill.views``) carries, per training seed,
a column ``emb/view-labels-s<seed>`` of float16 [rows, epochs * classes]: the storage host's
teacher labelled the view this run's augmentation draws of every row in every epoch. The
trainer streams that column once per stage data set (a few MB: 500 rows x 300 epochs x 10
classes at float16 is 3 MB, against ~470 MB of float32 images streamed over those epochs) and
keeps it in memory; each batch then trains on ``targets(ids, epoch)`` instead of one label per
image. The bytes are counted as received.
"""

from __future__ import annotations

import numpy as np
import torch

from host.distill.views import ViewSpec

__all__ = ["ViewLabelTable"]


class ViewLabelTable:
    """The view labels of one stage data set: [rows, epochs, classes], indexed by id; held as
    float16, as stored (500 rows x 300 epochs x 10 classes: 3 MB; 5,000 x 300 x 100: 300 MB)."""

    def __init__(self, column: str, spec: ViewSpec):
        self.column = column
        self.spec = spec
        self._q: torch.Tensor | None = None
        self.dataset = ""

    def load(self, dataset: str, batches) -> int:
        """Fill from ``batches`` (SampleBatches streamed with ``columns=(column,)``, every row of
        ``dataset`` once); returns the bytes received. ValueError on a row missing or twice."""
        ids, rows, nbytes = [], [], 0
        for b in batches:
            ids.append(np.asarray(b.ids, np.int64))
            rows.append(np.asarray(b.columns[self.column], np.float16))
            nbytes += int(b.nbytes)
        ids_all = np.concatenate(ids) if ids else np.empty(0, np.int64)
        if not len(ids_all) or np.unique(ids_all).size != len(ids_all) or ids_all.max() != len(ids_all) - 1:
            raise ValueError(f"{dataset}: column {self.column} did not stream every row exactly once")
        q = np.empty((len(ids_all), self.spec.epochs, self.spec.classes), np.float16)
        q[ids_all] = np.concatenate(rows).reshape(len(ids_all), self.spec.epochs, self.spec.classes)
        self._q, self.dataset = torch.from_numpy(q), dataset
        return nbytes

    def targets(self, ids: torch.Tensor, epoch: int, device) -> torch.Tensor:
        """float32 [b, classes] on ``device``: the labels of these ids' views in ``epoch``."""
        if self._q is None:
            raise RuntimeError("view labels used before load()")
        if not 0 <= epoch < self.spec.epochs:
            raise ValueError(f"--epochs: epoch {epoch + 1} has no view labels (labelled: {self.spec.epochs} epochs)")
        return self._q[ids.cpu().long(), epoch].to(device=device, dtype=torch.float32)
