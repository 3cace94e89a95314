"""Options for augmentation in training, and augmented copies of a subset the storage host picks.

``--augment crop,flip,cutout,randaugment`` names the transforms (host/augment.py); alone it
augments every training batch (full augmentation). With ``--augment-subset KIND:FRACTION`` the
batches stay as streamed and each gains augmented copies of examples from a subset of the data
instead: data-efficient augmentation (Liu & Mirzasoleiman, NeurIPS 2022). Every
``--augment-every`` R epochs the storage service picks that subset next to the data:

    coreset   CRAIG facility location on gradient proxies of the non-augmented data (the paper),
              with its cluster-size weights when the run uses weights
    random    a per-class random subset (the paper's random baseline)
    max-loss  per class the highest-loss examples under the current model (its other baseline)
    selected  no separate pick: every streamed row also trains as an augmented copy. With a subset
              strategy (``--strategy craig --fraction 0.3``) this is the reference code's
              ``--subset_main_dataset --enable_subset_augment``: train on the coreset *and* its
              augmentations, 2 x FRACTION of full augmentation's rows; with ``--strategy full`` it
              is full augmentation as the paper counts it (the data plus a copy of every row).
              Copies carry weight 1, as in the reference (its coreset weights stay on the
              streamed rows). Written ``selected`` or ``selected:1``.

``--augment-main`` names weak transforms (the reference's crop + flip) applied in place to the
streamed rows of a run that adds copies; ``--augment`` then names the copies' strong ones. The
main rows draw their views from another stream than the copies (seed salted), so a row and its
copy are not cropped alike.

The trainer keeps the subset in memory (it is small: FRACTION of the data; streamed once per R
epochs, counted in bytes received) and appends to each batch of b rows
``round(b * |subset| / rows per epoch)`` of its rows, in a seeded order that visits every row
once per epoch, each augmented by (seed, epoch, id), so every subset row is seen once augmented
per epoch beside the streamed data.
"""

from __future__ import annotations

import enum
import math
from typing import Sequence

import numpy as np
import torch

from host.strategies import Strategy
from host.augment import AUGMENTATIONS, Augmenter, augment_config, parse_augment

__all__ = ["AUGMENTATIONS", "AugmentKind", "BatchAugment", "augment_config", "parse_augment", "parse_augment_subset",
           "SubsetCopies", "as_chw"]

class AugmentKind(str, enum.Enum):
    CORESET = "coreset"
    RANDOM = "random"
    MAX_LOSS = "max-loss"
    SELECTED = "selected"  # copies of the streamed rows themselves: no pick of its own

    @property
    def strategy(self) -> Strategy | None:
        """The service strategy that picks this kind of subset (None: ``selected`` picks nothing)."""
        return {AugmentKind.CORESET: Strategy.CRAIG, AugmentKind.RANDOM: Strategy.RANDOM,
                AugmentKind.MAX_LOSS: Strategy.MAX_LOSS}.get(self)


def parse_augment_subset(text: str) -> tuple[AugmentKind, float]:
    """``"coreset:0.3"`` -> (CORESET, 0.3); ValueError naming ``--augment-subset``."""
    kind, sep, frac = text.partition(":")
    try:
        parsed = AugmentKind(kind.strip())
    except ValueError:
        raise ValueError(f"--augment-subset: unknown kind {kind!r}; choose from "
                         f"{', '.join(k.value for k in AugmentKind)} (as KIND:FRACTION)") from None
    try:
        fraction = float(frac) if sep else (1.0 if parsed is AugmentKind.SELECTED else math.nan)
    except ValueError:
        fraction = math.nan
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"--augment-subset: fraction must be in (0, 1] after the colon, got {text!r}")
    if parsed is AugmentKind.SELECTED and fraction != 1.0:
        raise ValueError(f"--augment-subset: 'selected' copies every streamed row; its fraction is the run's "
                         f"--fraction, not {frac.strip()!r} (write 'selected')")
    return parsed, fraction


