"""The base methods, one stage each: distribution matching (DM) and gradient matching (DC).

Both follow VICO-UoE/DatasetCondensation (``main_DM.py`` / ``main.py``): synthetic images start
as real images of their class and are moved by SGD (momentum 0.5) on the pixels.

* DM: per step one network; per class, the squared distance between the mean embedding of a
  real batch and of the class's synthetic images (both under the same augmentation).
* DC: per step one network; ``outer_loop`` times: per class, the layer-wise cosine distance
  between the gradients of the loss on a real batch and on the synthetic images, summed; then
  the network trains ``inner_loop`` steps on the synthetic set (not after the last).

Where the network comes from is the caller's (``nets(step)``): a fresh random init for the base
method; networks trained on earlier stages for PDD (``host.distill.pdd``). Everything runs in
the data set's normalised space ((x - mean) / std per channel).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from host.distill import _augment
from host.distill._nets import ConvNet
from host.distill.config import DistillConfig, Method

__all__ = ["match_stage", "train_net", "RealSampler"]


class RealSampler:
    """Random real batches of one class (normalised tensors), drawn with the caller's generator."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int):
        self.images = images
        self.by_class = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]

    def batch(self, c: int, n: int, gen: torch.Generator) -> torch.Tensor:
        idx = self.by_class[c]
        pick = idx[torch.randperm(len(idx), generator=gen)[:n]]
        return self.images[pick]


def _aug(cfg: DistillConfig, gen: torch.Generator, *batches: torch.Tensor) -> list[torch.Tensor]:
    if not cfg.augment:
        return list(batches)
    p = _augment.siamese_params(gen)
    return [_augment.apply(b, p) for b in batches]


def _dist_ours(gr: torch.Tensor, gs: torch.Tensor) -> torch.Tensor:
    """DC's layer distance: sum over output units of 1 - cos(real, syn); biases are ignored."""
    if gr.dim() == 1:
        return gs.new_zeros(())
    gr, gs = gr.reshape(gr.shape[0], -1), gs.reshape(gs.shape[0], -1)
    return torch.sum(1 - torch.sum(gr * gs, -1) / (gr.norm(dim=-1) * gs.norm(dim=-1) + 1e-6))


def train_net(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int, cfg: DistillConfig,
              gen: torch.Generator, *, lr: float = 0.01, batch: int = 256) -> None:
    """``steps`` SGD steps (momentum 0.9, wd 5e-4) on random batches of ``images`` (augmented)."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    net.train()
    n = len(images)
    for _ in range(steps):
        idx = torch.randperm(n, generator=gen)[:batch]
        (x,) = _aug(cfg, gen, images[idx])
        loss = F.cross_entropy(net(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def match_stage(syn: torch.Tensor, syn_labels: torch.Tensor, real: RealSampler, nets: Callable[[int], ConvNet],
                cfg: DistillConfig, gen: torch.Generator, *, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Distil ``syn`` (initial images, [C*ipc, ch, h, w], class-major) for ``cfg.iterations`` steps;
    returns the final images (detached). ``progress(step)`` after every step."""
    syn = syn.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=float(cfg.lr_img), momentum=0.5)
    num_classes = int(syn_labels.max()) + 1
    per = [torch.nonzero(syn_labels == c).flatten() for c in range(num_classes)]
    for step in range(cfg.iterations):
        net = nets(step)
        if cfg.method is Method.DM:
            _dm_step(net, syn, per, real, opt, cfg, gen)
        else:
            _dc_step(net, syn, syn_labels, per, real, opt, cfg, gen)
        if progress is not None:
            progress(step + 1)
    return syn.detach()


def _dm_step(net, syn, per, real: RealSampler, opt, cfg: DistillConfig, gen) -> None:
    for p in net.parameters():
        p.requires_grad_(False)
    loss = syn.new_zeros(())
    for c, rows in enumerate(per):
        r = real.batch(c, cfg.real_batch, gen)
        r_aug, s_aug = _aug(cfg, gen, r, syn[rows])
        with torch.no_grad():
            mu_real = net.embed(r_aug).mean(0)
        loss = loss + torch.sum((mu_real - net.embed(s_aug).mean(0)) ** 2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _dc_step(net, syn, syn_labels, per, real: RealSampler, opt, cfg: DistillConfig, gen) -> None:
    params = [p for p in net.parameters()]
    net_opt = torch.optim.SGD(params, lr=0.01)
    for ol in range(cfg.outer_loop):
        loss = syn.new_zeros(())
        for c, rows in enumerate(per):
            r = real.batch(c, cfg.real_batch, gen)
            r_aug, s_aug = _aug(cfg, gen, r, syn[rows])
            y_r = torch.full((len(r_aug),), c, dtype=torch.long)
            g_real = torch.autograd.grad(F.cross_entropy(net(r_aug), y_r), params)
            g_real = [g.detach() for g in g_real]
            g_syn = torch.autograd.grad(F.cross_entropy(net(s_aug), syn_labels[rows]), params, create_graph=True)
            loss = loss + sum(_dist_ours(a, b) for a, b in zip(g_real, g_syn))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ol == cfg.outer_loop - 1:
            break
        images = syn.detach()
        for _ in range(cfg.inner_loop):
            idx = torch.randperm(len(images), generator=gen)[:256]
            (x,) = _aug(cfg, gen, images[idx])
            net_loss = F.cross_entropy(net(x), syn_labels[idx])
            net_opt.zero_grad(set_to_none=True)
            net_loss.backward()
            net_opt.step()
