"""What a distillation run is asked to do, checked once, with errors that name the option.

``DistillConfig`` holds the method (``dm``: distribution matching, Zhao & Bilen 2023; ``dc``:
gradient matching, Zhao et al. 2021; ``random``: real images drawn at random, the control), the
number of PDD stages (1 = the base method alone), images per class per stage, the matching
budget, and the labels the images carry (hard: their class; soft: a teacher's tempered
probabilities, as label-learning distillation methods store them). ``check_images`` refuses a data set whose
samples are not images or whose smallest class is smaller than the IPC.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass
from typing import Sequence

__all__ = ["Method", "Labels", "DistillConfig", "DistillError", "check_images", "image_chw"]


class DistillError(ValueError):
    """A distillation cannot run as asked; the message names the option or the data set."""


class Method(str, enum.Enum):
    """Base distillation methods (the value is the CLI / wire / manifest name)."""

    DM = "dm"  # distribution matching: mean embeddings of randomly initialised (or PDD-trained) nets
    DC = "dc"  # gradient matching: per-class gradients of a network trained along the way
    RANDOM = "random"  # no matching: IPC real images per class at random (what matching is measured against)


class Labels(str, enum.Enum):
    """What a distilled image is labelled with (the value is the CLI / wire / manifest name)."""

    HARD = "hard"  # its class
    SOFT = "soft"  # softmax(teacher logits / T): a ConvNet trained on the source data set
    VIEWS = "views"  # soft, and also the teacher's label of every augmented view a run draws (host.distill.views)


def _int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        limit = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise DistillError(f"--{name.replace('_', '-')}: must be an integer {limit}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class DistillConfig:
    """One distillation: ``stages`` x ``ipc`` synthetic images per class (PDD when stages > 1).

    iterations: matching steps per stage (the reference runs 20k for DM, 1k for DC; a few hundred
        are what a 2-core storage host affords at 28x28).
    lr_img: SGD step on the images (None: the reference's 1.0 for DM, 0.1 for DC), momentum 0.5.
    real_batch: real images per class drawn per matching step (reference: 256).
    width, depth: the matching ConvNet (reference: 128, 3; 16 wide here, 4x cheaper per step on a CPU).
    augment: differentiable siamese augmentation (one scale/rotate/shift/cutout for real and
        synthetic alike), as the reference's DSA.
    pretrain_epochs, pretrain_nets: PDD's conditioning: stage s > 1 matches through networks
        trained on the union of stages < s (``pretrain_nets`` nets, ``pretrain_epochs`` epochs
        each; DM uses snapshots along their training, DC starts its outer loop from them).
    outer_loop, inner_loop: DC's schedule (0: the reference's 10/50 for IPC 1..10, 50/10 above).
    labels: hard or soft. Soft labels come from a teacher ConvNet (``teacher_width`` wide, the
        matching depth) trained ``teacher_epochs`` epochs on the whole source data set, once per
        distillation; each image's label is softmax(logits / ``label_temperature``).
        views: soft labels, and for each training seed in ``view_seeds`` the teacher's label of
        every view ``view_augment`` (``--augment`` names) draws in each of ``view_epochs`` epochs.
    """

    method: Method = Method.DM
    stages: int = 1
    ipc: int = 10
    iterations: int = 200
    seed: int = 0
    lr_img: float | None = None
    real_batch: int = 32
    width: int = 16
    depth: int = 3
    augment: bool = True
    pretrain_epochs: int = 10
    pretrain_nets: int = 2
    outer_loop: int = 0
    inner_loop: int = 0
    labels: Labels = Labels.HARD
    teacher_epochs: int = 3
    teacher_width: int = 32
    label_temperature: float = 2.0
    view_epochs: int = 0
    view_seeds: tuple[int, ...] = ()
    view_augment: str = "crop,flip"

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen)
        try:
            set_("method", Method(str(getattr(self.method, "value", self.method)).strip().lower()))
        except ValueError:
            raise DistillError(f"--method: unknown method {self.method!r}; choose one of "
                               f"{', '.join(m.value for m in Method)}") from None
        try:
            set_("labels", Labels(str(getattr(self.labels, "value", self.labels)).strip().lower()))
        except ValueError:
            raise DistillError(f"--labels: unknown labels {self.labels!r}; choose one of "
                               f"{', '.join(m.value for m in Labels)}") from None
        if isinstance(self.stages, int) and not isinstance(self.stages, bool) and self.stages < 1:
            raise DistillError(f"--stages: must be at least 1 (one stage is the base method alone), got {self.stages}")
        _int("stages", self.stages, 1, 100)
        if isinstance(self.ipc, int) and not isinstance(self.ipc, bool) and self.ipc < 1:
            raise DistillError(f"--ipc: images per class must be at least 1, got {self.ipc}")
        _int("ipc", self.ipc, 1)
        _int("iterations", self.iterations, 1, 1_000_000)  # bounds the CPU one request may claim
        _int("seed", self.seed, 0, 2**63 - 1)
        _int("real_batch", self.real_batch, 1)
        _int("width", self.width, 1)
        _int("depth", self.depth, 1, 6)
        _int("pretrain_epochs", self.pretrain_epochs, 1)
        _int("pretrain_nets", self.pretrain_nets, 1)
        _int("outer_loop", self.outer_loop, 0)
        _int("inner_loop", self.inner_loop, 0)
        _int("teacher_epochs", self.teacher_epochs, 1, 1000)
        _int("teacher_width", self.teacher_width, 1, 1024)
        t = self.label_temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and 0 < t <= 100):
            raise DistillError(f"--label-temperature: must be a number in (0, 100], got {t!r}")
        set_("label_temperature", float(t))
        self._check_views(set_)
        if self.lr_img is None:
            set_("lr_img", 1.0 if self.method is Method.DM else 0.1)
        if isinstance(self.lr_img, bool) or not isinstance(self.lr_img, (int, float)) or not (
                math.isfinite(self.lr_img) and self.lr_img > 0):
            raise DistillError(f"--lr-img: must be a finite number > 0, got {self.lr_img!r}")
        if not self.outer_loop:
            set_("outer_loop", 10 if self.ipc <= 10 else 50)
        if not self.inner_loop:
            set_("inner_loop", 50 if self.ipc <= 10 else 10)

    def _check_views(self, set_) -> None:
        from host.augment import parse_augment

        seeds = self.view_seeds
        if isinstance(seeds, (int, str)) and not isinstance(seeds, bool):
            seeds = [seeds] if isinstance(seeds, int) else [p for p in seeds.split(",") if p.strip()]
        try:
            seeds = tuple(dict.fromkeys(int(str(v).strip()) for v in seeds))
        except (TypeError, ValueError):
            raise DistillError(f"--view-seeds: a comma list of training seeds, got {self.view_seeds!r}") from None
        set_("view_seeds", seeds)
        try:
            names = parse_augment(str(self.view_augment))
        except ValueError as exc:
            raise DistillError(str(exc).replace("--augment", "--view-augment")) from None
        set_("view_augment", ",".join(sorted(names)))
        if self.labels is not Labels.VIEWS:
            if self.view_epochs or self.view_seeds:
                raise DistillError("--view-epochs / --view-seeds: per-view labels need --labels views")
            return
        _int("view_epochs", self.view_epochs, 1, 10_000)
        if not 1 <= len(seeds) <= 16 or any(s < 0 or s >= 2**63 for s in seeds):
            raise DistillError(f"--view-seeds: 1 to 16 training seeds >= 0 (each gets its own labels), got {list(seeds)}")
        if not names:
            raise DistillError("--view-augment: per-view labels need an augmentation, e.g. crop,flip")
        if "randaugment" in names:
            raise DistillError("--view-augment: randaugment needs uint8 images; distilled images are float "
                               "(choose from crop, flip, cutout)")

    @property
    def soft(self) -> bool:
        """Whether the stages carry soft labels (``emb/soft-labels``): soft and views do."""
        return self.labels is not Labels.HARD

    @property
    def total_ipc(self) -> int:
        return self.stages * self.ipc

    def summary(self) -> dict:
        doc = asdict(self)
        doc["method"] = self.method.value
        doc["labels"] = self.labels.value
        doc["view_seeds"] = list(self.view_seeds)
        return doc


def image_chw(sample_shape: Sequence[int]) -> tuple[int, int, int] | None:
    """Channels-first (C, H, W) of an image sample shape, None when the samples are not images.

    (H, W) -> (1, H, W); (H, W, C) with C in 1/3/4 -> (C, H, W); (C, H, W) with C in 1/3/4;
    both sides at least 4 pixels.
    """
    shape = tuple(int(s) for s in sample_shape)
    if len(shape) == 2:
        chw = (1, *shape)
    elif len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] not in (1, 3, 4):
        chw = (shape[2], shape[0], shape[1])
    elif len(shape) == 3 and shape[0] in (1, 3, 4):
        chw = shape
    else:
        return None
    return chw if min(chw[1:]) >= 4 else None


def check_images(name: str, sample_shape: Sequence[int], class_counts: Sequence[int], cfg: DistillConfig) -> tuple[int, int, int]:
    """(C, H, W) of ``name``'s samples, or DistillError: not images, too small for the ConvNet, or
    a class with fewer samples than ``--ipc`` (a distilled class is initialised from its own real
    images, IPC of them per stage)."""
    chw = image_chw(sample_shape)
    if chw is None:
        raise DistillError(f"{name}: samples of shape {list(sample_shape)} are not images "
                           "(distillation needs [H, W], [H, W, C] or [C, H, W] samples)")
    if min(chw[1:]) < 2 ** cfg.depth:
        raise DistillError(f"--depth: {cfg.depth} pooling stages need images of at least {2 ** cfg.depth} pixels a side, "
                           f"{name} has {chw[1]}x{chw[2]}")
    counts = [int(c) for c in class_counts]
    if len(counts) < 2:
        raise DistillError(f"{name}: distillation needs at least 2 classes, got {len(counts)}")
    small = min(range(len(counts)), key=lambda c: counts[c])
    if cfg.ipc > counts[small]:
        raise DistillError(f"--ipc: {cfg.ipc} images per class is larger than class {small} of {name} "
                           f"({counts[small]} samples)")
    return chw
