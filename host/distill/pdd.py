"""Progressive dataset distillation (PDD; Chen et al., ICLR 2024, VITA-Group/ProgressiveDD).

P stages of IPC synthetic images per class. Stage s is distilled by the base method (DM or DC)
*conditioned on the stages before it*: its matching networks are not freshly initialised but
trained on the union S_1 u ... u S_{s-1}, so stage s captures what a model trained on the earlier
stages has not yet learned. A model is then trained on the cumulative unions, stage by stage
(``trainer.distilled``). One stage is the base method alone.

``Distiller(samples, labels, ...)`` holds the real data (normalised once); ``run_stage(s, prev)``
distils stage ``s`` (1-based) given the earlier stages' images, deterministically from
``(seed, s)``, so a distillation resumed after stage s-1 produces the same stage s as one that
never stopped. Images go in and come out in the models' input space (uint8 / 255, the store's
sample shape); labels are hard (the class of each image, class-major), and with
``labels="soft"`` ``soft_labels(images)`` gives a teacher's probabilities for them
(``host.distill.teacher``; the teacher is trained on first use), and with ``labels="views"``
``view_labels(images, ids, seed)`` the same teacher's label of every view a training run with
``seed`` will draw (``host.distill.views``). ``Method.RANDOM`` matches
nothing: a stage is the real images it would have started from.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from host.distill._nets import ConvNet
from host.distill.config import DistillConfig, Method, check_images
from host.distill.matching import RealSampler, match_stage, train_net
from host.distill.teacher import soft_labels, train_teacher
from host.distill.views import ViewSpec, view_labels

__all__ = ["Distiller", "stage_seed", "to_model_space"]


def stage_seed(seed: int, stage: int, domain: str = "pdd-stage") -> int:
    """A 63-bit seed for one stage (independent streams per stage, same on every run)."""
    digest = hashlib.sha256(f"{domain}:{int(seed)}:{int(stage)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def to_model_space(samples: np.ndarray) -> np.ndarray:
    """Stored samples as the models see them: uint8 / 255, floats unchanged (float32)."""
    samples = np.asarray(samples)
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / 255.0
    return samples.astype(np.float32, copy=False)


class Distiller:
    """The real data of one data set, ready to distil stages from."""

    def __init__(self, samples: np.ndarray, labels: np.ndarray, sample_shape: Sequence[int], num_classes: int,
                 cfg: DistillConfig, *, name: str = "data set"):
        labels = np.asarray(labels, dtype=np.int64)
        counts = np.bincount(labels, minlength=num_classes)
        self.chw = check_images(name, sample_shape, counts, cfg)
        self.cfg = cfg
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.num_classes = int(num_classes)
        x = self._chw(torch.from_numpy(to_model_space(samples)))
        self.mean = x.mean(dim=(0, 2, 3), keepdim=True)
        self.std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
        self.real = RealSampler((x - self.mean) / self.std, torch.from_numpy(labels), self.num_classes)
        self._labels = torch.from_numpy(labels)
        self._teacher = None
        self.teacher_cpu_s = 0.0  # process CPU seconds the teacher took to train (0 until it is)

    # -- layout --------------------------------------------------------------------------
    def _chw(self, x: torch.Tensor) -> torch.Tensor:
        """[N, *sample_shape] -> [N, C, H, W]."""
        c, h, w = self.chw
        x = x.reshape(len(x), *self.sample_shape)
        if len(self.sample_shape) == 2:
            return x.unsqueeze(1)
        if self.sample_shape != (c, h, w):
            return x.permute(0, 3, 1, 2).contiguous()
        return x

    def _stored(self, x: torch.Tensor) -> np.ndarray:
        """[N, C, H, W] normalised -> [N, *sample_shape] float32 in model space."""
        x = x * self.std + self.mean
        if len(self.sample_shape) == 2:
            x = x[:, 0]
        elif self.sample_shape != self.chw:
            x = x.permute(0, 2, 3, 1)
        return np.ascontiguousarray(x.detach().numpy().astype(np.float32))

    def _net(self) -> ConvNet:
        c, h, w = self.chw
        return ConvNet(c, (h, w), self.num_classes, width=self.cfg.width, depth=self.cfg.depth)

    # -- one stage -----------------------------------------------------------------------
    def run_stage(self, stage: int, previous: Sequence[tuple[np.ndarray, np.ndarray]] = (), *,
                  progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distil stage ``stage`` (1-based) conditioned on ``previous`` ((images, labels) of the
        earlier stages, model space); returns ``(images [C*ipc, *sample_shape] float32, labels int32)``.
        ``progress(k)``: k of ``cfg.iterations`` matching steps done."""
        cfg = self.cfg
        if stage < 1:
            raise ValueError(f"stage numbers start at 1, got {stage}")
        if len(previous) != stage - 1:
            raise ValueError(f"stage {stage} is conditioned on {stage - 1} earlier stages, got {len(previous)}")
        seed = stage_seed(cfg.seed, stage)
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # network inits: this stage's own stream
            torch.manual_seed(seed)
            init = torch.cat([self.real.batch(c, cfg.ipc, gen) for c in range(self.num_classes)])
            labels = torch.arange(self.num_classes).repeat_interleave(cfg.ipc)
            if cfg.method is Method.RANDOM:  # the control: the real images matching starts from
                if progress is not None:
                    progress(cfg.iterations)
                return self._stored(init), labels.numpy().astype(np.int32)
            nets = self._conditioned_nets(previous, gen) if previous else None
            if nets is None:
                make = lambda step: self._net()  # noqa: E731 - the base method: a fresh init per step
            elif cfg.method is Method.DM:
                make = lambda step: nets[step % len(nets)]  # noqa: E731
            else:  # DC trains its network along the way: a copy of a conditioned one
                make = lambda step: copy.deepcopy(nets[int(torch.randint(len(nets), (1,), generator=gen))])  # noqa: E731
            out = match_stage(init, labels, self.real, make, cfg, gen, progress=progress)
        return self._stored(out), labels.numpy().astype(np.int32)

    def _trained_teacher(self):
        if self._teacher is None:  # trained on first use, deterministic in the seed
            c0 = time.process_time()
            self._teacher = train_teacher(self.real.images, self._labels, self.num_classes, self.cfg,
                                          stage_seed(self.cfg.seed, 0, "teacher"))
            self.teacher_cpu_s = time.process_time() - c0
        return self._teacher

    def soft_labels(self, images: np.ndarray) -> np.ndarray:
        """The teacher's tempered probabilities for ``images`` (model space, [N, *sample_shape]):
        float32 [N, classes]. Trains the teacher on the first call (deterministic in the seed)."""
        teacher = self._trained_teacher()
        x = (self._chw(torch.from_numpy(to_model_space(images))) - self.mean) / self.std
        return soft_labels(teacher, x, self.cfg.label_temperature)

    @property
    def view_spec(self) -> ViewSpec:
        """The views ``view_labels`` labels (``cfg.view_epochs`` epochs of ``cfg.view_augment``)."""
        return ViewSpec(self.cfg.view_epochs, self.num_classes, self.cfg.label_temperature,
                        tuple(self.cfg.view_augment.split(",")))

    def view_labels(self, images: np.ndarray, ids: Sequence[int], seed: int) -> np.ndarray:
        """float16 [N, view_epochs * classes]: the teacher's label of every view training seed
        ``seed`` draws of ``images`` (model space), which a trainer streams as sample ids ``ids``."""
        teacher = self._trained_teacher()
        x = self._chw(torch.from_numpy(to_model_space(images)))
        return view_labels(teacher, x, ids, seed, self.view_spec, self.sample_shape,
                           lambda v: (v - self.mean) / self.std)

    def _conditioned_nets(self, previous, gen: torch.Generator) -> list[ConvNet]:
        """Networks trained on the union of the earlier stages (PDD's conditioning): for DM,
        snapshots after every epoch of ``pretrain_nets`` runs (from little to much of the earlier
        stages learned); for DC, the end of each run."""
        cfg = self.cfg
        xs = torch.cat([self._chw(torch.from_numpy(to_model_space(x))) for x, _ in previous])
        ys = torch.cat([torch.from_numpy(np.asarray(y, dtype=np.int64)) for _, y in previous])
        xs = (xs - self.mean) / self.std
        steps = max(1, math.ceil(len(xs) / 256))
        out = []
        for _ in range(cfg.pretrain_nets):
            net = self._net()
            for epoch in range(cfg.pretrain_epochs):
                train_net(net, xs, ys, steps, cfg, gen)
                if cfg.method is Method.DM or epoch == cfg.pretrain_epochs - 1:
                    out.append(copy.deepcopy(net).eval())
        return out