class SubsetCopies:
    """The subset to augment, held in memory, and its per-batch augmented rows."""

    def __init__(self, augmenter: Augmenter, *, seed: int, use_weights: bool):
        self._augmenter = augmenter
        self._seed = seed
        self._use_weights = use_weights
        self._x = self._y = self._w = self._ids = None
        self._order = np.empty(0, np.int64)
        self._pos = 0
        self._epoch = -1

    def __len__(self) -> int:
        return 0 if self._y is None else int(self._y.shape[0])

    def load(self, batches) -> int:
        """Replace the subset with the rows of ``batches`` (streamed SampleBatches); returns bytes."""
        xs, ys, ws, ids, nbytes = [], [], [], [], 0
        for b in batches:
            xs.append(np.array(b.samples))  # copies: the message buffers are reused
            ys.append(np.asarray(b.labels, np.int64))
            ws.append(np.asarray(b.weights, np.float32))
            ids.append(np.asarray(b.ids, np.int64))
            nbytes += int(b.nbytes)
        if not xs:
            raise ValueError("--augment-subset: the storage service picked an empty subset")
        self._x = torch.from_numpy(np.concatenate(xs))
        self._y = torch.from_numpy(np.concatenate(ys))
        w = np.concatenate(ws)
        self._w = torch.from_numpy(w / w.mean() if self._use_weights else np.ones_like(w))
        self._ids = np.concatenate(ids)
        self._epoch = -1
        return nbytes

    def rows_for(self, batch_rows: int, rows_per_epoch: int) -> int:
        """Subset rows to add to a batch of ``batch_rows`` so the subset is covered once per epoch."""
        return 0 if not len(self) else max(1, round(batch_rows * len(self) / max(rows_per_epoch, 1)))

    def take(self, k: int, *, epoch: int, sample_shape: Sequence[int], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``k`` augmented subset rows ``(x uint8 (k, C, H, W), y, w)`` on ``device``, next in this epoch's order."""
        if epoch != self._epoch:  # a new epoch: a new seeded visiting order
            rng = np.random.default_rng([self._seed, epoch, 0x4155])
            self._order, self._pos, self._epoch = rng.permutation(len(self)), 0, epoch
        picked = np.take(self._order, np.arange(self._pos, self._pos + k), mode="wrap")
        self._pos = (self._pos + k) % len(self)
        x = as_chw(self._x[picked].to(device), sample_shape)
        x = self._augmenter(x, self._ids[picked], epoch=epoch, seed=self._seed)
        return x, self._y[picked].to(device), self._w[picked].to(device)


def as_chw(x: torch.Tensor, sample_shape: Sequence[int]) -> torch.Tensor:
    """Stored uint8 samples ``[N, *sample_shape]`` as (N, C, H, W), the layout the models and the
    augmentations read (the same rule as ``host.models.to_input``, without the float conversion)."""
    from host.models import input_chw

    shape = tuple(int(s) for s in sample_shape)
    chw = input_chw(shape)
    x = x.reshape(x.shape[0], *shape)
    if len(shape) == 2:
        return x.unsqueeze(1)
    return x if shape == chw else x.permute(0, 3, 1, 2).contiguous()


#: Salt of the seed the streamed rows' weak views draw from (``--augment-main``): not the copies' views.
_MAIN_SALT = 0x6D61696E


class BatchAugment:
    """What the training loop applies to each batch: every row augmented (no copies); the batch
    plus augmented copies of subset rows (``copies``); or the batch plus an augmented copy of
    each of its own rows (``mirror``: ``--augment-subset selected``). With copies, ``main``
    (``--augment-main``) augments the streamed rows in place first."""

    def __init__(self, augmenter: Augmenter, copies: SubsetCopies | None, *, seed: int, mirror: bool = False,
                 main: Augmenter | None = None):
        if mirror and copies is not None:
            raise ValueError("BatchAugment: mirror copies the batch's own rows; it takes no subset copies")
        if main is not None and copies is None and not mirror:
            raise ValueError("--augment-main: augments the streamed rows beside copies; without "
                             "--augment-subset use --augment")
        self.augmenter = augmenter
        self.copies = copies
        self.mirror = mirror
        self.main = main
        self._seed = seed

    def __call__(self, x: torch.Tensor, ids: torch.Tensor, y: torch.Tensor, w: torch.Tensor, *, epoch: int,
                 sample_shape: Sequence[int], rows_per_epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x uint8 (N, C, H, W), y, w)`` to train on."""
        x = as_chw(x, sample_shape)
        if self.copies is None and not self.mirror:
            return self.augmenter(x, ids, epoch=epoch, seed=self._seed), y, w
        extra = self._copies(x, ids, y, w, epoch, sample_shape, rows_per_epoch)  # from the rows as stored
        if self.main is not None:
            x = self.main(x, ids, epoch=epoch, seed=self._seed ^ _MAIN_SALT)
        if extra is None:
            return x, y, w
        ax, ay, aw = extra
        return torch.cat([x, ax]), torch.cat([y, ay]), torch.cat([w, aw])

    def _copies(self, x, ids, y, w, epoch: int, sample_shape, rows_per_epoch: int):
        """The augmented rows to append, or None: a strong copy of each row (``mirror``), or the
        subset's next rows."""
        if self.mirror:
            return self.augmenter(x, ids, epoch=epoch, seed=self._seed), y, torch.ones_like(w)
        k = self.copies.rows_for(len(y), rows_per_epoch)
        return self.copies.take(k, epoch=epoch, sample_shape=sample_shape, device=x.device) if k else None
